/* The desktop console (see console.h): libvncclient on an inherited fd (research qemu.md §5).
 * QEMU 7.2 announces resizes as ExtendedDesktopSize with screen id 0, which libvncclient 0.9.14
 * rejects, so after the handshake we replace the encodings with a list without -308 and get plain
 * DesktopSize. No FreeRDP here: front ends bring their own protocol. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <rfb/rfbclient.h>
#include "common/log.h"
#include "rdp/console.h"

struct Console {
        rfbClient *cl;
        uint32_t max_w, max_h;
        bool has_content, failed;
        ConsoleRect damage[CONSOLE_DAMAGE_MAX];
        size_t ndamage;
        /* frame pacing towards the one viewer */
        bool acks;                      /* the viewer acknowledges frames */
        bool full_pending;              /* the next frame is the whole screen */
        uint32_t last_sent, last_acked;
};

static int console_tag;

static Console *console_of(rfbClient *cl) { return rfbClientGetClientData(cl, &console_tag); }

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

static void damage_add(Console *c, int x, int y, int w, int h)
{
        /* Clamp to the framebuffer: the rect comes from the guest's VNC server. */
        if (x < 0 || y < 0 || w <= 0 || h <= 0 || x >= c->cl->width || y >= c->cl->height)
                return;
        if (w > c->cl->width - x)
                w = c->cl->width - x;
        if (h > c->cl->height - y)
                h = c->cl->height - y;
        if (c->ndamage == CONSOLE_DAMAGE_MAX) {
                /* Too many pieces: one bounding box costs less than tracking them all. */
                int x0 = x, y0 = y, x1 = x + w, y1 = y + h;
                for (size_t i = 0; i < c->ndamage; i++) {
                        ConsoleRect *r = &c->damage[i];
                        x0 = r->x < x0 ? r->x : x0;
                        y0 = r->y < y0 ? r->y : y0;
                        x1 = r->x + r->w > x1 ? r->x + r->w : x1;
                        y1 = r->y + r->h > y1 ? r->y + r->h : y1;
                }
                c->damage[0] = (ConsoleRect){ x0, y0, x1 - x0, y1 - y0 };
                c->ndamage = 1;
                return;
        }
        c->damage[c->ndamage++] = (ConsoleRect){ x, y, w, h };
}

static rfbBool vnc_malloc_fb(rfbClient *cl)
{
        Console *c = console_of(cl);
        if (cl->width <= 0 || cl->height <= 0 || (uint32_t)cl->width > c->max_w || (uint32_t)cl->height > c->max_h) {
                log_error("vnc: guest framebuffer %dx%d is outside 1x1..%ux%u", cl->width, cl->height, c->max_w,
                          c->max_h);
                c->failed = true;
                return FALSE;
        }
        free(cl->frameBuffer);
        cl->frameBuffer = calloc((size_t)cl->width * (size_t)cl->height, 4);
        if (!cl->frameBuffer) {
                c->failed = true;
                return FALSE;
        }
        log_info("vnc: guest framebuffer %dx%d", cl->width, cl->height);
        c->has_content = false;
        c->ndamage = 0;
        return TRUE;
}

static void vnc_update(rfbClient *cl, int x, int y, int w, int h)
{
        damage_add(console_of(cl), x, y, w, h);
}

