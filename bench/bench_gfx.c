/* bench_gfx: what a moving picture costs slate-session's encoders, side by side with FreeRDP 2.11's
 * own H.264 encoder (avc420_compress: libavcodec/libx264, preset medium, VBR 10 Mb/s as its
 * shadow server sets it) and RemoteFX, on the same frames in one run. The scene is the issue's: a
 * 480x360 photo-like window moving 8 px a frame over a still desktop ("moving"), then the same window
 * in place playing a picture that changes every frame ("video"). Slate encodes the damaged
 * rects (the window's old and new place); FreeRDP's H.264 takes the whole frame as its shadow
 * server does. Per frame: encode CPU time, bytes, and PSNR of the damaged area as the client
 * decodes it (FreeRDP's decoder, the one xfreerdp uses). Prints a markdown table.
 *   bench_gfx [-n FRAMES] [-s WxH]...   default 60 frames at 1280x800 and 1920x1080 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <freerdp/codec/color.h>
#include <freerdp/codec/h264.h>
#include <freerdp/codec/rfx.h>
#include <freerdp/primitives.h>
#include "rdp/h264.h"

#define WIN_W 480
#define WIN_H 360
#define STEP 8

typedef struct Scene {
        uint32_t w, h;
        uint8_t *fb, *desk, *photo;
        int x, y;               /* the window's top-left */
        bool video;             /* the window stays and plays (its picture changes every frame) */
        int t;
} Scene;

static bool g_video;

static double cpu_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void px(uint8_t *p, int r, int g, int b)
{
        p[0] = (uint8_t)b;
        p[1] = (uint8_t)g;
        p[2] = (uint8_t)r;
        p[3] = 0xff;
}

/* The photo: smooth colour fields with fine detail, like a picture (not noise); as video, the
 * fields drift and turn a little each frame, as a camera pan does. */
static void photo_paint(Scene *s)
{
        double t = s->t;
        for (int y = 0; y < WIN_H; y++)
                for (int x = 0; x < WIN_W; x++) {
                        double a = sin((x + 3 * t) / 23.0) * cos((y - 2 * t) / 17.0), b = sin((x + y + 5 * t) / 41.0),
                               c = cos(x / 7.0 + y / 9.0 + t / 5.0);
                        px(s->photo + ((size_t)y * WIN_W + x) * 4, (int)(128 + 100 * a + 20 * c),
                           (int)(128 + 90 * b + 15 * c), (int)(128 + 80 * a * b + 20 * c));
                }
}

static void scene_init(Scene *s, uint32_t w, uint32_t h)
{
        *s = (Scene){ .w = w, .h = h, .x = 40, .y = 60 };
        s->fb = malloc((size_t)w * h * 4);
        s->desk = malloc((size_t)w * h * 4);
        s->photo = malloc((size_t)WIN_W * WIN_H * 4);
        /* The desktop: a backdrop gradient, a panel, a light window with lines of "text". */
        for (uint32_t y = 0; y < h; y++)
                for (uint32_t x = 0; x < w; x++) {
                        uint8_t *p = s->desk + ((size_t)y * w + x) * 4;
                        bool panel = y < 28, win = x > w / 2 && x < w - 40 && y > 100 && y < h - 100;
                        bool text = win && y % 14 < 9 && (x * 7 + y * 3) % 11 < 6 && x % 97 < 80;
                        if (panel)
                                px(p, 246, 245, 244);
                        else if (text)
                                px(p, 40, 40, 40);
                        else if (win)
                                px(p, 252, 252, 252);
                        else
                                px(p, 21 + (int)(x * 30 / w), 34 + (int)(y * 40 / h), 51 + (int)(x * 20 / w));
                }
        s->video = g_video;
        photo_paint(s);
        memcpy(s->fb, s->desk, (size_t)w * h * 4);
}

static void scene_free(Scene *s)
{
        free(s->fb);
        free(s->desk);
        free(s->photo);
}

static void draw_window(Scene *s, bool on)
{
        for (int y = 0; y < WIN_H; y++) {
                uint8_t *dst = s->fb + ((size_t)(s->y + y) * s->w + (size_t)s->x) * 4;
                const uint8_t *src = on ? s->photo + (size_t)y * WIN_W * 4 : s->desk + ((size_t)(s->y + y) * s->w + s->x) * 4;
                memcpy(dst, src, WIN_W * 4);
        }
}

/* Moves the window one step (bouncing), returns the damage: old and new place, one rect. */
static RECTANGLE_16 scene_step(Scene *s, int *dx)
{
        if (s->video) {
                s->t++;
                photo_paint(s);
                draw_window(s, true);
                return (RECTANGLE_16){ (UINT16)s->x, (UINT16)s->y, (UINT16)(s->x + WIN_W), (UINT16)(s->y + WIN_H) };
        }
        int ox = s->x;
        draw_window(s, false);
        if (s->x + *dx < 0 || s->x + *dx + WIN_W > (int)s->w)
                *dx = -*dx;
        s->x += *dx;
        draw_window(s, true);
        int l = ox < s->x ? ox : s->x, r = (ox > s->x ? ox : s->x) + WIN_W;
        return (RECTANGLE_16){ (UINT16)l, (UINT16)s->y, (UINT16)r, (UINT16)(s->y + WIN_H) };
}

