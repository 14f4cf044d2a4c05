/* Frame encoding for slate-session: a table of codecs (H.264 through the graphics pipeline;
 * RemoteFX, then NSCodec, as SurfaceBits; planar bitmap updates otherwise), the first the client
 * offers chosen in one place, sending only the damaged area of the guest framebuffer, one frame
 * at a time with frame markers. Never reads outside the width×height it was created for: rects
 * outside it are dropped. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <freerdp/freerdp.h>
#include "rdp/console.h"
#include "rdp/gfx.h"

typedef struct EncoderStats {
        uint64_t bytes;         /* encoded payload handed to FreeRDP */
        uint64_t cpu_us;        /* process CPU time spent encoding (incl. codec worker threads) */
        uint64_t encode_us;     /* wall time encoding */
        uint64_t send_us;       /* wall time inside FreeRDP's send calls (TLS + socket) */
        uint32_t pdus;
} EncoderStats;

typedef struct Encoder Encoder;

/* The codec for a client with the negotiated settings st and graphics pipeline gfx (NULL when
 * not ready): "avc420", "remotefx", "nscodec" or "planar". force ("gfx", "rfx", "nsc", "planar"
 * or NULL) wins when the client offers that codec. */
const char *encoder_codec_choose(const rdpSettings *st, const Gfx *gfx, const char *force);
/* Once per process, before the first encoder: choose FreeRDP's pixel primitives without its
 * start-up timing run (300+ ms). */
void encoder_setup_once(void);
/* An encoder with the codec encoder_codec_choose names for ctx's settings and gfx (NULL: no
 * graphics pipeline; with one, a new surface of this size). width×height is the activated
 * desktop size. */
int encoder_new(rdpContext *ctx, Gfx *gfx, uint32_t width, uint32_t height, const char *force, Encoder **ret);
Encoder *encoder_free(Encoder *e);
/* The codec's name, as encoder_codec_choose gives it. */
const char *encoder_codec(const Encoder *e);
/* Whether the client acknowledges frames (then frame_id is echoed in SurfaceFrameAcknowledge). */
bool encoder_has_frame_acks(const Encoder *e);
/* Encode and send rects (already clamped to the desktop) of fb (BGRX32, stride bytes per row)
 * as one frame. Returns 0, or -EIO when FreeRDP refused a PDU (the client is gone). */
int encoder_send_frame(Encoder *e, const uint8_t *fb, uint32_t stride, const ConsoleRect *rects, size_t n,
                       uint32_t frame_id, EncoderStats *stats);
/* The lossless pass of a lossy codec (H.264): an area sent lossy and unchanged since is sent
 * again exactly. The ms until the first such area is due (0: now), -1 when there is none (or
 * the codec is exact). */
int encoder_refine_wait(const Encoder *e);
/* Send every area due as frame frame_id. */
int encoder_refine(Encoder *e, const uint8_t *fb, uint32_t stride, uint32_t frame_id, EncoderStats *stats);
