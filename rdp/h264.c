/* libx264 behind h264.h. Tuned for a remote desktop, not for film: zero latency (no B-frames, no
 * look-ahead, one frame in, one out), an infinite GOP with IDR pictures only when asked for (a
 * new surface or a client that lost its reference), CRF quality with a VBV ceiling. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <x264.h>
#include <freerdp/codec/color.h>
#include <freerdp/primitives.h>
#include "common/log.h"
#include "rdp/h264.h"

#define H264_MAX_SIDE 4096
#define H264_DEFAULT_CRF 23

struct H264Enc {
        x264_t *x;
        x264_picture_t pic;
        uint32_t width, height;
        int64_t pts;
        bool idr;
        uint8_t *out;           /* the access unit last encoded */
        size_t out_cap;
};

int h264_enc_new(uint32_t width, uint32_t height, const H264Params *p, H264Enc **ret)
{
        if (width == 0 || height == 0 || width % 2 || height % 2 || width > H264_MAX_SIDE || height > H264_MAX_SIDE)
                return -EINVAL;
        H264Enc *e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        e->width = width;
        e->height = height;
        x264_param_t xp;
        if (x264_param_default_preset(&xp, p && p->preset ? p->preset : "superfast", "zerolatency") < 0) {
                free(e);
                return -EINVAL;
        }
        xp.i_width = (int)width;
        xp.i_height = (int)height;
        xp.i_csp = X264_CSP_I420;
        xp.i_threads = p && p->threads ? (int)p->threads : 1;
        xp.b_sliced_threads = 0;
        xp.i_fps_num = 30;
        xp.i_fps_den = 1;
        xp.i_keyint_max = X264_KEYINT_MAX_INFINITE;
        xp.b_repeat_headers = 1;
        xp.b_annexb = 1;
        xp.i_log_level = X264_LOG_ERROR;
        /* Full-range BT.601 is not what FreeRDP's decoder assumes: keep x264's limited range. */
        xp.rc.i_rc_method = X264_RC_CRF;
        xp.rc.f_rf_constant = (float)(p && p->crf ? p->crf : H264_DEFAULT_CRF);
        if (p && p->max_kbps) {
                xp.rc.i_vbv_max_bitrate = (int)p->max_kbps;
                xp.rc.i_vbv_buffer_size = (int)p->max_kbps; /* one second */
        }
        if (x264_param_apply_profile(&xp, "high") < 0 || !(e->x = x264_encoder_open(&xp))) {
                free(e);
                return -EIO;
        }
        if (x264_picture_alloc(&e->pic, X264_CSP_I420, (int)width, (int)height) < 0) {
                x264_encoder_close(e->x);
                free(e);
                return -ENOMEM;
        }
        /* Black, like a new surface: Y 16, U/V 128 (limited range). */
        memset(e->pic.img.plane[0], 16, (size_t)e->pic.img.i_stride[0] * height);
        memset(e->pic.img.plane[1], 128, (size_t)e->pic.img.i_stride[1] * (height / 2));
        memset(e->pic.img.plane[2], 128, (size_t)e->pic.img.i_stride[2] * (height / 2));
        e->idr = true;
        *ret = e;
        return 0;
}

H264Enc *h264_enc_free(H264Enc *e)
{
        if (!e)
                return NULL;
        x264_picture_clean(&e->pic);
        x264_encoder_close(e->x);
        free(e->out);
        free(e);
        return NULL;
}

void h264_enc_update(H264Enc *e, const uint8_t *fb, uint32_t stride, const RECTANGLE_16 *rects, size_t n)
{
        primitives_t *prims = primitives_get();
        for (size_t i = 0; i < n; i++) {
                uint32_t x0 = rects[i].left & ~1u, y0 = rects[i].top & ~1u;
                uint32_t x1 = (rects[i].right + 1u) & ~1u, y1 = (rects[i].bottom + 1u) & ~1u;
                if (x1 > e->width)
                        x1 = e->width;
                if (y1 > e->height)
                        y1 = e->height;
                if (x0 >= x1 || y0 >= y1)
                        continue;
                BYTE *dst[3] = {
                        e->pic.img.plane[0] + (size_t)y0 * e->pic.img.i_stride[0] + x0,
                        e->pic.img.plane[1] + (size_t)(y0 / 2) * e->pic.img.i_stride[1] + x0 / 2,
                        e->pic.img.plane[2] + (size_t)(y0 / 2) * e->pic.img.i_stride[2] + x0 / 2,
                };
                UINT32 dst_step[3] = { (UINT32)e->pic.img.i_stride[0], (UINT32)e->pic.img.i_stride[1],
                                       (UINT32)e->pic.img.i_stride[2] };
                prim_size_t roi = { .width = x1 - x0, .height = y1 - y0 };
                prims->RGBToYUV420_8u_P3AC4R(fb + (size_t)y0 * stride + (size_t)x0 * 4, PIXEL_FORMAT_BGRX32, stride,
                                             dst, dst_step, &roi);
        }
}

void h264_enc_force_idr(H264Enc *e) { e->idr = true; }

int h264_enc_encode(H264Enc *e, const uint8_t **ret_data, size_t *ret_len, bool *ret_idr)
{
        x264_nal_t *nals = NULL;
        int nnal = 0;
        x264_picture_t out;
        e->pic.i_pts = e->pts++;
        e->pic.i_type = e->idr ? X264_TYPE_IDR : X264_TYPE_AUTO;
        int size = x264_encoder_encode(e->x, &nals, &nnal, &e->pic, &out);
        if (size < 0)
                return log_error_errno(-EIO, "h264: x264 failed to encode a %ux%u frame", e->width, e->height);
        /* Zero latency: each picture in gives its access unit out. An empty one (nothing changed
         * that x264 keeps) is still a frame the client acknowledges. */
        if ((size_t)size > e->out_cap) {
                uint8_t *n = realloc(e->out, (size_t)size);
                if (!n)
                        return -ENOMEM;
                e->out = n;
                e->out_cap = (size_t)size;
        }
        size_t off = 0;
        for (int i = 0; i < nnal; i++) {
                memcpy(e->out + off, nals[i].p_payload, (size_t)nals[i].i_payload);
                off += (size_t)nals[i].i_payload;
        }
        e->idr = false;
        *ret_data = e->out;
        *ret_len = off;
        *ret_idr = size > 0 && out.b_keyframe;
        return 0;
}
