/* Codec choice and frame encoding (see encoder.h). The codecs are rows of one table, in order
 * of preference; driver_choose is the only place that picks one. Every PDU is kept under
 * the client's MultifragMaxRequestSize: FreeRDP refuses a bigger fast-path update outright. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <freerdp/codec/color.h>
#include <freerdp/codec/nsc.h>
#include <freerdp/codec/planar.h>
#include <freerdp/codec/region.h>
#include <freerdp/codec/rfx.h>
#include <freerdp/primitives.h>
#include <winpr/stream.h>
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "rdp/encoder.h"
#include "rdp/gfx.h"
#include "rdp/h264.h"

#define TILE 64
#define PDU_SLACK 2048          /* headers around a payload inside one fast-path update */

typedef struct EncoderDriver EncoderDriver;

struct Encoder {
        rdpContext *ctx;
        const EncoderDriver *drv;
        uint32_t width, height;
        uint32_t max_pdu;       /* largest payload per update PDU */
        bool markers;           /* client takes surface frame markers and acks them */
        wStream *s;
        /* codec state: each driver sets up and frees only its own */
        RFX_CONTEXT *rfx;
        NSC_CONTEXT *nsc;
        BITMAP_PLANAR_CONTEXT *planar;
        BITMAP_DATA *tiles;     /* planar batch */
        size_t ntiles_max;
        Gfx *gfx;               /* the graphics pipeline when ready (not owned) */
        H264Enc *h264;
        /* avc420's lossless pass: per TILE square, when it was last sent lossy (ms since boot, 0:
         * exact on the client); planar (e->planar, TILE rows high) sends it again once still. */
        uint64_t *lossy_at;
        uint32_t tiles_x, tiles_y;
        uint8_t *flip;          /* one TILE-high band, rows in reverse */
};

/* One codec, libvirt-driver style: what the client must offer, then set-up, encode+send, free. */
struct EncoderDriver {
        const char *name;       /* in logs */
        const char *option;     /* the SLATE_SESSION_CODEC value that asks for it */
        /* The client can decode it (negotiated capabilities). */
        bool (*offered)(const rdpSettings *st, const Gfx *gfx);
        /* Chosen unasked only when the client takes multifragment updates at least this big. */
        uint32_t min_multifrag;
        int (*init)(Encoder *e, const rdpSettings *st);
        /* Send r[0..n) (non-empty, inside width×height) of fb as frame frame_id. */
        int (*send)(Encoder *e, const uint8_t *fb, uint32_t stride, const RECTANGLE_16 *r, uint32_t n,
                    uint32_t frame_id, EncoderStats *stats);
        void (*free)(Encoder *e);
};