static double psnr_rect(const uint8_t *a, const uint8_t *b, uint32_t w, const RECTANGLE_16 *r)
{
        double se = 0;
        size_t n = 0;
        for (int y = r->top; y < r->bottom; y++)
                for (int x = r->left; x < r->right; x++)
                        for (int c = 0; c < 3; c++) {
                                double d = (double)a[((size_t)y * w + x) * 4 + c] - b[((size_t)y * w + x) * 4 + c];
                                se += d * d;
                                n++;
                        }
        return se == 0 ? 99.0 : 10 * log10(255.0 * 255.0 / (se / (double)n));
}

typedef struct Row {
        double cpu, bytes, psnr;
        int frames;
} Row;

static int cmp_d(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
        qsort(v, (size_t)n, sizeof *v, cmp_d);
        return n ? v[n / 2] : 0;
}

static void print_row(const char *what, uint32_t w, uint32_t h, double *cpu, double *bytes, double psnr_sum, int n)
{
        double c = median(cpu, n), b = median(bytes, n);
        printf("| %s | %ux%u | %s | %.1f | %.1f | %.0f | %.1f |\n", g_video ? "video" : "moving", w, h, what, c, b / 1000,
               b * 30 / 1000, psnr_sum / n);
}

/* Slate's encoder: preset and CRF. */
static void run_slate(uint32_t w, uint32_t h, int frames, const char *preset, unsigned crf)
{
        Scene s;
        scene_init(&s, w, h);
        H264Enc *e;
        H264Params p = { .crf = crf, .preset = preset, .max_kbps = 20000 };
        if (h264_enc_new(w, h, &p, &e) < 0) {
                fprintf(stderr, "bench_gfx: h264_enc_new failed\n");
                exit(1);
        }
        H264_CONTEXT *dec = h264_context_new(FALSE);
        h264_context_reset(dec, w, h);
        uint8_t *out = calloc((size_t)w * h, 4);
        RECTANGLE_16 all = { 0, 0, (UINT16)w, (UINT16)h };
        const uint8_t *au;
        size_t len;
        bool idr;
        draw_window(&s, true);
        h264_enc_update(e, s.fb, w * 4, &all, 1);
        h264_enc_encode(e, &au, &len, &idr);
        avc420_decompress(dec, au, (UINT32)len, out, PIXEL_FORMAT_BGRX32, w * 4, w, h, &all, 1);
        double *cpu = calloc((size_t)frames, sizeof(double)), *bytes = calloc((size_t)frames, sizeof(double)), q = 0;
        int dx = STEP;
        for (int i = 0; i < frames; i++) {
                RECTANGLE_16 d = scene_step(&s, &dx);
                double c0 = cpu_ms();
                h264_enc_update(e, s.fb, w * 4, &d, 1);
                h264_enc_encode(e, &au, &len, &idr);
                cpu[i] = cpu_ms() - c0;
                bytes[i] = (double)len;
                avc420_decompress(dec, au, (UINT32)len, out, PIXEL_FORMAT_BGRX32, w * 4, w, h, &d, 1);
                q += psnr_rect(s.fb, out, w, &d);
        }
        char what[96];
        snprintf(what, sizeof what, "Slate AVC420, x264 %s, CRF %u, damaged rects", preset, crf);
        print_row(what, w, h, cpu, bytes, q, frames);
        free(cpu);
        free(bytes);
        free(out);
        h264_context_free(dec);
        h264_enc_free(e);
        scene_free(&s);
}

/* FreeRDP 2.11's own: the whole frame, as its shadow server encodes it. */
static void run_freerdp(uint32_t w, uint32_t h, int frames)
{
        Scene s;
        scene_init(&s, w, h);
        H264_CONTEXT *enc = h264_context_new(TRUE), *dec = h264_context_new(FALSE);
        if (!enc || !dec) {
                printf("| %s | %ux%u | FreeRDP avc420_compress | not available | | | |\n", g_video ? "video" : "moving", w, h);
                return;
        }
        enc->RateControlMode = H264_RATECONTROL_VBR;
        enc->BitRate = 10000000;
        enc->FrameRate = 30;
        h264_context_reset(enc, w, h);
        h264_context_reset(dec, w, h);
        uint8_t *out = calloc((size_t)w * h, 4);
        RECTANGLE_16 all = { 0, 0, (UINT16)w, (UINT16)h };
        BYTE *au = NULL;
        UINT32 len = 0;
        draw_window(&s, true);
        avc420_compress(enc, s.fb, PIXEL_FORMAT_BGRX32, w * 4, w, h, &au, &len);
        avc420_decompress(dec, au, len, out, PIXEL_FORMAT_BGRX32, w * 4, w, h, &all, 1);
        double *cpu = calloc((size_t)frames, sizeof(double)), *bytes = calloc((size_t)frames, sizeof(double)), q = 0;
        int dx = STEP;
        for (int i = 0; i < frames; i++) {
                RECTANGLE_16 d = scene_step(&s, &dx);
                double c0 = cpu_ms();
                int r = avc420_compress(enc, s.fb, PIXEL_FORMAT_BGRX32, w * 4, w, h, &au, &len);
                cpu[i] = cpu_ms() - c0;
                bytes[i] = r < 0 ? 0 : (double)len;
                if (r >= 0)
                        avc420_decompress(dec, au, len, out, PIXEL_FORMAT_BGRX32, w * 4, w, h, &all, 1);
                q += psnr_rect(s.fb, out, w, &d);
        }
        print_row("FreeRDP 2.11 avc420_compress (its x264 preset, VBR 10 Mb/s), whole frame", w, h, cpu, bytes, q,
                  frames);
        free(cpu);
        free(bytes);
        free(out);
        h264_context_free(enc);
        h264_context_free(dec);
        scene_free(&s);
}

