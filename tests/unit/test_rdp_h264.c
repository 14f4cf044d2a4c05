/* slate-session's graphics pipeline pieces that run without a client: the capability choice
 * (pure), and the H.264 encoder checked by FreeRDP's own decoder (the one xfreerdp uses): the
 * picture comes back within a PSNR bound, a small change costs a small frame, no change almost
 * nothing, and only the converted rects change the next picture. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <criterion/criterion.h>
#include <freerdp/codec/color.h>
#include <freerdp/codec/h264.h>
#include "rdp/gfx.h"
#include "rdp/h264.h"

#define W 320
#define H 240

/* ---- capabilities ---- */

Test(rdp_gfx, caps_prefer_the_highest_version_that_allows_avc420)
{
        RDPGFX_CAPSET c[] = {
                { .version = RDPGFX_CAPVERSION_8 },
                { .version = RDPGFX_CAPVERSION_81, .flags = RDPGFX_CAPS_FLAG_AVC420_ENABLED },
                { .version = RDPGFX_CAPVERSION_107 },
                { .version = RDPGFX_CAPVERSION_105 },
        };
        cr_assert_eq(gfx_caps_choose(c, 4), 2);
}

Test(rdp_gfx, caps_skip_versions_with_avc_off)
{
        RDPGFX_CAPSET c[] = {
                { .version = RDPGFX_CAPVERSION_107, .flags = RDPGFX_CAPS_FLAG_AVC_DISABLED },
                { .version = RDPGFX_CAPVERSION_81, .flags = RDPGFX_CAPS_FLAG_AVC420_ENABLED },
                { .version = RDPGFX_CAPVERSION_10, .flags = RDPGFX_CAPS_FLAG_AVC_DISABLED },
        };
        cr_assert_eq(gfx_caps_choose(c, 3), 1);
        c[1].flags = 0;
        cr_assert_eq(gfx_caps_choose(c, 3), -1, "8.1 without AVC420_ENABLED has no H.264");
}

Test(rdp_gfx, caps_ignore_unknown_versions_and_empty_lists)
{
        RDPGFX_CAPSET c[] = { { .version = 0x000B0000 }, { .version = 0xFFFFFFFF }, { .version = RDPGFX_CAPVERSION_8 } };
        cr_assert_eq(gfx_caps_choose(c, 3), -1);
        cr_assert_eq(gfx_caps_choose(NULL, 0), -1);
}

/* ---- H.264 ---- */

static uint8_t *picture(void)
{
        uint8_t *p = malloc((size_t)W * H * 4);
        cr_assert_not_null(p);
        for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                        uint8_t *px = p + ((size_t)y * W + x) * 4;
                        /* a desktop-like picture: a gradient backdrop, a light window with dark "text" lines */
                        bool win = x >= 40 && x < 280 && y >= 30 && y < 200;
                        bool text = win && y % 12 < 2 && x % 40 < 30;
                        px[0] = win ? (text ? 30 : 240) : (uint8_t)(x * 255 / W);
                        px[1] = win ? (text ? 30 : 240) : (uint8_t)(y * 255 / H);
                        px[2] = win ? (text ? 30 : 235) : 120;
                        px[3] = 0xff;
                }
        return p;
}

static double psnr(const uint8_t *a, const uint8_t *b, const RECTANGLE_16 *r)
{
        double se = 0;
        size_t n = 0;
        for (int y = r->top; y < r->bottom; y++)
                for (int x = r->left; x < r->right; x++)
                        for (int c = 0; c < 3; c++) {
                                double d = (double)a[((size_t)y * W + x) * 4 + c] - b[((size_t)y * W + x) * 4 + c];
                                se += d * d;
                                n++;
                        }
        return se == 0 ? 99.0 : 10.0 * log10(255.0 * 255.0 / (se / (double)n));
}

typedef struct Pair {
        H264Enc *enc;
        H264_CONTEXT *dec;
        uint8_t *out;
} Pair;

static Pair pair_new(void)
{
        Pair p = { 0 };
        cr_assert_eq(h264_enc_new(W, H, NULL, &p.enc), 0);
        p.dec = h264_context_new(FALSE);
        cr_assert_not_null(p.dec, "FreeRDP has no H.264 decoder here");
        cr_assert(h264_context_reset(p.dec, W, H));
        p.out = calloc((size_t)W * H, 4);
        return p;
}

