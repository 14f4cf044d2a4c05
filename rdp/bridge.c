/* libvncclient on an inherited fd (research qemu.md §5). QEMU 7.2 announces resizes as
 * ExtendedDesktopSize with screen id 0, which libvncclient 0.9.14 rejects, so after the
 * handshake we replace the encodings with a list without -308 and get plain DesktopSize. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <rfb/rfbclient.h>
#include "common/log.h"
#include "rdp/bridge.h"

struct Bridge {
        rfbClient *cl;
        uint32_t max_w, max_h;
        bool has_content, resized, failed;
        BridgeRect damage[BRIDGE_DAMAGE_MAX];
        size_t ndamage;
};

static int bridge_tag;

static Bridge *bridge_of(rfbClient *cl) { return rfbClientGetClientData(cl, &bridge_tag); }

/* libvncclient's messages end in a newline and may hold several lines: keep the first. */
static _printf_(2, 0) void vnc_vlog(int level, const char *fmt, va_list ap)
{
        char buf[512];
        vsnprintf(buf, sizeof buf, fmt, ap);
        buf[strcspn(buf, "\n")] = 0;
        log_msg(level, "vnc: %s", buf);
}

static void vnc_log(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vnc_vlog(LOG_LVL_DEBUG, fmt, ap);
        va_end(ap);
}

static void vnc_err(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vnc_vlog(LOG_LVL_WARN, fmt, ap);
        va_end(ap);
}

static void damage_add(Bridge *b, int x, int y, int w, int h)
{
        /* Clamp to the framebuffer: the rect comes from the guest's VNC server. */
        if (x < 0 || y < 0 || w <= 0 || h <= 0 || x >= b->cl->width || y >= b->cl->height)
                return;
        if (w > b->cl->width - x)
                w = b->cl->width - x;
        if (h > b->cl->height - y)
                h = b->cl->height - y;
        if (b->ndamage == BRIDGE_DAMAGE_MAX) {
                /* Too many pieces: one bounding box costs less than tracking them all. */
                int x0 = x, y0 = y, x1 = x + w, y1 = y + h;
                for (size_t i = 0; i < b->ndamage; i++) {
                        BridgeRect *r = &b->damage[i];
                        x0 = r->x < x0 ? r->x : x0;
                        y0 = r->y < y0 ? r->y : y0;
                        x1 = r->x + r->w > x1 ? r->x + r->w : x1;
                        y1 = r->y + r->h > y1 ? r->y + r->h : y1;
                }
                b->damage[0] = (BridgeRect){ x0, y0, x1 - x0, y1 - y0 };
                b->ndamage = 1;
                return;
        }
        b->damage[b->ndamage++] = (BridgeRect){ x, y, w, h };
}

static rfbBool vnc_malloc_fb(rfbClient *cl)
{
        Bridge *b = bridge_of(cl);
        if (cl->width <= 0 || cl->height <= 0 || (uint32_t)cl->width > b->max_w || (uint32_t)cl->height > b->max_h) {
                log_error("vnc: guest framebuffer %dx%d is outside 1x1..%ux%u", cl->width, cl->height, b->max_w,
                          b->max_h);
                b->failed = true;
                return FALSE;
        }
        free(cl->frameBuffer);
        cl->frameBuffer = calloc((size_t)cl->width * (size_t)cl->height, 4);
        if (!cl->frameBuffer) {
                b->failed = true;
                return FALSE;
        }
        log_info("vnc: guest framebuffer %dx%d", cl->width, cl->height);
        b->resized = true;
        b->has_content = false;
        b->ndamage = 0;
        return TRUE;
}

static void vnc_update(rfbClient *cl, int x, int y, int w, int h)
{
        damage_add(bridge_of(cl), x, y, w, h);
}

static void vnc_finished(rfbClient *cl)
{
        Bridge *b = bridge_of(cl);
        /* QEMU answers the first (non-incremental) request with the whole screen. */
        b->has_content = true;
}

/* SetEncodings: raw (the socket is local, so decoding cost matters more than bytes),
 * LastRect, DesktopSize, QEMU extended key events. No ExtendedDesktopSize (see top). */
static int send_encodings(rfbClient *cl)
{
        static const int32_t enc[] = { rfbEncodingRaw, rfbEncodingLastRect, rfbEncodingNewFBSize,
                                       rfbEncodingQemuExtendedKeyEvent };
        uint8_t msg[4 + 4 * sizeof enc / sizeof enc[0]];
        msg[0] = rfbSetEncodings;
        msg[1] = 0;
        uint16_t n = htons(sizeof enc / sizeof enc[0]);
        memcpy(msg + 2, &n, 2);
        for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
                uint32_t v = htonl((uint32_t)enc[i]);
                memcpy(msg + 4 + 4 * i, &v, 4);
        }
        return WriteToRFBServer(cl, (char *)msg, sizeof msg) ? 0 : -EPIPE;
}

