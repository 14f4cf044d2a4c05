/* The graphics pipeline channel (see gfx.h). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <freerdp/channels/wtsvc.h>
#include <freerdp/codec/color.h>
#include <freerdp/server/rdpgfx.h>
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "rdp/gfx.h"

#define GFX_SURFACE_ID 1
#define GFX_ACK_SUSPEND 0xFFFFFFFFu     /* [MS-RDPEGFX] 2.2.2.13: the client stops acknowledging */
#define GFX_QP 22                       /* told to the client in the metablock; informative */

struct Gfx {
        HANDLE vcm;
        RdpgfxServerContext *ctx;
        int efd;
        bool opened;
        GfxState reported;
        bool reported_acks;
        bool surface;
        uint32_t width, height;
        /* written by the channel's thread */
        atomic_int state;               /* GfxState */
        atomic_bool acks;               /* the client acknowledges frames */
        atomic_uint last_ack;
        atomic_bool has_ack;
        RDPGFX_CAPSET confirmed;
};

static bool caps_allow_avc420(const RDPGFX_CAPSET *c)
{
        if (c->version == RDPGFX_CAPVERSION_81)
                return c->flags & RDPGFX_CAPS_FLAG_AVC420_ENABLED;
        if (c->version >= RDPGFX_CAPVERSION_10 && c->version <= RDPGFX_CAPVERSION_107)
                return !(c->flags & RDPGFX_CAPS_FLAG_AVC_DISABLED);
        return false;
}

static bool caps_known(uint32_t v)
{
        static const uint32_t known[] = { RDPGFX_CAPVERSION_8,   RDPGFX_CAPVERSION_81,  RDPGFX_CAPVERSION_10,
                                          RDPGFX_CAPVERSION_101, RDPGFX_CAPVERSION_102, RDPGFX_CAPVERSION_103,
                                          RDPGFX_CAPVERSION_104, RDPGFX_CAPVERSION_105, RDPGFX_CAPVERSION_106,
                                          RDPGFX_CAPVERSION_106_ERR, RDPGFX_CAPVERSION_107 };
        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                if (known[i] == v)
                        return true;
        return false;
}

int gfx_caps_choose(const RDPGFX_CAPSET *sets, size_t n)
{
        int best = -1;
        for (size_t i = 0; i < n && i < INT32_MAX; i++) {
                if (!caps_known(sets[i].version) || !caps_allow_avc420(&sets[i]))
                        continue;
                if (best < 0 || sets[i].version > sets[best].version)
                        best = (int)i;
        }
        return best;
}

static void wake(Gfx *g)
{
        uint64_t one = 1;
        (void)!write(g->efd, &one, sizeof one);
}

/* On the channel's thread. */
static UINT on_caps_advertise(RdpgfxServerContext *ctx, const RDPGFX_CAPS_ADVERTISE_PDU *pdu)
{
        Gfx *g = ctx->custom;
        int i = gfx_caps_choose(pdu->capsSets, pdu->capsSetCount);
        if (i < 0) {
                log_info("gfx: the client offers no AVC420 in %u capability sets: surface bits instead",
                         (unsigned)pdu->capsSetCount);
                atomic_store(&g->state, GFX_OFF);
                wake(g);
                return CHANNEL_RC_OK;
        }
        g->confirmed = pdu->capsSets[i];
        RDPGFX_CAPS_CONFIRM_PDU confirm = { .capsSet = &g->confirmed };
        UINT rc = ctx->CapsConfirm(ctx, &confirm);
        atomic_store(&g->state, rc == CHANNEL_RC_OK ? GFX_READY : GFX_OFF);
        log_info("gfx: capabilities %08x flags %08x confirmed%s", g->confirmed.version, g->confirmed.flags,
                 rc == CHANNEL_RC_OK ? "" : " (sending failed)");
        wake(g);
        return rc;
}

