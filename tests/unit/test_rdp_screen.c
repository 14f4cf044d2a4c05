/* slate-session's screens: the backdrop is the Xfce session's colour from the first frame, text is
 * drawn with the font, only what changed is reported, and hostile strings neither break cairo nor
 * overflow anything. */
#include <string.h>
#include <criterion/criterion.h>
#include "rdp/screen.h"

static ScreenFont *font;

static void setup(void)
{
        cr_assert_eq(screen_font_load(SCREEN_FONT_PATH, &font), 0, "font %s (fonts-dejavu-core)", SCREEN_FONT_PATH);
}

static void teardown(void)
{
        font = screen_font_free(font);
}

static uint32_t px(const Screen *s, uint32_t x, uint32_t y)
{
        uint32_t stride, w, h;
        const uint8_t *fb = screen_framebuffer(s, &stride, &w, &h);
        const uint8_t *p = fb + (size_t)y * stride + 4u * x;
        return (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Pixels in the card's middle band that are much brighter than the card: text. */
static size_t bright(const Screen *s, uint32_t y0, uint32_t y1)
{
        uint32_t stride, w, h;
        const uint8_t *fb = screen_framebuffer(s, &stride, &w, &h);
        size_t n = 0;
        for (uint32_t y = y0; y < y1 && y < h; y++)
                for (uint32_t x = 0; x < w; x++)
                        n += fb[(size_t)y * stride + 4u * x + 1] > 0xA0;
        return n;
}

Test(rdp_screen, progress_screen_backdrop_and_text, .init = setup, .fini = teardown)
{
        Screen *s;
        ConsoleRect r[64];
        size_t n;
        cr_assert_eq(screen_new(font, &s), 0);
        ScreenView v = { .mode = SCREEN_PROGRESS, .title = "Welcome, alice", .text = "Starting your desktop",
                         .step = 1, .steps = 3 };
        cr_assert_eq(screen_draw(s, &v, 1024, 768, r, 64, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert(r[0].x == 0 && r[0].y == 0 && r[0].w == 1024 && r[0].h == 768, "the first draw is the whole screen");
        cr_assert_eq(px(s, 5, 5), SCREEN_BACKDROP);
        cr_assert_eq(px(s, 1018, 762), SCREEN_BACKDROP);
        cr_assert_gt(bright(s, 0, 768), 200, "text is drawn");
        /* The same view: nothing to send. */
        cr_assert_eq(screen_draw(s, &v, 1024, 768, r, 64, &n), 0);
        cr_assert_eq(n, 0);
        /* The next step: only the card's middle changes. */
        v.step = 2;
        v.text = "Opening your session";
        cr_assert_eq(screen_draw(s, &v, 1024, 768, r, 64, &n), 0);
        cr_assert_gt(n, 0);
        for (size_t i = 0; i < n; i++)
                cr_assert(r[i].x >= 256 && r[i].x + r[i].w <= 768 && r[i].y > 100 && r[i].y + r[i].h < 668,
                          "rect %zu (%d,%d %dx%d) outside the card", i, r[i].x, r[i].y, r[i].w, r[i].h);
        screen_invalidate(s);
        cr_assert_eq(screen_draw(s, &v, 1024, 768, r, 64, &n), 0);
        cr_assert(n == 1 && r[0].w == 1024 && r[0].h == 768);
        /* A resize: the whole new screen. */
        cr_assert_eq(screen_draw(s, &v, 640, 480, r, 64, &n), 0);
        cr_assert(n == 1 && r[0].w == 640 && r[0].h == 480);
        screen_free(s);
}

Test(rdp_screen, logon_screen_masks_the_secret, .init = setup, .fini = teardown)
{
        Screen *s;
        ConsoleRect r[64];
        size_t n;
        cr_assert_eq(screen_new(font, &s), 0);
        ScreenView v = { .mode = SCREEN_LOGON, .banner = "Authorised use only.", .user = "alice",
                         .user_editable = true, .prompt = "Password: ", .answer = "hunter2", .answer_chars = 7,
                         .secret = true, .focus = 1, .hint = "Press Enter to sign in" };
        cr_assert_eq(screen_draw(s, &v, 800, 600, r, 64, &n), 0);
        uint32_t stride, w, h;
        const uint8_t *fb = screen_framebuffer(s, &stride, &w, &h);
        uint8_t *masked = malloc((size_t)stride * h);
        memcpy(masked, fb, (size_t)stride * h);
        /* The answer's text is never drawn when secret: another secret of the same length looks the same. */
        v.answer = "correct";
        cr_assert_eq(screen_draw(s, &v, 800, 600, r, 64, &n), 0);
        cr_assert_eq(n, 0);
        cr_assert_eq(memcmp(masked, screen_framebuffer(s, &stride, &w, &h), (size_t)stride * h), 0);
        /* One more dot changes the field only. */
        v.answer_chars = 8;
        cr_assert_eq(screen_draw(s, &v, 800, 600, r, 64, &n), 0);
        cr_assert_gt(n, 0);
        free(masked);
        screen_free(s);
}

Test(rdp_screen, hostile_strings_and_tiny_or_huge_sizes, .init = setup, .fini = teardown)
{
        Screen *s;
        ConsoleRect r[4];
        size_t n;
        char junk[5000];
        for (size_t i = 0; i < sizeof junk - 1; i++)
                junk[i] = (char)(0x80 + i % 0x7F);
        junk[sizeof junk - 1] = 0;
        cr_assert_eq(screen_new(font, &s), 0);
        ScreenView v = { .mode = SCREEN_LOGON, .banner = junk, .user = junk, .user_editable = true,
                         .prompt = junk, .answer = junk, .message = junk, .message_error = true, .hint = junk };
        cr_assert_eq(screen_draw(s, &v, 1024, 768, r, 4, &n), 0);
        cr_assert_eq(px(s, 2, 2), SCREEN_BACKDROP);
        v.answer = "\x1b[31m\n\t";
        cr_assert_eq(screen_draw(s, &v, 1024, 768, r, 4, &n), 0);
        cr_assert_leq(n, 4, "past max rects: their bounding box");
        cr_assert_eq(screen_draw(s, &v, 1, 1, r, 4, &n), 0);
        cr_assert_eq(px(s, 0, 0), SCREEN_BACKDROP);
        cr_assert_eq(screen_draw(s, &v, 100000, 0, r, 4, &n), 0);
        uint32_t stride, w, h;
        screen_framebuffer(s, &stride, &w, &h);
        cr_assert(w == SCREEN_DIM_MAX && h == 1);
        v.mode = SCREEN_FAILED;
        v.text = junk;
        cr_assert_eq(screen_draw(s, &v, 1280, 800, r, 4, &n), 0);
        screen_free(s);
}

Test(rdp_screen, no_font_still_draws_the_backdrop)
{
        Screen *s;
        ConsoleRect r[4];
        size_t n;
        cr_assert_eq(screen_new(NULL, &s), 0);
        ScreenView v = { .mode = SCREEN_PROGRESS, .title = "Welcome", .text = "x" };
        cr_assert_eq(screen_draw(s, &v, 320, 200, r, 4, &n), 0);
        cr_assert_eq(px(s, 1, 1), SCREEN_BACKDROP);
        screen_free(s);
}