int bridge_new(int fd, uint32_t max_w, uint32_t max_h, Bridge **ret)
{
        rfbClientLog = vnc_log;
        rfbClientErr = vnc_err;

        Bridge *b = calloc(1, sizeof *b);
        if (!b) {
                close(fd);
                return -ENOMEM;
        }
        b->max_w = max_w;
        b->max_h = max_h;
        rfbClient *cl = rfbGetClient(8, 3, 4);
        if (!cl) {
                close(fd);
                free(b);
                return -ENOMEM;
        }
        /* BGRX in memory: what the RDP codecs read without conversion. */
        cl->format.redShift = 16;
        cl->format.greenShift = 8;
        cl->format.blueShift = 0;
        cl->MallocFrameBuffer = vnc_malloc_fb;
        cl->GotFrameBufferUpdate = vnc_update;
        cl->FinishedFrameBufferUpdate = vnc_finished;
        cl->canHandleNewFBSize = TRUE;
        cl->appData.encodingsString = "raw";
        cl->appData.shareDesktop = TRUE;
        rfbClientSetClientData(cl, &bridge_tag, b);
        /* An existing connection: rfbInitClient skips connecting when listenSpecified is set. */
        cl->sock = fd;
        cl->listenSpecified = TRUE;
        b->cl = cl;
        /* rfbInitClient frees cl (and closes the socket) when it fails. */
        if (!rfbInitClient(cl, NULL, NULL)) {
                free(b);
                return log_error_errno(-EPROTO, "vnc: handshake with the desktop console failed");
        }
        if (b->failed || send_encodings(cl) < 0) {
                bridge_free(b);
                return log_error_errno(-EPROTO, "vnc: cannot set up the desktop console");
        }
        *ret = b;
        return 0;
}

Bridge *bridge_free(Bridge *b)
{
        if (!b)
                return NULL;
        if (b->cl) {
                free(b->cl->frameBuffer);
                b->cl->frameBuffer = NULL;
                rfbClientCleanup(b->cl);
        }
        free(b);
        return NULL;
}

int bridge_fd(const Bridge *b) { return b->cl->sock; }

int bridge_process(Bridge *b)
{
        /* libvncclient reads ahead into its own buffer: drain that too, or a message could sit
         * there while poll() sees an idle socket. Bounded so the RDP side is not starved. */
        for (int i = 0; i < 64; i++) {
                if (!HandleRFBServerMessage(b->cl) || b->failed)
                        return -EPIPE;
                if (b->cl->buffered == 0)
                        break;
        }
        return 0;
}

const uint8_t *bridge_framebuffer(const Bridge *b, uint32_t *ret_stride, uint32_t *ret_w, uint32_t *ret_h)
{
        *ret_stride = (uint32_t)b->cl->width * 4;
        *ret_w = (uint32_t)b->cl->width;
        *ret_h = (uint32_t)b->cl->height;
        return b->cl->frameBuffer;
}

bool bridge_has_content(const Bridge *b) { return b->has_content; }

bool bridge_take_resized(Bridge *b)
{
        bool r = b->resized;
        b->resized = false;
        return r;
}

bool bridge_has_damage(const Bridge *b) { return b->ndamage > 0; }

size_t bridge_take_damage(Bridge *b, BridgeRect *out, size_t max)
{
        size_t n = b->ndamage < max ? b->ndamage : max;
        memcpy(out, b->damage, n * sizeof *out);
        b->ndamage = 0;
        return n;
}

void bridge_damage_all(Bridge *b)
{
        b->damage[0] = (BridgeRect){ 0, 0, b->cl->width, b->cl->height };
        b->ndamage = 1;
}

int bridge_key(Bridge *b, uint32_t keysym, uint32_t qnum, bool down)
{
        /* QEMU's extended key events carry the key position, so any guest layout works; they are
         * usable only after QEMU confirmed them with the first update. */
        if (qnum && SupportsClient2Server(b->cl, rfbQemuEvent))
                return SendExtendedKeyEvent(b->cl, keysym, qnum, down) ? 0 : -EPIPE;
        if (!keysym)
                return 0;
        return SendKeyEvent(b->cl, keysym, down) ? 0 : -EPIPE;
}

int bridge_pointer(Bridge *b, int x, int y, uint8_t mask)
{
        return SendPointerEvent(b->cl, x, y, mask) ? 0 : -EPIPE;
}
