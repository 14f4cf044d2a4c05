/* FreeRDP 2.11 server peer on an inherited socket (research freerdp-server.md §1–§2, §6):
 * TLS only, credentials taken from the Client Info PDU in LicenseCallback, refusal shown
 * through logon error info. FreeRDP callbacks only record events; all decisions happen in the
 * main loop through PeerCallbacks. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <freerdp/channels/channels.h>
#include <freerdp/channels/wtsvc.h>
#include <freerdp/freerdp.h>
#include <freerdp/input.h>
#include <freerdp/listener.h>
#include <freerdp/peer.h>
#include <freerdp/session.h>
#include <freerdp/update.h>
#include <winpr/ssl.h>
#include <winpr/wlog.h>
#include <winpr/wtsapi.h>
#include "common/log.h"
#include "common/util.h"
#include "rdp/encoder.h"
#include "rdp/input.h"
#include "rdp/keyless.h"
#include "rdp/peer.h"

/* input.c speaks wire values without FreeRDP: make sure they agree. */
_Static_assert(INPUT_KBD_EXTENDED == KBD_FLAGS_EXTENDED && INPUT_KBD_EXTENDED1 == KBD_FLAGS_EXTENDED1 &&
               INPUT_KBD_RELEASE == KBD_FLAGS_RELEASE && INPUT_KBD_DOWN == KBD_FLAGS_DOWN, "kbd flags");
_Static_assert(INPUT_PTR_WHEEL == PTR_FLAGS_WHEEL && INPUT_PTR_HWHEEL == PTR_FLAGS_HWHEEL &&
               INPUT_PTR_WHEEL_NEGATIVE == PTR_FLAGS_WHEEL_NEGATIVE && INPUT_PTR_MOVE == PTR_FLAGS_MOVE &&
               INPUT_PTR_DOWN == PTR_FLAGS_DOWN && INPUT_PTR_BUTTON1 == PTR_FLAGS_BUTTON1 &&
               INPUT_PTR_BUTTON2 == PTR_FLAGS_BUTTON2 && INPUT_PTR_BUTTON3 == PTR_FLAGS_BUTTON3 &&
               INPUT_PTR_ROTATION_MASK == WheelRotationMask && INPUT_PTRX_DOWN == PTR_XFLAGS_DOWN &&
               INPUT_PTRX_BUTTON1 == PTR_XFLAGS_BUTTON1 && INPUT_PTRX_BUTTON2 == PTR_XFLAGS_BUTTON2,
               "pointer flags");

#define RDP_DIM_MAX 8192        /* the largest desktop RDP can describe */

typedef struct PeerContext {
        rdpContext base;        /* must be first: FreeRDP allocates ContextSize and casts */
        HANDLE vcm;
        Peer *owner;
} PeerContext;

struct Peer {
        freerdp_peer *fp;
        const PeerCallbacks *cb;
        void *ud;
        psPeerLicenseCallback default_license;
        bool credentials_seen, active, ever_active, disconnected;
        bool preset;                    /* the size was set before Demand Active (peer_preset_size) */
        uint32_t client_w, client_h;    /* what the client asked for in its Client Core Data */
        Gfx *gfx;                       /* when the client kept SupportGraphicsPipeline */
};

static Peer *owner_of(rdpContext *ctx) { return ((PeerContext *)ctx)->owner; }

static BOOL ctx_new(freerdp_peer *fp, rdpContext *ctx)
{
        PeerContext *pc = (PeerContext *)ctx;
        pc->vcm = WTSOpenServerA((LPSTR)ctx);
        return pc->vcm && pc->vcm != INVALID_HANDLE_VALUE;
}

static void ctx_free(freerdp_peer *fp, rdpContext *ctx)
{
        PeerContext *pc = (PeerContext *)ctx;
        if (pc && pc->vcm && pc->vcm != INVALID_HANDLE_VALUE)
                WTSCloseServer(pc->vcm);
}

/* The first hook after the Client Info PDU: the only place the TLS-only server sees the
 * credentials (Logon gets an empty identity without NLA). */