/* On the channel's thread. */
static UINT on_frame_ack(RdpgfxServerContext *ctx, const RDPGFX_FRAME_ACKNOWLEDGE_PDU *pdu)
{
        Gfx *g = ctx->custom;
        if (pdu->queueDepth == GFX_ACK_SUSPEND) {
                atomic_store(&g->acks, false);
        } else {
                atomic_store(&g->acks, true);
        }
        atomic_store(&g->last_ack, pdu->frameId);
        atomic_store(&g->has_ack, true);
        wake(g);
        return CHANNEL_RC_OK;
}

int gfx_new(HANDLE vcm, rdpContext *rctx, Gfx **ret)
{
        Gfx *g = calloc(1, sizeof *g);
        if (!g)
                return -ENOMEM;
        g->vcm = vcm;
        g->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        g->ctx = rdpgfx_server_context_new(vcm);
        if (g->efd < 0 || !g->ctx) {
                gfx_free(g);
                return -ENOMEM;
        }
        g->ctx->rdpcontext = rctx;
        g->ctx->custom = g;
        g->ctx->CapsAdvertise = on_caps_advertise;
        g->ctx->FrameAcknowledge = on_frame_ack;
        atomic_init(&g->state, GFX_PENDING);
        atomic_init(&g->acks, true);
        g->reported = GFX_PENDING;
        g->reported_acks = true;
        *ret = g;
        return 0;
}

Gfx *gfx_free(Gfx *g)
{
        if (!g)
                return NULL;
        if (g->ctx) {
                if (g->opened)
                        g->ctx->Close(g->ctx);
                rdpgfx_server_context_free(g->ctx);
        }
        if (g->efd >= 0)
                close(g->efd);
        free(g);
        return NULL;
}

int gfx_fd(const Gfx *g) { return g->efd; }
GfxState gfx_state(const Gfx *g) { return (GfxState)atomic_load(&g->state); }
bool gfx_acks_frames(const Gfx *g) { return atomic_load(&g->acks); }

GfxState gfx_poll(Gfx *g, bool *ret_state_changed, uint32_t *ret_ack, bool *ret_has_ack)
{
        uint64_t v;
        (void)!read(g->efd, &v, sizeof v);
        if (!g->opened && atomic_load(&g->state) == GFX_PENDING &&
            WTSVirtualChannelManagerIsChannelJoined(g->vcm, "drdynvc") &&
            WTSVirtualChannelManagerGetDrdynvcState(g->vcm) == DRDYNVC_STATE_READY) {
                g->opened = true;
                if (!g->ctx->Open(g->ctx)) {
                        log_warn("gfx: cannot open the graphics pipeline channel: surface bits instead");
                        atomic_store(&g->state, GFX_OFF);
                }
        }
        GfxState st = (GfxState)atomic_load(&g->state);
        bool acks = atomic_load(&g->acks);
        /* A client that suspends its acknowledgements (or resumes them) needs frames paced anew. */
        *ret_state_changed = st != g->reported || acks != g->reported_acks;
        g->reported = st;
        g->reported_acks = acks;
        *ret_has_ack = atomic_exchange(&g->has_ack, false);
        *ret_ack = atomic_load(&g->last_ack);
        return st;
}

int gfx_surface_reset(Gfx *g, uint32_t width, uint32_t height)
{
        if (gfx_state(g) != GFX_READY || width == 0 || height == 0 || width > UINT16_MAX || height > UINT16_MAX)
                return -EINVAL;
        RdpgfxServerContext *c = g->ctx;
        if (g->surface) {
                RDPGFX_DELETE_SURFACE_PDU del = { .surfaceId = GFX_SURFACE_ID };
                if (c->DeleteSurface(c, &del) != CHANNEL_RC_OK)
                        return -EIO;
                g->surface = false;
        }
        MONITOR_DEF mon = { .left = 0, .top = 0, .right = (INT32)width - 1, .bottom = (INT32)height - 1,
                            .flags = MONITOR_PRIMARY };
        RDPGFX_RESET_GRAPHICS_PDU reset = { .width = width, .height = height, .monitorCount = 1,
                                            .monitorDefArray = &mon };
        RDPGFX_CREATE_SURFACE_PDU create = { .surfaceId = GFX_SURFACE_ID, .width = (UINT16)width,
                                             .height = (UINT16)height, .pixelFormat = GFX_PIXEL_FORMAT_XRGB_8888 };
        RDPGFX_MAP_SURFACE_TO_OUTPUT_PDU map = { .surfaceId = GFX_SURFACE_ID };
        if (c->ResetGraphics(c, &reset) != CHANNEL_RC_OK || c->CreateSurface(c, &create) != CHANNEL_RC_OK)
                return -EIO;
        g->surface = true;
        if (c->MapSurfaceToOutput(c, &map) != CHANNEL_RC_OK)
                return -EIO;
        g->width = width;
        g->height = height;
        return 0;
}

