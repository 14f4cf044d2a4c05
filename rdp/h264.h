/* H.264 encoding for the graphics pipeline's AVC420 codec, with libx264: BGRX frames in, Annex-B
 * access units out. The only file that includes x264.h. One encoder per surface size; frames
 * are encoded whole (x264 skips unchanged macroblocks cheaply), the damaged rectangles only
 * converted to YUV, so an idle desktop costs nothing and a small change little. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <freerdp/types.h>

typedef struct H264Enc H264Enc;

/* Rate control and speed (docs/design.md "Display" says why these): crf is x264's constant
 * rate factor (lower = better; 0 means the default), max_kbps the VBV ceiling (0: none). */
typedef struct H264Params {
        unsigned crf;
        unsigned max_kbps;
        unsigned threads;       /* 0: one (the session shares the host with the desktops) */
        const char *preset;     /* NULL: "superfast" */
} H264Params;

/* width and height: even, at most 4096 each. */
int h264_enc_new(uint32_t width, uint32_t height, const H264Params *p, H264Enc **ret);
H264Enc *h264_enc_free(H264Enc *e);

/* Copy the rects of fb (BGRX32, stride bytes per row, the encoder's size) into the next frame
 * (converted to YUV 4:2:0; each rect widened to even edges). */
void h264_enc_update(H264Enc *e, const uint8_t *fb, uint32_t stride, const RECTANGLE_16 *rects, size_t n);
/* The next frame is an IDR picture with SPS/PPS (after a reset, or when the client asks). */
void h264_enc_force_idr(H264Enc *e);
/* Encode the current frame: *ret_data (owned by the encoder, valid until the next call) gets the
 * Annex-B bytes, *ret_len their length, *ret_idr whether it is a key frame. */
int h264_enc_encode(H264Enc *e, const uint8_t **ret_data, size_t *ret_len, bool *ret_idr);