static LicenseCallbackResult on_license(freerdp_peer *fp, wStream *s)
{
        Peer *p = owner_of(fp->context);
        rdpSettings *st = fp->context->settings;
        if (!p->credentials_seen) {
                p->credentials_seen = true;
                const char *user = freerdp_settings_get_string(st, FreeRDP_Username);
                const char *domain = freerdp_settings_get_string(st, FreeRDP_Domain);
                const char *host = freerdp_settings_get_string(st, FreeRDP_ClientHostname);
                char *pw = (char *)freerdp_settings_get_string(st, FreeRDP_Password);
                uint32_t w = freerdp_settings_get_uint32(st, FreeRDP_DesktopWidth);
                uint32_t h = freerdp_settings_get_uint32(st, FreeRDP_DesktopHeight);
                p->cb->credentials(p->ud, user ? user : "", domain ? domain : "", pw, host ? host : "", w, h);
                /* FreeRDP's own copy of the password: wipe it in place, then drop it. */
                if (pw)
                        secret_wipe(pw, strlen(pw));
                freerdp_settings_set_string(st, FreeRDP_Password, NULL);
                /* Still before Demand Active: the main loop may settle the desktop size now. */
                if (p->cb->before_demand_active)
                        p->cb->before_demand_active(p->ud);
        }
        return p->default_license(fp, s);
}

static BOOL on_post_connect(freerdp_peer *fp)
{
        rdpSettings *st = fp->context->settings;
        log_info("rdp: client %s %ux%u depth %u, codecs:%s%s, surface commands %s, frame acks %u, multifrag %u",
                 freerdp_settings_get_string(st, FreeRDP_ClientHostname) ?: "?",
                 freerdp_settings_get_uint32(st, FreeRDP_DesktopWidth),
                 freerdp_settings_get_uint32(st, FreeRDP_DesktopHeight),
                 freerdp_settings_get_uint32(st, FreeRDP_ColorDepth),
                 freerdp_settings_get_bool(st, FreeRDP_RemoteFxCodec) ? " remotefx" : "",
                 freerdp_settings_get_bool(st, FreeRDP_NSCodec) ? " nscodec" : "",
                 freerdp_settings_get_bool(st, FreeRDP_SurfaceCommandsEnabled) ? "on" : "off",
                 freerdp_settings_get_uint32(st, FreeRDP_FrameAcknowledge),
                 freerdp_settings_get_uint32(st, FreeRDP_MultifragMaxRequestSize));
        return TRUE;
}

static BOOL on_activate(freerdp_peer *fp)
{
        Peer *p = owner_of(fp->context);
        rdpSettings *st = fp->context->settings;
        /* A client without desktop resize keeps the size it asked for, whatever the Demand
         * Active said: go back to it so the main loop crops instead. */
        if (p->preset && !freerdp_settings_get_bool(st, FreeRDP_DesktopResize)) {
                freerdp_settings_set_uint32(st, FreeRDP_DesktopWidth, p->client_w);
                freerdp_settings_set_uint32(st, FreeRDP_DesktopHeight, p->client_h);
        }
        p->preset = false;
        p->active = p->ever_active = true;
        /* The pipeline opens once the dynamic channels are up (peer_check); getenv: tests and
         * benchmarks turn it off to measure the surface-bits path with the same client. */
        if (!p->gfx && freerdp_settings_get_bool(st, FreeRDP_SupportGraphicsPipeline) &&
            !getenv("SLATE_SESSION_NO_GFX") &&
            gfx_new(((PeerContext *)fp->context)->vcm, fp->context, &p->gfx) < 0)
                log_warn("gfx: cannot set up the graphics pipeline: surface bits instead");
        p->cb->activated(p->ud, freerdp_settings_get_uint32(st, FreeRDP_DesktopWidth),
                         freerdp_settings_get_uint32(st, FreeRDP_DesktopHeight));
        return TRUE;
}

static BOOL on_key(rdpInput *in, UINT16 flags, UINT16 code)
{
        Peer *p = owner_of(in->context);
        p->cb->key(p->ud, flags, code);
        return TRUE;
}

static BOOL on_unicode(rdpInput *in, UINT16 flags, UINT16 code)
{
        Peer *p = owner_of(in->context);
        p->cb->unicode(p->ud, flags, code);
        return TRUE;
}

static BOOL on_mouse(rdpInput *in, UINT16 flags, UINT16 x, UINT16 y)
{
        Peer *p = owner_of(in->context);
        p->cb->pointer(p->ud, false, flags, x, y);
        return TRUE;
}

static BOOL on_xmouse(rdpInput *in, UINT16 flags, UINT16 x, UINT16 y)
{
        Peer *p = owner_of(in->context);
        p->cb->pointer(p->ud, true, flags, x, y);
        return TRUE;
}

static BOOL on_sync(rdpInput *in, UINT32 flags) { return TRUE; }

static BOOL on_refresh(rdpContext *ctx, BYTE count, const RECTANGLE_16 *areas)
{
        Peer *p = owner_of(ctx);
        p->cb->refresh(p->ud);
        return TRUE;
}