/* [MS-RDPEGFX] 2.2.2.11: the time of day, hours << 22 | minutes << 16 | seconds << 10 | ms. */
static uint32_t frame_timestamp(void)
{
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        return (uint32_t)tm.tm_hour << 22 | (uint32_t)tm.tm_min << 16 | (uint32_t)tm.tm_sec << 10 |
               (uint32_t)(ts.tv_nsec / 1000000);
}

int gfx_send_avc420(Gfx *g, uint32_t frame_id, const uint8_t *data, size_t len, const RECTANGLE_16 *rects,
                    size_t n)
{
        if (!g->surface || n == 0 || n > UINT16_MAX || len > UINT32_MAX)
                return -EINVAL;
        RDPGFX_H264_QUANT_QUALITY *q = calloc(n, sizeof *q);
        if (!q)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                q[i] = (RDPGFX_H264_QUANT_QUALITY){ .qp = GFX_QP, .qualityVal = 100, .p = 0 };
        RDPGFX_AVC420_BITMAP_STREAM avc = {
                .meta = { .numRegionRects = (UINT32)n, .regionRects = (RECTANGLE_16 *)rects, .quantQualityVals = q },
                .length = (UINT32)len,
                .data = (BYTE *)data,
        };
        RDPGFX_SURFACE_COMMAND cmd = {
                .surfaceId = GFX_SURFACE_ID, .codecId = RDPGFX_CODECID_AVC420, .format = PIXEL_FORMAT_BGRX32,
                .left = 0, .top = 0, .right = g->width, .bottom = g->height, .width = g->width, .height = g->height,
                .length = 0, .data = NULL, .extra = &avc,
        };
        RDPGFX_START_FRAME_PDU start = { .timestamp = frame_timestamp(), .frameId = frame_id };
        RDPGFX_END_FRAME_PDU end = { .frameId = frame_id };
        UINT rc = g->ctx->SurfaceFrameCommand(g->ctx, &cmd, &start, &end);
        free(q);
        return rc == CHANNEL_RC_OK ? 0 : -EIO;
}

int gfx_frame_begin(Gfx *g, uint32_t frame_id)
{
        RDPGFX_START_FRAME_PDU start = { .timestamp = frame_timestamp(), .frameId = frame_id };
        return g->surface && g->ctx->StartFrame(g->ctx, &start) == CHANNEL_RC_OK ? 0 : -EIO;
}

int gfx_send_planar(Gfx *g, const RECTANGLE_16 *r, const uint8_t *data, size_t len)
{
        if (!g->surface || len > UINT32_MAX || r->right > g->width || r->bottom > g->height || r->left >= r->right ||
            r->top >= r->bottom)
                return -EINVAL;
        RDPGFX_SURFACE_COMMAND cmd = {
                .surfaceId = GFX_SURFACE_ID, .codecId = RDPGFX_CODECID_PLANAR, .format = PIXEL_FORMAT_BGRX32,
                .left = r->left, .top = r->top, .right = r->right, .bottom = r->bottom,
                .width = (UINT32)(r->right - r->left), .height = (UINT32)(r->bottom - r->top),
                .length = (UINT32)len, .data = (BYTE *)data,
        };
        return g->ctx->SurfaceCommand(g->ctx, &cmd) == CHANNEL_RC_OK ? 0 : -EIO;
}

int gfx_frame_end(Gfx *g, uint32_t frame_id)
{
        RDPGFX_END_FRAME_PDU end = { .frameId = frame_id };
        return g->ctx->EndFrame(g->ctx, &end) == CHANNEL_RC_OK ? 0 : -EIO;
}