static uint64_t clock_us(clockid_t id)
{
        struct timespec ts;
        clock_gettime(id, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* An encoding step's clocks: process CPU time (codec worker threads included) and wall time. */
typedef struct EncodeClock {
        uint64_t cpu, wall;
} EncodeClock;

static EncodeClock encode_start(void)
{
        return (EncodeClock){ clock_us(CLOCK_PROCESS_CPUTIME_ID), clock_us(CLOCK_MONOTONIC) };
}

static void encode_done(EncoderStats *stats, EncodeClock ec)
{
        stats->cpu_us += clock_us(CLOCK_PROCESS_CPUTIME_ID) - ec.cpu;
        stats->encode_us += clock_us(CLOCK_MONOTONIC) - ec.wall;
}

/* One SurfaceBits command, framed by markers when the client acks frames. */
static int send_surface(Encoder *e, SURFACE_BITS_COMMAND *cmd, bool first, bool last, uint32_t frame_id,
                        EncoderStats *stats)
{
        rdpUpdate *u = e->ctx->update;
        uint64_t t = clock_us(CLOCK_MONOTONIC);
        BOOL ok = e->markers ? u->SurfaceFrameBits(e->ctx, cmd, first, last, frame_id) : u->SurfaceBits(e->ctx, cmd);
        stats->send_us += clock_us(CLOCK_MONOTONIC) - t;
        stats->bytes += cmd->bmp.bitmapDataLength;
        stats->pdus++;
        return ok ? 0 : -EIO;
}

/* ---- RemoteFX: SurfaceBits, split into messages by FreeRDP ---- */

static bool remotefx_offered(const rdpSettings *st, const Gfx *gfx)
{
        return freerdp_settings_get_bool(st, FreeRDP_SurfaceCommandsEnabled) &&
               freerdp_settings_get_bool(st, FreeRDP_RemoteFxCodec);
}

static int remotefx_init(Encoder *e, const rdpSettings *st)
{
        e->rfx = rfx_context_new(TRUE);
        if (!e->rfx || !rfx_context_reset(e->rfx, e->width, e->height))
                return -ENOMEM;
        e->rfx->mode = RLGR3;
        rfx_context_set_pixel_format(e->rfx, PIXEL_FORMAT_BGRX32);
        return 0;
}

static void remotefx_free(Encoder *e)
{
        rfx_context_free(e->rfx);
        e->rfx = NULL;
}

static int remotefx_send(Encoder *e, const uint8_t *fb, uint32_t stride, const RECTANGLE_16 *r, uint32_t n,
                         uint32_t frame_id, EncoderStats *stats)
{
        RFX_RECT *rr = calloc(n, sizeof *rr);
        if (!rr)
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++)
                rr[i] = (RFX_RECT){ r[i].left, r[i].top, (UINT16)(r[i].right - r[i].left),
                                    (UINT16)(r[i].bottom - r[i].top) };
        size_t nmsg = 0;
        EncodeClock ec = encode_start();
        RFX_MESSAGE *msgs = rfx_encode_messages_ex(e->rfx, rr, n, fb, e->width, e->height, stride, &nmsg, e->max_pdu);
        encode_done(stats, ec);
        free(rr);
        if (!msgs)
                return log_error_errno(-EIO, "remotefx: encoding failed");

        SURFACE_BITS_COMMAND cmd = {
                .cmdType = CMDTYPE_STREAM_SURFACE_BITS,
                .destRight = e->width, .destBottom = e->height,
                .bmp = { .bpp = 32, .codecID = (UINT16)freerdp_settings_get_uint32(e->ctx->settings,
                                                                                    FreeRDP_RemoteFxCodecId),
                         .width = (UINT16)e->width, .height = (UINT16)e->height },
                .skipCompression = TRUE,
        };
        int r2 = 0;
        for (size_t i = 0; i < nmsg; i++) {
                if (r2 == 0) {
                        Stream_SetPosition(e->s, 0);
                        if (!rfx_write_message(e->rfx, e->s, &msgs[i])) {
                                r2 = log_error_errno(-EIO, "remotefx: writing message failed");
                        } else {
                                cmd.bmp.bitmapDataLength = (UINT32)Stream_GetPosition(e->s);
                                cmd.bmp.bitmapData = Stream_Buffer(e->s);
                                r2 = send_surface(e, &cmd, i == 0, i + 1 == nmsg, frame_id, stats);
                        }
                }
                rfx_message_free(e->rfx, &msgs[i]);
        }
        free(msgs);
        return r2;
}

/* ---- NSCodec: SurfaceBits in bands ---- */

static bool nscodec_offered(const rdpSettings *st, const Gfx *gfx)
{
        return freerdp_settings_get_bool(st, FreeRDP_SurfaceCommandsEnabled) &&
               freerdp_settings_get_bool(st, FreeRDP_NSCodec);
}

static int nscodec_init(Encoder *e, const rdpSettings *st)
{
        e->nsc = nsc_context_new();
        if (!e->nsc || !nsc_context_reset(e->nsc, e->width, e->height))
                return -ENOMEM;
        nsc_context_set_parameters(e->nsc, NSC_COLOR_LOSS_LEVEL,
                                   freerdp_settings_get_uint32(st, FreeRDP_NSCodecColorLossLevel));
        nsc_context_set_parameters(e->nsc, NSC_ALLOW_SUBSAMPLING,
                                   freerdp_settings_get_bool(st, FreeRDP_NSCodecAllowSubsampling));
        nsc_context_set_parameters(e->nsc, NSC_COLOR_FORMAT, PIXEL_FORMAT_BGRX32);
        return 0;
}

static void nscodec_free(Encoder *e)
{
        nsc_context_free(e->nsc);
        e->nsc = NULL;
}

static int nscodec_send(Encoder *e, const uint8_t *fb, uint32_t stride, const RECTANGLE_16 *r, uint32_t n,
                        uint32_t frame_id, EncoderStats *stats)
{
        /* NSC has no splitting of its own: cut rects into bands whose worst case (four raw
         * planes) fits one PDU. */
        SURFACE_BITS_COMMAND cmd = {
                .cmdType = CMDTYPE_STREAM_SURFACE_BITS,
                .bmp = { .bpp = 32, .codecID = (UINT16)freerdp_settings_get_uint32(e->ctx->settings, FreeRDP_NSCodecId) },
                /* Bulk compression shrinks NSC output about 5x for 2.5x the time (research §3). */
                .skipCompression = FALSE,
        };
        size_t count = 0, total = 0;
        for (uint32_t i = 0; i < n; i++) {
                uint32_t w = r[i].right - r[i].left, h = r[i].bottom - r[i].top;
                uint32_t band = e->max_pdu / (w * 4 + 64);
                band = band < 1 ? 1 : band > TILE ? TILE : band;
                total += (h + band - 1) / band;
        }
        for (uint32_t i = 0; i < n; i++) {
                uint32_t w = r[i].right - r[i].left, h = r[i].bottom - r[i].top;
                uint32_t band = e->max_pdu / (w * 4 + 64);
                band = band < 1 ? 1 : band > TILE ? TILE : band;
                for (uint32_t y = 0; y < h; y += band) {
                        uint32_t bh = h - y < band ? h - y : band;
                        const uint8_t *src = fb + (size_t)(r[i].top + y) * stride + (size_t)r[i].left * 4;
                        EncodeClock ec = encode_start();
                        Stream_SetPosition(e->s, 0);
                        BOOL ok = nsc_compose_message(e->nsc, e->s, src, w, bh, stride);
                        encode_done(stats, ec);
                        if (!ok)
                                return log_error_errno(-EIO, "nscodec: encoding failed");
                        cmd.destLeft = r[i].left;
                        cmd.destTop = r[i].top + y;
                        cmd.destRight = r[i].left + w;
                        cmd.destBottom = r[i].top + y + bh;
                        cmd.bmp.width = (UINT16)w;
                        cmd.bmp.height = (UINT16)bh;
                        cmd.bmp.bitmapDataLength = (UINT32)Stream_GetPosition(e->s);
                        cmd.bmp.bitmapData = Stream_Buffer(e->s);
                        int rr = send_surface(e, &cmd, count == 0, count + 1 == total, frame_id, stats);
                        count++;
                        if (rr < 0)
                                return rr;
                }
        }
        return 0;
}

/* ---- planar: legacy bitmap updates, 64x64 tiles, any client ---- */

static bool planar_offered(const rdpSettings *st, const Gfx *gfx) { return true; }

static int planar_init(Encoder *e, const rdpSettings *st)
{
        DWORD flags = PLANAR_FORMAT_HEADER_RLE;
        if (freerdp_settings_get_bool(st, FreeRDP_DrawAllowSkipAlpha))
                flags |= PLANAR_FORMAT_HEADER_NA;
        e->planar = freerdp_bitmap_planar_context_new(flags, TILE, TILE);
        if (!e->planar)
                return -ENOMEM;
        e->ntiles_max = (e->width + TILE - 1) / TILE;
        e->tiles = calloc(e->ntiles_max, sizeof *e->tiles);
        return e->tiles ? 0 : -ENOMEM;
}

static void planar_free(Encoder *e)
{
        freerdp_bitmap_planar_context_free(e->planar);
        e->planar = NULL;
        free(e->tiles);
        e->tiles = NULL;
}

static int planar_flush(Encoder *e, size_t *nt, EncoderStats *stats)
{
        if (*nt == 0)
                return 0;
        BITMAP_UPDATE bu = { .count = (UINT32)*nt, .number = (UINT32)*nt, .rectangles = e->tiles };
        uint64_t t = clock_us(CLOCK_MONOTONIC);
        BOOL ok = e->ctx->update->BitmapUpdate(e->ctx, &bu);
        stats->send_us += clock_us(CLOCK_MONOTONIC) - t;
        stats->pdus++;
        for (size_t i = 0; i < *nt; i++) {
                free(e->tiles[i].bitmapDataStream);
                e->tiles[i].bitmapDataStream = NULL;
        }
        *nt = 0;
        return ok ? 0 : -EIO;
}

static int planar_send_tiles(Encoder *e, const uint8_t *fb, uint32_t stride, const RECTANGLE_16 *r, uint32_t n,
                             EncoderStats *stats)
{
        size_t nt = 0, batch = 0;
        int ret = 0;
        for (uint32_t i = 0; i < n && ret == 0; i++) {
                for (uint32_t y = r[i].top; y < r[i].bottom && ret == 0; y += TILE) {
                        for (uint32_t x = r[i].left; x < r[i].right; x += TILE) {
                                uint32_t w = r[i].right - x < TILE ? r[i].right - x : TILE;
                                uint32_t h = r[i].bottom - y < TILE ? r[i].bottom - y : TILE;
                                UINT32 size = 0;
                                EncodeClock ec = encode_start();
                                BYTE *data = freerdp_bitmap_compress_planar(e->planar, fb + (size_t)y * stride + (size_t)x * 4,
                                                                            PIXEL_FORMAT_BGRX32, w, h, stride, NULL, &size);
                                encode_done(stats, ec);
                                if (!data) {
                                        ret = log_error_errno(-EIO, "planar: encoding failed");
                                        break;
                                }
                                if (nt == e->ntiles_max || batch + size + 64 > e->max_pdu) {
                                        if ((ret = planar_flush(e, &nt, stats)) < 0) {
                                                free(data);
                                                break;
                                        }
                                        batch = 0;
                                }
                                /* BITMAP_DATA right/bottom are inclusive. */
                                e->tiles[nt++] = (BITMAP_DATA){
                                        .destLeft = x, .destTop = y, .destRight = x + w - 1, .destBottom = y + h - 1,
                                        .width = w, .height = h, .bitsPerPixel = 32, .compressed = TRUE,
                                        .bitmapLength = size, .bitmapDataStream = data,
                                };
                                batch += size + 64;
                                stats->bytes += size;
                        }
                }
        }
        int r2 = planar_flush(e, &nt, stats);
        return ret < 0 ? ret : r2;
}

static int planar_send(Encoder *e, const uint8_t *fb, uint32_t stride, const RECTANGLE_16 *r, uint32_t n,
                       uint32_t frame_id, EncoderStats *stats)
{
        /* Bitmap updates carry no frame id: bracket them with standalone markers. */
        rdpUpdate *u = e->ctx->update;
        if (e->markers) {
                SURFACE_FRAME_MARKER m = { SURFACECMD_FRAMEACTION_BEGIN, frame_id };
                if (!u->SurfaceFrameMarker(e->ctx, &m))
                        return -EIO;
        }
        int ret = planar_send_tiles(e, fb, stride, r, n, stats);
        if (ret == 0 && e->markers) {
                SURFACE_FRAME_MARKER m = { SURFACECMD_FRAMEACTION_END, frame_id };
                if (!u->SurfaceFrameMarker(e->ctx, &m))
                        ret = -EIO;
        }
        return ret;
}

/* ---- the graphics pipeline: H.264 (AVC420) encoded here with libx264 ---- */

/* Preset and rate control, measured with bench/sections/35-display.sh (docs/design.md
 * "Display"): x264's superfast preset (h264.c's default) sends about half of what ultrafast does
 * for a playing picture at +1.5 ms a frame (6-9 ms at 1080p, against 35-39 ms for FreeRDP's
 * own encoder); CRF 23 keeps 37+ dB where the picture changes; the VBV ceiling bounds a burst. */
#define AVC_CRF 23
#define AVC_MAX_KBPS 20000

/* An area sent as H.264 and unchanged for this long is sent again losslessly: text and still
 * pictures end up exact, a playing video or a moving window stays H.264 while it changes. */
#define REFINE_MS 300

static bool avc420_offered(const rdpSettings *st, const Gfx *gfx)
{
        return gfx && gfx_state(gfx) == GFX_READY;
}

static int avc420_init(Encoder *e, const rdpSettings *st)
{
        /* 4:2:0 needs even sides: an odd desktop stays on surface bits (encoder_new's check). */
        H264Params p = { .crf = AVC_CRF, .max_kbps = AVC_MAX_KBPS };
        int r = h264_enc_new(e->width, e->height, &p, &e->h264);
        if (r < 0)
                return r;
        if ((r = gfx_surface_reset(e->gfx, e->width, e->height)) < 0)
                return r;
        e->markers = gfx_acks_frames(e->gfx);
        e->tiles_x = (e->width + TILE - 1) / TILE;
        e->tiles_y = (e->height + TILE - 1) / TILE;
        e->lossy_at = calloc((size_t)e->tiles_x * e->tiles_y, sizeof *e->lossy_at);
        e->flip = malloc((size_t)e->width * TILE * 4);
        /* No alpha plane: the surface is XRGB. */
        e->planar = freerdp_bitmap_planar_context_new(PLANAR_FORMAT_HEADER_RLE | PLANAR_FORMAT_HEADER_NA, e->width,
                                                      TILE);
        return e->lossy_at && e->flip && e->planar ? 0 : -ENOMEM;
}

static void avc420_free(Encoder *e)
{
        e->h264 = h264_enc_free(e->h264);
        free(e->lossy_at);
        e->lossy_at = NULL;
        free(e->flip);
        e->flip = NULL;
        freerdp_bitmap_planar_context_free(e->planar);
        e->planar = NULL;
}

static void lossy_mark(Encoder *e, const RECTANGLE_16 *r, uint32_t n, uint64_t now)
{
        for (uint32_t i = 0; i < n; i++)
                for (uint32_t ty = r[i].top / TILE; ty * TILE < r[i].bottom && ty < e->tiles_y; ty++)
                        for (uint32_t tx = r[i].left / TILE; tx * TILE < r[i].right && tx < e->tiles_x; tx++)
                                e->lossy_at[(size_t)ty * e->tiles_x + tx] = now;
}

static int refine_tiles(Encoder *e, const uint8_t *fb, uint32_t stride, uint32_t frame_id, bool all,
                        EncoderStats *stats);

static int avc420_send(Encoder *e, const uint8_t *fb, uint32_t stride, const RECTANGLE_16 *r, uint32_t n,
                       uint32_t frame_id, EncoderStats *stats)
{
        EncodeClock ec = encode_start();
        h264_enc_update(e->h264, fb, stride, r, n);
        /* The whole picture (a new surface, a refresh): exact at once, as planar; H.264 takes
         * over with the next change (its first frame is then the key frame). */
        if (n == 1 && r[0].left == 0 && r[0].top == 0 && r[0].right == e->width && r[0].bottom == e->height) {
                encode_done(stats, ec);
                h264_enc_force_idr(e->h264);
                return refine_tiles(e, fb, stride, frame_id, true, stats);
        }
        const uint8_t *au;
        size_t len;
        bool idr;
        int ret = h264_enc_encode(e->h264, &au, &len, &idr);
        encode_done(stats, ec);
        if (ret < 0)
                return ret;
        uint64_t t = clock_us(CLOCK_MONOTONIC);
        ret = gfx_send_avc420(e->gfx, frame_id, au, len, r, n);
        stats->send_us += clock_us(CLOCK_MONOTONIC) - t;
        stats->bytes += len;
        stats->pdus++;
        if (ret == 0)
                lossy_mark(e, r, n, now_ms());
        return ret;
}

/* One band of tiles [x0, x1) × [y, y + h) as planar, from a vertically flipped copy. */
static int refine_band(Encoder *e, const uint8_t *fb, uint32_t stride, uint32_t x0, uint32_t x1, uint32_t y,
                       uint32_t h, EncoderStats *stats)
{
        uint32_t w = x1 - x0;
        for (uint32_t row = 0; row < h; row++)
                memcpy(e->flip + (size_t)(h - 1 - row) * w * 4, fb + (size_t)(y + row) * stride + (size_t)x0 * 4,
                       (size_t)w * 4);
        UINT32 size = 0;
        EncodeClock ec = encode_start();
        BYTE *data = freerdp_bitmap_compress_planar(e->planar, e->flip, PIXEL_FORMAT_BGRX32, w, h, w * 4, NULL, &size);
        encode_done(stats, ec);
        if (!data)
                return log_error_errno(-EIO, "planar: encoding failed");
        RECTANGLE_16 r = { (UINT16)x0, (UINT16)y, (UINT16)x1, (UINT16)(y + h) };
        uint64_t t = clock_us(CLOCK_MONOTONIC);
        int ret = gfx_send_planar(e->gfx, &r, data, size);
        stats->send_us += clock_us(CLOCK_MONOTONIC) - t;
        stats->bytes += size;
        stats->pdus++;
        free(data);
        return ret;
}

/* ---- the table ---- */

/* In order of preference: the first row the client offers (with enough multifragment room) is
 * chosen. H.264 through the graphics pipeline first, once its channel is up with AVC420: a
 * moving picture costs a tenth of RemoteFX. RemoteFX next: every FreeRDP/mstsc client offers it
 * and it sends a third of what NSC does uncompressed, but it needs multifragment updates for any
 * real screen. Planar last: any client takes it. */
static const EncoderDriver encoder_drivers[] = {
        {
                .name = "avc420",
                .option = "gfx",
                .offered = avc420_offered,
                .init = avc420_init,
                .send = avc420_send,
                .free = avc420_free,
        },
        {
                .name = "remotefx",
                .option = "rfx",
                .offered = remotefx_offered,
                .min_multifrag = 64 * 1024,
                .init = remotefx_init,
                .send = remotefx_send,
                .free = remotefx_free,
        },
        {
                .name = "nscodec",
                .option = "nsc",
                .offered = nscodec_offered,
                .init = nscodec_init,
                .send = nscodec_send,
                .free = nscodec_free,
        },
        {
                .name = "planar",
                .option = "planar",
                .offered = planar_offered,
                .init = planar_init,
                .send = planar_send,
                .free = planar_free,
        },
};

static const EncoderDriver *driver_choose(const rdpSettings *st, const Gfx *gfx, const char *force)
{
        uint32_t multifrag = freerdp_settings_get_uint32(st, FreeRDP_MultifragMaxRequestSize);
        const EncoderDriver *best = &encoder_drivers[ELEMENTSOF(encoder_drivers) - 1];
        for (size_t i = 0; i < ELEMENTSOF(encoder_drivers); i++) {
                const EncoderDriver *d = &encoder_drivers[i];
                if (d->offered(st, gfx) && multifrag >= d->min_multifrag) {
                        best = d;
                        break;
                }
        }
        if (!force)
                return best;
        /* Asked for by name (benchmarks, debugging): any codec the client decodes. */
        for (size_t i = 0; i < ELEMENTSOF(encoder_drivers); i++)
                if (!strcmp(force, encoder_drivers[i].option) && encoder_drivers[i].offered(st, gfx))
                        return &encoder_drivers[i];
        log_warn("codec %s requested but not offered by the client; using %s", force, best->name);
        return best;
}

const char *encoder_codec_choose(const rdpSettings *st, const Gfx *gfx, const char *force)
{
        return driver_choose(st, gfx, force)->name;
}

int encoder_refine_wait(const Encoder *e)
{
        if (!e->lossy_at)
                return -1;
        uint64_t now = now_ms(), first = 0;
        for (size_t i = 0; i < (size_t)e->tiles_x * e->tiles_y; i++)
                if (e->lossy_at[i] && (!first || e->lossy_at[i] < first))
                        first = e->lossy_at[i];
        if (!first)
                return -1;
        return first + REFINE_MS <= now ? 0 : (int)(first + REFINE_MS - now);
}

/* The tiles due (all: every tile) as planar, in one frame; they are exact on the client after. */
static int refine_tiles(Encoder *e, const uint8_t *fb, uint32_t stride, uint32_t frame_id, bool all,
                        EncoderStats *stats)
{
        uint64_t now = now_ms();
        int ret = gfx_frame_begin(e->gfx, frame_id);
        /* Each row of tiles: runs of tiles due, one planar command per run. */
        for (uint32_t ty = 0; ty < e->tiles_y && ret == 0; ty++) {
                uint64_t *row = e->lossy_at + (size_t)ty * e->tiles_x;
                uint32_t y = ty * TILE, h = MIN(TILE, e->height - y);
                for (uint32_t tx = 0; tx < e->tiles_x && ret == 0;) {
#define DUE(t) (all || (row[t] && row[t] + REFINE_MS <= now))
                        if (!DUE(tx)) {
                                tx++;
                                continue;
                        }
                        uint32_t start = tx;
                        while (tx < e->tiles_x && DUE(tx))
                                row[tx++] = 0;
#undef DUE
                        ret = refine_band(e, fb, stride, start * TILE, MIN(tx * TILE, e->width), y, h, stats);
                }
        }
        int r2 = gfx_frame_end(e->gfx, frame_id);
        return ret < 0 ? ret : r2;
}

int encoder_refine(Encoder *e, const uint8_t *fb, uint32_t stride, uint32_t frame_id, EncoderStats *stats)
{
        return e->lossy_at ? refine_tiles(e, fb, stride, frame_id, false, stats) : 0;
}

const char *encoder_codec(const Encoder *e) { return e->drv->name; }
bool encoder_has_frame_acks(const Encoder *e) { return e->markers; }

Encoder *encoder_free(Encoder *e)
{
        if (!e)
                return NULL;
        e->drv->free(e);
        if (e->s)
                Stream_Free(e->s, TRUE);
        free(e);
        return NULL;
}

void encoder_setup_once(void)
{
        /* FreeRDP 2's default picks its pixel primitives by timing each candidate for 150 ms at
         * their first use (rfx_context_new, nsc_context_new), and a slate-session serves one
         * connection: that was 300-450 ms of every first frame. The CPU-optimised set is what the
         * timing picks on x86 (the distributions build no OpenCL). */
        primitives_set_hints(PRIMITIVES_ONLY_CPU);
}

int encoder_new(rdpContext *ctx, Gfx *gfx, uint32_t width, uint32_t height, const char *force, Encoder **ret)
{
        rdpSettings *st = ctx->settings;
        uint32_t multifrag = freerdp_settings_get_uint32(st, FreeRDP_MultifragMaxRequestSize);

        uint64_t t0 = clock_us(CLOCK_MONOTONIC);
        Encoder *e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        e->ctx = ctx;
        /* H.264 4:2:0 needs even sides. */
        e->gfx = width % 2 == 0 && height % 2 == 0 ? gfx : NULL;
        e->drv = driver_choose(st, e->gfx, force);
        e->width = width;
        e->height = height;
        /* Without multifragment support the client takes one 16 KiB fast-path PDU at most. */
        e->max_pdu = multifrag > 4 * PDU_SLACK ? multifrag - PDU_SLACK : 16384 - 512;
        e->markers = freerdp_settings_get_bool(st, FreeRDP_SurfaceCommandsEnabled) &&
                     freerdp_settings_get_bool(st, FreeRDP_SurfaceFrameMarkerEnabled) &&
                     freerdp_settings_get_uint32(st, FreeRDP_FrameAcknowledge) > 0;
        e->s = Stream_New(NULL, 256 * 1024);
        if (!e->s || e->drv->init(e, st) < 0) {
                log_error("encoder: cannot set up %s for %ux%u", e->drv->name, width, height);
                encoder_free(e);
                return -ENOMEM;
        }
        /* The set-up time is checked by tests/e2e/xfreerdp.sh: it is on every first frame. */
        log_info("encoder: %s %ux%u, frame acks %s, client multifrag %u, set up in %.1f ms", e->drv->name, width,
                 height, e->markers ? "on" : "off", multifrag, (clock_us(CLOCK_MONOTONIC) - t0) / 1000.0);
        *ret = e;
        return 0;
}

int encoder_send_frame(Encoder *e, const uint8_t *fb, uint32_t stride, const ConsoleRect *rects, size_t n,
                       uint32_t frame_id, EncoderStats *stats)
{
        REGION16 region;
        region16_init(&region);
        for (size_t i = 0; i < n; i++) {
                /* Callers clamp; this is the last line of defence before reading fb. */
                int64_t x1 = (int64_t)rects[i].x + rects[i].w, y1 = (int64_t)rects[i].y + rects[i].h;
                if (rects[i].x < 0 || rects[i].y < 0 || rects[i].w <= 0 || rects[i].h <= 0 || x1 > e->width ||
                    y1 > e->height)
                        continue;
                RECTANGLE_16 r = { (UINT16)rects[i].x, (UINT16)rects[i].y, (UINT16)x1, (UINT16)y1 };
                if (!region16_union_rect(&region, &region, &r)) {
                        region16_uninit(&region);
                        return -ENOMEM;
                }
        }
        UINT32 nr = 0;
        const RECTANGLE_16 *rr = region16_rects(&region, &nr);
        int ret = nr > 0 ? e->drv->send(e, fb, stride, rr, nr, frame_id, stats) : 0;
        region16_uninit(&region);
        return ret;
}