/* RemoteFX on the damaged rects (slate-session's surface-bits codec), lossy DWT: PSNR via its decoder. */
static void run_rfx(uint32_t w, uint32_t h, int frames)
{
        Scene s;
        scene_init(&s, w, h);
        RFX_CONTEXT *rfx = rfx_context_new(TRUE);
        rfx_context_reset(rfx, w, h);
        rfx->mode = RLGR3;
        rfx_context_set_pixel_format(rfx, PIXEL_FORMAT_BGRX32);
        wStream *st = Stream_New(NULL, 4u << 20);
        double *cpu = calloc((size_t)frames, sizeof(double)), *bytes = calloc((size_t)frames, sizeof(double));
        int dx = STEP;
        draw_window(&s, true);
        for (int i = 0; i < frames; i++) {
                RECTANGLE_16 d = scene_step(&s, &dx);
                RFX_RECT rr = { d.left, d.top, (UINT16)(d.right - d.left), (UINT16)(d.bottom - d.top) };
                double c0 = cpu_ms();
                size_t n = 0;
                RFX_MESSAGE *m = rfx_encode_messages_ex(rfx, &rr, 1, s.fb, w, h, w * 4, &n, 4u << 20);
                double b = 0;
                for (size_t k = 0; k < n; k++) {
                        Stream_SetPosition(st, 0);
                        rfx_write_message(rfx, st, &m[k]);
                        b += (double)Stream_GetPosition(st);
                        rfx_message_free(rfx, &m[k]);
                }
                free(m);
                cpu[i] = cpu_ms() - c0;
                bytes[i] = b;
        }
        double c = median(cpu, frames), b = median(bytes, frames);
        printf("| %s | %ux%u | RemoteFX (slate-session's surface bits), damaged rects | %.1f | %.1f | %.0f | – |\n",
               g_video ? "video" : "moving", w, h, c, b / 1000, b * 30 / 1000);
        Stream_Free(st, TRUE);
        free(cpu);
        free(bytes);
        rfx_context_free(rfx);
        scene_free(&s);
}

int main(int argc, char **argv)
{
        int frames = 60, nsizes = 0;
        uint32_t sizes[8][2];
        int c;
        while ((c = getopt(argc, argv, "n:s:h")) != -1) {
                if (c == 'n')
                        frames = atoi(optarg);
                else if (c == 's' && nsizes < 8 && sscanf(optarg, "%ux%u", &sizes[nsizes][0], &sizes[nsizes][1]) == 2)
                        nsizes++;
                else {
                        fprintf(stderr, "usage: bench_gfx [-n FRAMES] [-s WxH]...\n"
                                        "A moving 480x360 picture over a still desktop, encoded by slate-session's\n"
                                        "H.264 (x264 presets and CRFs), FreeRDP 2.11's own H.264 and RemoteFX:\n"
                                        "CPU ms and bytes per frame, and PSNR as FreeRDP's decoder shows it.\n");
                        return c == 'h' ? 0 : 2;
                }
        }
        if (frames < 2)
                frames = 2;
        if (!nsizes) {
                sizes[0][0] = 1280, sizes[0][1] = 800, sizes[1][0] = 1920, sizes[1][1] = 1080;
                nsizes = 2;
        }
        primitives_set_hints(PRIMITIVES_ONLY_CPU);
        printf("| scene | size | encoder | CPU ms/frame (p50) | KB/frame (p50) | KB/s at 30 fps | PSNR dB (changed area, mean) |\n");
        printf("|---|---|---|---|---|---|---|\n");
        for (int v = 0; v < 2; v++) {
                g_video = v;
                for (int i = 0; i < nsizes; i++) {
                        uint32_t w = sizes[i][0], h = sizes[i][1];
                        run_slate(w, h, frames, "ultrafast", 23);
                        run_slate(w, h, frames, "superfast", 23);
                        run_slate(w, h, frames, "veryfast", 23);
                        run_slate(w, h, frames, "ultrafast", 20);
                        run_slate(w, h, frames, "ultrafast", 26);
                        run_freerdp(w, h, frames);
                        run_rfx(w, h, frames);
                }
        }
        return 0;
}