static BOOL on_suppress(rdpContext *ctx, BYTE allow, const RECTANGLE_16 *area)
{
        Peer *p = owner_of(ctx);
        p->cb->suppress(p->ud, allow != 0);
        return TRUE;
}

static BOOL on_frame_ack(rdpContext *ctx, UINT32 frame_id)
{
        Peer *p = owner_of(ctx);
        p->cb->frame_ack(p->ud, frame_id);
        return TRUE;
}

static bool settings_apply(rdpSettings *st, const char *cert_pem)
{
        return freerdp_settings_set_string(st, FreeRDP_CertificateContent, cert_pem) &&
               /* The key stays in slated: rdp/keyless.c answers FreeRDP's read of this marker. */
               freerdp_settings_set_string(st, FreeRDP_PrivateKeyContent, KEYLESS_PEM_MARKER) &&
               /* TLS only: NLA would make FreeRDP check a SAM file, RDP security is broken crypto. */
               freerdp_settings_set_bool(st, FreeRDP_NlaSecurity, FALSE) &&
               freerdp_settings_set_bool(st, FreeRDP_TlsSecurity, TRUE) &&
               freerdp_settings_set_bool(st, FreeRDP_RdpSecurity, FALSE) &&
               /* TLS 1.2 suites with forward secrecy and an AEAD cipher only (FreeRDP hands this to
                * SSL_CTX_set_cipher_list; TLS 1.3's suites are all AEAD; TLS < 1.2 is refused by
                * the system's OpenSSL policy, checked by tests/e2e/tls.sh). */
               freerdp_settings_set_string(st, FreeRDP_AllowedTlsCiphers,
                                           "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL") &&
               freerdp_settings_set_uint32(st, FreeRDP_ColorDepth, 32) &&
               freerdp_settings_set_bool(st, FreeRDP_RemoteFxCodec, TRUE) &&
               freerdp_settings_set_bool(st, FreeRDP_NSCodec, TRUE) &&
               freerdp_settings_set_bool(st, FreeRDP_SurfaceFrameMarkerEnabled, TRUE) &&
               freerdp_settings_set_bool(st, FreeRDP_SupportGraphicsPipeline, TRUE) &&
               freerdp_settings_set_bool(st, FreeRDP_RefreshRect, TRUE) &&
               freerdp_settings_set_bool(st, FreeRDP_SuppressOutput, TRUE) &&
               freerdp_settings_set_bool(st, FreeRDP_UnicodeInput, TRUE) &&
               freerdp_settings_set_bool(st, FreeRDP_HasExtendedMouseEvent, TRUE) &&
               freerdp_settings_set_bool(st, FreeRDP_HasHorizontalWheel, TRUE);
}

void peer_setup_once(void)
{
        static bool initialized;
        if (initialized)
                return;
        winpr_InitializeSSL(WINPR_SSL_INIT_DEFAULT);
        /* Without this WTSOpenServerA tries to dlopen libfreerds-fdsapi.so. */
        WTSRegisterWtsApiFunctionTable(FreeRDP_InitWtsApi());
        encoder_setup_once();
        /* FreeRDP's INFO chatter per connection is noise in slated's log; keep its
         * warnings, and everything when debugging. */
        WLog_SetLogLevel(WLog_GetRoot(), log_get_level() >= LOG_LVL_DEBUG ? WLOG_INFO : WLOG_WARN);
        initialized = true;
}

/* A spare's peer, made before its client (peer_prepare): FreeRDP's context (settings, transport,
 * codecs' buffers, the channel manager: 15-25 ms on a loaded machine) on a placeholder fd whose
 * number the client's socket takes over when it comes. */
static struct {
        freerdp_peer *fp;
        int fd;
} prepared = { NULL, -1 };

static freerdp_peer *context_make(int fd)
{
        freerdp_peer *fp = freerdp_peer_new(fd);
        if (!fp)
                return NULL;
        fp->ContextSize = sizeof(PeerContext);
        fp->ContextNew = ctx_new;
        fp->ContextFree = ctx_free;
        if (!freerdp_peer_context_new(fp)) {
                freerdp_peer_free(fp);
                return NULL;
        }
        return fp;
}

void peer_prepare(void)
{
        peer_setup_once();
        /* An eventfd stands in for the socket: the sandbox allows it, and nothing reads it. */
        int fd = eventfd(0, EFD_CLOEXEC);
        if (fd < 0)
                return;
        prepared.fp = context_make(fd);
        prepared.fd = prepared.fp ? fd : -1;
        if (!prepared.fp)
                close(fd);
}