static void pair_free(Pair *p)
{
        h264_enc_free(p->enc);
        h264_context_free(p->dec);
        free(p->out);
}

/* Encode the current picture and decode it into p->out (the rects only); the frame's size. */
static size_t round_trip(Pair *p, RECTANGLE_16 *rects, size_t n, bool *idr)
{
        const uint8_t *au;
        size_t len;
        cr_assert_eq(h264_enc_encode(p->enc, &au, &len, idr), 0);
        if (len > 0)
                cr_assert_geq(avc420_decompress(p->dec, au, (UINT32)len, p->out, PIXEL_FORMAT_BGRX32, W * 4, W, H, rects,
                                                (UINT32)n), 0, "FreeRDP could not decode the frame");
        return len;
}

Test(rdp_h264, a_picture_comes_back_through_freerdps_decoder)
{
        Pair p = pair_new();
        uint8_t *pic = picture();
        RECTANGLE_16 all = { 0, 0, W, H };
        h264_enc_update(p.enc, pic, W * 4, &all, 1);
        bool idr;
        size_t first = round_trip(&p, &all, 1, &idr);
        cr_assert(idr, "the first frame is a key frame");
        double q = psnr(pic, p.out, &all);
        cr_log_info("IDR %zu bytes, PSNR %.1f dB", first, q);
        cr_assert_gt(q, 35.0, "PSNR %.1f dB", q);

        /* A small change: a 32x32 square; only it is converted and sent. */
        RECTANGLE_16 sq = { 100, 100, 132, 132 };
        for (int y = sq.top; y < sq.bottom; y++)
                for (int x = sq.left; x < sq.right; x++)
                        memcpy(pic + ((size_t)y * W + x) * 4, (uint8_t[]){ 0, 0, 255, 255 }, 4);
        h264_enc_update(p.enc, pic, W * 4, &sq, 1);
        size_t small = round_trip(&p, &sq, 1, &idr);
        cr_assert(!idr);
        q = psnr(pic, p.out, &all);
        cr_log_info("P frame for a 32x32 change: %zu bytes, PSNR %.1f dB", small, q);
        cr_assert_gt(q, 35.0, "PSNR %.1f dB after a change", q);
        cr_assert_lt(small * 4, first, "a 32x32 change cost %zu bytes against %zu for the whole picture", small, first);

        /* No change: next to nothing. */
        size_t none = round_trip(&p, &sq, 1, &idr);
        cr_assert_lt(none, 64, "an unchanged picture cost %zu bytes", none);

        /* A forced key frame after a reset. */
        h264_enc_force_idr(p.enc);
        round_trip(&p, &all, 1, &idr);
        cr_assert(idr);
        free(pic);
        pair_free(&p);
}

Test(rdp_h264, only_the_given_rects_change_the_next_picture)
{
        Pair p = pair_new();
        uint8_t *pic = picture();
        RECTANGLE_16 all = { 0, 0, W, H };
        h264_enc_update(p.enc, pic, W * 4, &all, 1);
        bool idr;
        round_trip(&p, &all, 1, &idr);
        /* The whole framebuffer changes, but only the left half is said to: the right half stays. */
        uint8_t *white = malloc((size_t)W * H * 4);
        memset(white, 0xff, (size_t)W * H * 4);
        RECTANGLE_16 left = { 0, 0, W / 2, H }, right = { W / 2 + 8, 0, W, H };
        h264_enc_update(p.enc, white, W * 4, &left, 1);
        round_trip(&p, &all, 1, &idr);
        cr_assert_gt(psnr(white, p.out, &left), 35.0);
        cr_assert_gt(psnr(pic, p.out, &right), 35.0);
        free(white);
        free(pic);
        pair_free(&p);
}

Test(rdp_h264, odd_or_huge_sizes_are_refused)
{
        H264Enc *e = NULL;
        cr_assert_eq(h264_enc_new(321, 240, NULL, &e), -EINVAL);
        cr_assert_eq(h264_enc_new(320, 241, NULL, &e), -EINVAL);
        cr_assert_eq(h264_enc_new(0, 240, NULL, &e), -EINVAL);
        cr_assert_eq(h264_enc_new(8192, 240, NULL, &e), -EINVAL);
        cr_assert_null(e);
}
