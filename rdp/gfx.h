/* The RDP graphics pipeline (MS-RDPEGFX) on one connection: FreeRDP 2's rdpgfx server channel,
 * opened once the client's dynamic channels are up, its capabilities answered, one surface the
 * size of the desktop mapped to the output, H.264 (AVC420) frames sent to it, frame
 * acknowledgements handed to the connection's loop. The rdpgfx channel runs its own thread
 * (FreeRDP 2 has no switch for that): the capability answer and the acks cross to the loop
 * through an eventfd; everything else runs on the loop. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <freerdp/channels/rdpgfx.h>
#include <freerdp/freerdp.h>

typedef struct Gfx Gfx;

typedef enum GfxState {
        GFX_PENDING,    /* waiting for the dynamic channels or the client's capabilities */
        GFX_READY,      /* capabilities confirmed with AVC420: frames go through the pipeline */
        GFX_OFF,        /* the client has no AVC420 in GFX, or the channel failed: surface bits */
} GfxState;

/* The capability set to confirm from the client's: the highest version that allows AVC420
 * (8.1 with AVC420_ENABLED, 10.x without AVC_DISABLED); with none of those, -1. Pure (fuzzed). */
int gfx_caps_choose(const RDPGFX_CAPSET *sets, size_t n);

/* vcm: the peer's virtual channel manager. */
int gfx_new(HANDLE vcm, rdpContext *ctx, Gfx **ret);
Gfx *gfx_free(Gfx *g);
/* Readable when the state changed or an ack came: then gfx_poll. */
int gfx_fd(const Gfx *g);
/* From the loop, after each round of the peer's channels: opens the channel once the client's
 * dynamic channels are ready. *ret_state_changed: the state, or whether the client acknowledges
 * frames, differs from the last call's.
 * *ret_ack: the newest frame id acknowledged since the last call (true when there is one). */
GfxState gfx_poll(Gfx *g, bool *ret_state_changed, uint32_t *ret_ack, bool *ret_has_ack);
GfxState gfx_state(const Gfx *g);
/* The client acknowledges frames (it may suspend that: then frames go unpaced). */
bool gfx_acks_frames(const Gfx *g);

/* A new surface of width×height (the previous one deleted), mapped at 0,0 of one monitor. */
int gfx_surface_reset(Gfx *g, uint32_t width, uint32_t height);
/* One AVC420 frame: the Annex-B bytes, the rects of the surface they update (the client copies
 * only these from the decoded picture). */
int gfx_send_avc420(Gfx *g, uint32_t frame_id, const uint8_t *data, size_t len, const RECTANGLE_16 *rects,
                    size_t n);
/* A frame of several commands: begin, planar bitmaps (lossless; data as planar_compress wrote
 * it for a vertically flipped copy of r: GFX reads planar rows top-down), end. */
int gfx_frame_begin(Gfx *g, uint32_t frame_id);
int gfx_send_planar(Gfx *g, const RECTANGLE_16 *r, const uint8_t *data, size_t len);
int gfx_frame_end(Gfx *g, uint32_t frame_id);