/* The prepared context on the client's socket: the socket moves to the placeholder's number
 * (the transport's BIO and winpr's event hold that number), with the file status flags FreeRDP
 * gave the placeholder (non-blocking) and TCP_NODELAY as freerdp_peer_new sets it. One thread
 * runs here, so the number just closed is the one F_DUPFD returns. */
static freerdp_peer *prepared_take(int fd)
{
        freerdp_peer *fp = prepared.fp;
        int num = prepared.fd, fl = fcntl(num, F_GETFL);
        prepared.fp = NULL;
        prepared.fd = -1;
        close(num);
        int n = fcntl(fd, F_DUPFD_CLOEXEC, num);
        if (n != num || fl < 0 || fcntl(n, F_SETFL, (fcntl(n, F_GETFL) & ~O_NONBLOCK) | (fl & O_NONBLOCK)) < 0) {
                log_error("rdp: cannot move the client socket to the prepared peer's fd %d: %m", num);
                if (n >= 0 && n != num)
                        close(n);
                close(fd);
                return NULL;
        }
        close(fd);
        int one = 1;
        setsockopt(n, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fp->sockfd = n;
        return fp;
}

int peer_new(int fd, const char *cert_pem, const PeerCallbacks *cb, void *ud, Peer **ret)
{
        peer_setup_once();
        Peer *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->cb = cb;
        p->ud = ud;
        p->fp = prepared.fp ? prepared_take(fd) : context_make(fd);
        if (!p->fp) {
                free(p);
                return log_error_errno(-ENOMEM, "rdp: cannot create the peer and its context");
        }
        freerdp_peer *fp = p->fp;
        ((PeerContext *)fp->context)->owner = p;
        if (!settings_apply(fp->context->settings, cert_pem)) {
                peer_free(p);
                return log_error_errno(-EINVAL, "rdp: cannot apply settings");
        }
        /* The default callback sends the "valid client" licensing PDU; xfreerdp needs it. */
        p->default_license = fp->LicenseCallback;
        fp->LicenseCallback = on_license;
        fp->PostConnect = on_post_connect;
        fp->Activate = on_activate;

        rdpInput *in = fp->context->input;
        in->KeyboardEvent = on_key;
        in->UnicodeKeyboardEvent = on_unicode;
        in->MouseEvent = on_mouse;
        in->ExtendedMouseEvent = on_xmouse;
        in->SynchronizeEvent = on_sync;
        rdpUpdate *up = fp->context->update;
        up->RefreshRect = on_refresh;
        up->SuppressOutput = on_suppress;
        /* NULL on the server side by default: without it acks are read and dropped. */
        up->SurfaceFrameAcknowledge = on_frame_ack;

        if (!fp->Initialize(fp)) {
                peer_free(p);
                return log_error_errno(-EPROTO, "rdp: peer initialisation failed");
        }
        *ret = p;
        return 0;
}

Peer *peer_free(Peer *p)
{
        if (!p)
                return NULL;
        /* The channel before the virtual channel manager it lives on (ctx_free closes that). */
        p->gfx = gfx_free(p->gfx);
        if (p->fp) {
                if (!p->disconnected)
                        p->fp->Disconnect(p->fp);
                freerdp_peer_context_free(p->fp);
                freerdp_peer_free(p->fp);
        }
        free(p);
        return NULL;
}

int peer_pollfds(Peer *p, struct pollfd *pfd, int max)
{
        void *rfds[32] = { 0 };
        int rcount = 0, n = 0;
        if (p->disconnected)
                return 0;
        p->fp->GetFileDescriptor(p->fp, rfds, &rcount);
        WTSVirtualChannelManagerGetFileDescriptor(((PeerContext *)p->fp->context)->vcm, rfds, &rcount);
        if (p->gfx && rcount < (int)ELEMENTSOF(rfds))
                rfds[rcount++] = (void *)(intptr_t)gfx_fd(p->gfx);
        for (int i = 0; i < rcount && n < max; i++) {
                int fd = (int)(intptr_t)rfds[i];
                bool dup = false;
                for (int j = 0; j < n; j++)
                        dup |= pfd[j].fd == fd;
                if (fd >= 0 && !dup)
                        pfd[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
        }
        return n;
}

int peer_check(Peer *p)
{
        if (p->disconnected)
                return -ECONNRESET;
        if (!p->fp->CheckFileDescriptor(p->fp))
                return -ECONNRESET;
        if (!WTSVirtualChannelManagerCheckFileDescriptor(((PeerContext *)p->fp->context)->vcm))
                return -ECONNRESET;
        if (p->gfx) {
                bool changed, has_ack;
                uint32_t ack;
                gfx_poll(p->gfx, &changed, &ack, &has_ack);
                if (changed && p->cb->graphics_changed)
                        p->cb->graphics_changed(p->ud);
                if (has_ack)
                        p->cb->frame_ack(p->ud, ack);
        }
        return 0;
}

Gfx *peer_gfx(Peer *p) { return p->gfx && gfx_state(p->gfx) == GFX_READY ? p->gfx : NULL; }

bool peer_is_active(const Peer *p) { return p->active && !p->disconnected; }
rdpContext *peer_context(Peer *p) { return p->fp->context; }

void peer_size(const Peer *p, uint32_t *ret_w, uint32_t *ret_h)
{
        rdpSettings *st = p->fp->context->settings;
        *ret_w = freerdp_settings_get_uint32(st, FreeRDP_DesktopWidth);
        *ret_h = freerdp_settings_get_uint32(st, FreeRDP_DesktopHeight);
}

int peer_resize(Peer *p, uint32_t width, uint32_t height)
{
        rdpSettings *st = p->fp->context->settings;
        uint32_t w, h;
        peer_size(p, &w, &h);
        if (w == width && h == height)
                return 0;
        if (width < 1 || height < 1 || width > RDP_DIM_MAX || height > RDP_DIM_MAX)
                return -EINVAL;
        if (!freerdp_settings_get_bool(st, FreeRDP_DesktopResize))
                return -ENOTSUP;
        if (!freerdp_settings_set_uint32(st, FreeRDP_DesktopWidth, width) ||
            !freerdp_settings_set_uint32(st, FreeRDP_DesktopHeight, height))
                return -ENOMEM;
        /* A deactivation-reactivation: Activate runs again at the new size, frames wait for it. */
        p->active = false;
        if (!p->fp->context->update->DesktopResize(p->fp->context))
                return log_error_errno(-EIO, "rdp: desktop resize to %ux%u failed", width, height);
        log_info("rdp: desktop resize %ux%u → %ux%u", w, h, width, height);
        return 0;
}

int peer_preset_size(Peer *p, uint32_t width, uint32_t height)
{
        rdpSettings *st = p->fp->context->settings;
        uint32_t w, h;
        if (p->ever_active)
                return -EBUSY;
        if (width < 1 || height < 1 || width > RDP_DIM_MAX || height > RDP_DIM_MAX)
                return -EINVAL;
        peer_size(p, &w, &h);
        if (w == width && h == height)
                return 0;
        if (!p->preset) {
                p->client_w = w;
                p->client_h = h;
        }
        if (!freerdp_settings_set_uint32(st, FreeRDP_DesktopWidth, width) ||
            !freerdp_settings_set_uint32(st, FreeRDP_DesktopHeight, height))
                return -ENOMEM;
        p->preset = true;
        log_info("rdp: desktop %ux%u instead of the client's %ux%u from the first activation", width, height, w, h);
        return 0;
}

int peer_socket(const Peer *p) { return p->disconnected ? -1 : p->fp->sockfd; }

void peer_refuse(Peer *p, uint32_t logon_error, uint32_t errinfo)
{
        if (p->disconnected)
                return;
        if (p->ever_active) {
                logon_info_ex info = { .haveErrorInfo = TRUE,
                                       .ErrorNotificationType = LOGON_MSG_SESSION_TERMINATE,
                                       .ErrorNotificationData = logon_error };
                p->fp->context->update->SaveSessionInfo(p->fp->context, INFO_TYPE_LOGON_EXTENDED_INF, &info);
        }
        peer_close(p, errinfo);
}

/* Closing a socket with unread input makes the kernel send a reset, and the client then
 * drops our last PDUs (the error info) unread. Half-close and let the client hang up first. */
static void linger_until_client_closes(int fd, int ms)
{
        uint64_t deadline = now_ms() + (uint64_t)ms;
        char buf[4096];
        shutdown(fd, SHUT_WR);
        for (;;) {
                int64_t left = (int64_t)(deadline - now_ms());
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
                        return;
                ssize_t k = read(fd, buf, sizeof buf);
                if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
                        return;
        }
}

void peer_close(Peer *p, uint32_t errinfo)
{
        if (p->disconnected)
                return;
        /* Before activation there is no share to deactivate: just drop the connection. */
        if (p->ever_active) {
                if (errinfo)
                        freerdp_set_error_info(p->fp->context->rdp, errinfo);
                if (p->fp->Close(p->fp))
                        linger_until_client_closes(p->fp->sockfd, 2000);
        }
        p->fp->Disconnect(p->fp);
        p->disconnected = true;
        p->active = false;
}