static void vnc_finished(rfbClient *cl)
{
        Console *c = console_of(cl);
        /* QEMU answers the first (non-incremental) request with the whole screen. */
        c->has_content = true;
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

int console_open(int fd, uint32_t max_w, uint32_t max_h, Console **ret)
{
        rfbClientLog = vnc_log;
        rfbClientErr = vnc_err;

        Console *c = calloc(1, sizeof *c);
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        c->max_w = max_w;
        c->max_h = max_h;
        c->full_pending = true;
        rfbClient *cl = rfbGetClient(8, 3, 4);
        if (!cl) {
                close(fd);
                free(c);
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
        rfbClientSetClientData(cl, &console_tag, c);
        /* An existing connection: rfbInitClient skips connecting when listenSpecified is set. */
        cl->sock = fd;
        cl->listenSpecified = TRUE;
        c->cl = cl;
        /* rfbInitClient frees cl (and closes the socket) when it fails. */
        if (!rfbInitClient(cl, NULL, NULL)) {
                free(c);
                return log_error_errno(-EPROTO, "vnc: handshake with the desktop console failed");
        }
        if (c->failed || send_encodings(cl) < 0) {
                console_free(c);
                return log_error_errno(-EPROTO, "vnc: cannot set up the desktop console");
        }
        *ret = c;
        return 0;
}

Console *console_free(Console *c)
{
        if (!c)
                return NULL;
        if (c->cl) {
                free(c->cl->frameBuffer);
                c->cl->frameBuffer = NULL;
                rfbClientCleanup(c->cl);
        }
        free(c);
        return NULL;
}

int console_fd(const Console *c) { return c->cl->sock; }

int console_process(Console *c)
{
        /* libvncclient reads ahead into its own buffer: drain that too, or a message could sit
         * there while poll() sees an idle socket. Bounded so the front end is not starved. */
        for (int i = 0; i < 64; i++) {
                if (!HandleRFBServerMessage(c->cl) || c->failed)
                        return -EPIPE;
                if (c->cl->buffered == 0)
                        break;
        }
        return 0;
}

const uint8_t *console_framebuffer(const Console *c, uint32_t *ret_stride, uint32_t *ret_w, uint32_t *ret_h)
{
        *ret_stride = (uint32_t)c->cl->width * 4;
        *ret_w = (uint32_t)c->cl->width;
        *ret_h = (uint32_t)c->cl->height;
        return c->cl->frameBuffer;
}

bool console_has_content(const Console *c) { return c->has_content; }

bool console_is_black(const Console *c)
{
        uint32_t stride, w, h;
        const uint8_t *fb = console_framebuffer(c, &stride, &w, &h);
        for (uint32_t y = 0; y < h; y++) {
                const uint8_t *row = fb + (size_t)y * stride;
                for (uint32_t x = 0; x < w; x++)
                        if (row[4 * x] | row[4 * x + 1] | row[4 * x + 2])
                                return false;
        }
        return true;
}

/* ---- frames to the viewer ---- */

bool console_frame_next(Console *c, uint32_t w, uint32_t h, ConsoleFrame *ret)
{
        if (c->acks && c->last_sent - c->last_acked >= CONSOLE_FRAMES_AHEAD_MAX)
                return false;
        if (!c->full_pending && c->ndamage == 0)
                return false;
        ret->id = c->last_sent + 1;
        ret->full = c->full_pending;
        ret->n = 0;
        if (ret->full) {
                ret->rects[ret->n++] = (ConsoleRect){ 0, 0, (int)w, (int)h };
        } else {
                /* The viewer may show less than the console (a client that cannot resize). */
                for (size_t i = 0; i < c->ndamage; i++) {
                        ConsoleRect r = c->damage[i];
                        if (console_rect_clamp(&r.x, &r.y, &r.w, &r.h, (int)w, (int)h))
                                ret->rects[ret->n++] = r;
                }
        }
        c->ndamage = 0;
        c->full_pending = false;
        return ret->n > 0;
}

void console_frame_sent(Console *c, const ConsoleFrame *f)
{
        c->last_sent = f->id;
        if (!c->acks)
                c->last_acked = f->id;
}

void console_frame_ack(Console *c, uint32_t id)
{
        /* Only ids we sent count: a viewer cannot open the window by acking the future. */
        if (id > c->last_acked && id <= c->last_sent)
                c->last_acked = id;
}

bool console_frame_is_acked(const Console *c, uint32_t id) { return id <= c->last_acked; }

bool console_frame_window_open(const Console *c)
{
        return !c->acks || c->last_sent - c->last_acked < CONSOLE_FRAMES_AHEAD_MAX;
}

uint32_t console_frame_extra(Console *c)
{
        if (!console_frame_window_open(c))
                return 0;
        c->last_sent++;
        if (!c->acks)
                c->last_acked = c->last_sent;
        return c->last_sent;
}

void console_frame_restart(Console *c, bool acks)
{
        c->acks = acks;
        c->last_acked = c->last_sent;
        c->full_pending = true;
}

void console_refresh(Console *c) { c->full_pending = true; }

/* ---- input to the guest ---- */

int console_key(Console *c, uint32_t keysym, uint32_t qnum, bool down)
{
        /* QEMU's extended key events carry the key position, so any guest layout works; they are
         * usable only after QEMU confirmed them with the first update. */
        if (qnum && SupportsClient2Server(c->cl, rfbQemuEvent))
                return SendExtendedKeyEvent(c->cl, keysym, qnum, down) ? 0 : -EPIPE;
        if (!keysym)
                return 0;
        return SendKeyEvent(c->cl, keysym, down) ? 0 : -EPIPE;
}

int console_pointer(Console *c, int x, int y, uint8_t buttons)
{
        return SendPointerEvent(c->cl, x, y, buttons) ? 0 : -EPIPE;
}

bool console_rect_clamp(int *x, int *y, int *w, int *h, int W, int H)
{
        /* 64-bit so that x+w cannot overflow whatever the peer sent. */
        int64_t x0 = *x, y0 = *y, x1 = x0 + *w, y1 = y0 + *h;
        if (*w <= 0 || *h <= 0 || W <= 0 || H <= 0)
                return false;
        if (x0 < 0)
                x0 = 0;
        if (y0 < 0)
                y0 = 0;
        if (x1 > W)
                x1 = W;
        if (y1 > H)
                y1 = H;
        if (x1 <= x0 || y1 <= y0)
                return false;
        *x = (int)x0;
        *y = (int)y0;
        *w = (int)(x1 - x0);
        *h = (int)(y1 - y0);
        return true;
}
