/* The desktop console library against a scripted VNC server on a socketpair: the guest's
 * framebuffer and damage as a viewer gets them, frame pacing, input in QEMU's terms, and the
 * pure key and rect helpers. Links no FreeRDP: the library serves any front end. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <rfb/keysym.h>
#include "rdp/console.h"

/* A console that waits for bytes the script never sends must fail the test, not hang it. */
TestSuite(rdp_console, .timeout = 10);

/* ---- a scripted RFB 3.8 server ---- */

static void put(int fd, const void *p, size_t n)
{
        cr_assert_eq(write(fd, p, n), (ssize_t)n);
}

static void put_u8(int fd, uint8_t v) { put(fd, &v, 1); }
static void put_u16(int fd, uint16_t v) { put(fd, (uint8_t[]){ v >> 8, v & 0xFF }, 2); }
static void put_u32(int fd, uint32_t v) { put(fd, (uint8_t[]){ v >> 24, (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF }, 4); }

/* Version, security "none", ServerInit of a w×h true-colour screen. */
static void server_hello(int fd, uint16_t w, uint16_t h)
{
        put(fd, "RFB 003.008\n", 12);
        put_u8(fd, 1);          /* one security type: */
        put_u8(fd, 1);          /* none */
        put_u32(fd, 0);         /* SecurityResult: ok */
        put_u16(fd, w);
        put_u16(fd, h);
        /* bpp 32, depth 24, little endian, true colour, max 255 each, shifts 16/8/0, padding */
        put(fd, (uint8_t[]){ 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0 }, 16);
        put_u32(fd, 4);
        put(fd, "test", 4);
}

/* One FramebufferUpdate with raw rects (pixels in the client's 32 bpp format), in one write:
 * many small writes would fill the socketpair with per-write overhead. */
static void server_update(int fd, const ConsoleRect *r, size_t n)
{
        size_t len = 4;
        for (size_t i = 0; i < n; i++)
                len += 12 + (size_t)r[i].w * (size_t)r[i].h * 4;
        uint8_t *msg = malloc(len), *p = msg;
        cr_assert_not_null(msg);
        *p++ = 0;
        *p++ = 0;
        *p++ = (uint8_t)(n >> 8);
        *p++ = (uint8_t)n;
        for (size_t i = 0; i < n; i++) {
                uint16_t v[4] = { (uint16_t)r[i].x, (uint16_t)r[i].y, (uint16_t)r[i].w, (uint16_t)r[i].h };
                for (int k = 0; k < 4; k++) {
                        *p++ = (uint8_t)(v[k] >> 8);
                        *p++ = (uint8_t)v[k];
                }
                memset(p, 0, 4);        /* raw */
                p += 4;
                size_t px = (size_t)r[i].w * (size_t)r[i].h * 4;
                memset(p, 0x5A, px);
                p += px;
        }
        put(fd, msg, len);
        free(msg);
}

/* A rect-less pseudo-encoding "rect" (DesktopSize, QEMU extended key events). */
static void server_pseudo(int fd, int32_t encoding, uint16_t w, uint16_t h)
{
        put_u8(fd, 0);
        put_u8(fd, 0);
        put_u16(fd, 1);
        put_u16(fd, 0);
        put_u16(fd, 0);
        put_u16(fd, w);
        put_u16(fd, h);
        put_u32(fd, (uint32_t)encoding);
}

/* Throw away what the client sent so far (its formats, encodings and update requests). */
static void server_drain(int fd)
{
        uint8_t buf[4096];
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        while (read(fd, buf, sizeof buf) > 0)
                ;
        fcntl(fd, F_SETFL, fl);
}

static void server_expect(int fd, const uint8_t *want, size_t n)
{
        uint8_t got[64];
        cr_assert_leq(n, sizeof got);
        size_t have = 0;
        while (have < n) {
                ssize_t k = read(fd, got + have, n - have);
                cr_assert_gt(k, 0, "the console sent less than expected");
                have += (size_t)k;
        }
        cr_assert_arr_eq(got, want, n);
}

typedef struct Fixture {
        Console *c;
        int srv;
} Fixture;

static Fixture open_console(uint16_t w, uint16_t h)
{
        int sv[2];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        server_hello(sv[1], w, h);
        Fixture f = { .srv = sv[1] };
        cr_assert_eq(console_open(sv[0], 4096, 2160, &f.c), 0);
        return f;
}

static void close_console(Fixture *f)
{
        f->c = console_free(f->c);
        close(f->srv);
}

/* The guest paints rects; the console reads them. */
static void paint(Fixture *f, const ConsoleRect *r, size_t n)
{
        server_update(f->srv, r, n);
        cr_assert_eq(console_process(f->c), 0);
}

/* A connected console whose first screen arrived, with the first (full) frame sent. */
static Fixture ready_console(uint16_t w, uint16_t h, bool acks)
{
        Fixture f = open_console(w, h);
        paint(&f, (ConsoleRect[]){ { 0, 0, w, h } }, 1);
        console_frame_restart(f.c, acks);
        ConsoleFrame fr;
        cr_assert(console_frame_next(f.c, w, h, &fr));
        cr_assert(fr.full);
        console_frame_sent(f.c, &fr);
        return f;
}

/* ---- connection and framebuffer ---- */

Test(rdp_console, the_screen_is_there_after_the_first_update)
{
        Fixture f = open_console(64, 48);
        uint32_t stride, w, h;
        const uint8_t *fb = console_framebuffer(f.c, &stride, &w, &h);
        cr_assert_not_null(fb);
        cr_assert_eq(w, 64);
        cr_assert_eq(h, 48);
        cr_assert_eq(stride, 64 * 4);
        cr_assert_not(console_has_content(f.c));
        paint(&f, (ConsoleRect[]){ { 0, 0, 64, 48 } }, 1);
        cr_assert(console_has_content(f.c));
        fb = console_framebuffer(f.c, &stride, &w, &h);
        cr_assert_eq(fb[47 * stride + 63 * 4], 0x5A, "the guest's pixels are in the framebuffer");
        close_console(&f);
}

Test(rdp_console, a_guest_framebuffer_over_the_cap_is_refused)
{
        int sv[2];
        Console *c = NULL;
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        server_hello(sv[1], 5000, 100);
        cr_assert_eq(console_open(sv[0], 4096, 2160, &c), -EPROTO);
        cr_assert_null(c);
        close(sv[1]);
}

Test(rdp_console, a_guest_that_hangs_up_ends_the_console)
{
        Fixture f = open_console(64, 48);
        server_drain(f.srv);
        shutdown(f.srv, SHUT_WR);
        cr_assert_eq(console_process(f.c), -EPIPE);
        close_console(&f);
}

Test(rdp_console, a_resize_reallocates_the_framebuffer)
{
        Fixture f = ready_console(64, 48, true);
        server_pseudo(f.srv, -223 /* DesktopSize */, 32, 24);
        cr_assert_eq(console_process(f.c), 0);
        uint32_t stride, w, h;
        console_framebuffer(f.c, &stride, &w, &h);
        cr_assert_eq(w, 32);
        cr_assert_eq(h, 24);
        cr_assert_eq(stride, 32 * 4);
        paint(&f, (ConsoleRect[]){ { 0, 0, 32, 24 } }, 1);
        const uint8_t *fb = console_framebuffer(f.c, &stride, &w, &h);
        cr_assert_eq(fb[23 * stride + 31 * 4], 0x5A, "the new screen is in the resized framebuffer");
        close_console(&f);
}

/* ---- frames to the viewer ---- */

Test(rdp_console, the_first_frame_is_the_whole_screen)
{
        Fixture f = open_console(64, 48);
        paint(&f, (ConsoleRect[]){ { 8, 8, 4, 4 } }, 1);
        ConsoleFrame fr;
        cr_assert(console_frame_next(f.c, 64, 48, &fr));
        cr_assert(fr.full);
        cr_assert_eq(fr.id, 1);
        cr_assert_eq(fr.n, 1);
        cr_assert_eq(fr.rects[0].w, 64);
        cr_assert_eq(fr.rects[0].h, 48);
        console_frame_sent(f.c, &fr);
        cr_assert_not(console_frame_next(f.c, 64, 48, &fr), "nothing changed since");
        close_console(&f);
}

Test(rdp_console, damage_is_clipped_to_what_the_viewer_shows)
{
        Fixture f = ready_console(64, 48, false);
        paint(&f, (ConsoleRect[]){ { 30, 20, 20, 20 }, { 50, 0, 10, 10 } }, 2);
        ConsoleFrame fr;
        /* A viewer that cannot resize shows the top-left 40×30. */
        cr_assert(console_frame_next(f.c, 40, 30, &fr));
        cr_assert_not(fr.full);
        cr_assert_eq(fr.n, 1, "the rect outside the view is dropped");
        cr_assert_eq(fr.rects[0].x, 30);
        cr_assert_eq(fr.rects[0].y, 20);
        cr_assert_eq(fr.rects[0].w, 10);
        cr_assert_eq(fr.rects[0].h, 10);
        close_console(&f);
}

Test(rdp_console, many_rects_collapse_into_their_bounding_box)
{
        Fixture f = ready_console(128, 48, false);
        ConsoleRect r[CONSOLE_DAMAGE_MAX + 1];
        for (int i = 0; i <= CONSOLE_DAMAGE_MAX; i++)
                r[i] = (ConsoleRect){ i, i % 2, 1, 1 };
        paint(&f, r, CONSOLE_DAMAGE_MAX + 1);
        ConsoleFrame fr;
        cr_assert(console_frame_next(f.c, 128, 48, &fr));
        cr_assert_eq(fr.n, 1);
        cr_assert_eq(fr.rects[0].x, 0);
        cr_assert_eq(fr.rects[0].y, 0);
        cr_assert_eq(fr.rects[0].w, CONSOLE_DAMAGE_MAX + 1);
        cr_assert_eq(fr.rects[0].h, 2);
        close_console(&f);
}

Test(rdp_console, a_viewer_that_acks_gets_at_most_three_frames_ahead)
{
        Fixture f = ready_console(64, 48, true);           /* frame 1 out */
        ConsoleFrame fr;
        for (uint32_t id = 2; id <= CONSOLE_FRAMES_AHEAD_MAX; id++) {
                paint(&f, (ConsoleRect[]){ { 0, 0, 1, 1 } }, 1);
                cr_assert(console_frame_next(f.c, 64, 48, &fr));
                cr_assert_eq(fr.id, id);
                console_frame_sent(f.c, &fr);
        }
        paint(&f, (ConsoleRect[]){ { 5, 5, 1, 1 } }, 1);
        cr_assert_not(console_frame_next(f.c, 64, 48, &fr), "three frames unacknowledged: wait");
        console_frame_ack(f.c, 99);
        cr_assert_not(console_frame_next(f.c, 64, 48, &fr), "an ack for a frame never sent counts for nothing");
        cr_assert_not(console_frame_is_acked(f.c, 1));
        console_frame_ack(f.c, 1);
        cr_assert(console_frame_is_acked(f.c, 1));
        cr_assert_not(console_frame_is_acked(f.c, 2));
        cr_assert(console_frame_next(f.c, 64, 48, &fr), "the damage kept while waiting goes out");
        cr_assert_eq(fr.id, CONSOLE_FRAMES_AHEAD_MAX + 1);
        cr_assert_eq(fr.rects[0].x, 5);
        close_console(&f);
}

Test(rdp_console, a_viewer_without_acks_is_not_held)
{
        Fixture f = ready_console(64, 48, false);
        ConsoleFrame fr;
        for (int i = 0; i < 2 * CONSOLE_FRAMES_AHEAD_MAX; i++) {
                paint(&f, (ConsoleRect[]){ { 0, 0, 1, 1 } }, 1);
                cr_assert(console_frame_next(f.c, 64, 48, &fr));
                console_frame_sent(f.c, &fr);
                cr_assert(console_frame_is_acked(f.c, fr.id));
        }
        close_console(&f);
}

Test(rdp_console, restart_voids_old_acks_and_repaints_everything)
{
        Fixture f = ready_console(64, 48, true);
        ConsoleFrame fr;
        for (int i = 1; i < CONSOLE_FRAMES_AHEAD_MAX; i++) {
                paint(&f, (ConsoleRect[]){ { 0, 0, 1, 1 } }, 1);
                cr_assert(console_frame_next(f.c, 64, 48, &fr));
                console_frame_sent(f.c, &fr);
        }
        console_frame_restart(f.c, true);
        cr_assert(console_frame_is_acked(f.c, CONSOLE_FRAMES_AHEAD_MAX));
        cr_assert(console_frame_next(f.c, 32, 24, &fr));
        cr_assert(fr.full);
        cr_assert_eq(fr.rects[0].w, 32);
        cr_assert_eq(fr.id, CONSOLE_FRAMES_AHEAD_MAX + 1, "ids keep counting: old acks cannot match new frames");
        close_console(&f);
}

Test(rdp_console, refresh_sends_the_whole_screen)
{
        Fixture f = ready_console(64, 48, false);
        ConsoleFrame fr;
        cr_assert_not(console_frame_next(f.c, 64, 48, &fr));
        console_refresh(f.c);
        cr_assert(console_frame_next(f.c, 64, 48, &fr));
        cr_assert(fr.full);
        cr_assert_eq(fr.n, 1);
        close_console(&f);
}

/* ---- input ---- */

Test(rdp_console, keys_go_as_keysyms_until_qemu_confirms_key_numbers)
{
        Fixture f = ready_console(64, 48, false);
        server_drain(f.srv);
        cr_assert_eq(console_key(f.c, XK_a, 0x1E, true), 0);
        server_expect(f.srv, (uint8_t[]){ 4, 1, 0, 0, 0, 0, 0, 0x61 }, 8);
        /* Neither a keysym nor a usable key number: nothing to send. */
        cr_assert_eq(console_key(f.c, 0, 0x1E, true), 0);

        server_pseudo(f.srv, -258 /* QEMU extended key events */, 0, 0);
        cr_assert_eq(console_process(f.c), 0);
        server_drain(f.srv);
        cr_assert_eq(console_key(f.c, XK_Right, 0xCD, false), 0);
        /* QEMU client message, extended key: down 0, keysym, key number */
        server_expect(f.srv, (uint8_t[]){ 255, 0, 0, 0, 0, 0, 0xFF, 0x53, 0, 0, 0, 0xCD }, 12);
        close_console(&f);
}

Test(rdp_console, pointer_events_carry_the_buttons_held)
{
        Fixture f = ready_console(64, 48, false);
        server_drain(f.srv);
        cr_assert_eq(console_pointer(f.c, 10, 20, CONSOLE_BUTTON_LEFT | CONSOLE_BUTTON_WHEEL_UP), 0);
        server_expect(f.srv, (uint8_t[]){ 5, 0x09, 0, 10, 0, 20 }, 6);
        close_console(&f);
}

/* ---- pure helpers ---- */

Test(rdp_console, plain_scancode_is_the_qemu_keycode)
{
        cr_assert_eq(console_scancode_to_qnum(0x1E, false), 0x1E); /* a */
        cr_assert_eq(console_scancode_to_qnum(0x01, false), 0x01); /* Esc */
        cr_assert_eq(console_scancode_to_keysym(0x1E, false), XK_a);
        cr_assert_eq(console_scancode_to_keysym(0x1C, false), XK_Return);
}

Test(rdp_console, extended_keys_get_the_e0_bit)
{
        cr_assert_eq(console_scancode_to_qnum(0x4D, true), 0xCD);  /* Right */
        cr_assert_eq(console_scancode_to_qnum(0x4B, true), 0xCB);  /* Left */
        cr_assert_eq(console_scancode_to_qnum(0x1C, true), 0x9C);  /* KP Enter */
        cr_assert_eq(console_scancode_to_qnum(0x53, true), 0xD3);  /* Delete */
        cr_assert_eq(console_scancode_to_qnum(0x5B, true), 0xDB);  /* left Windows */
        cr_assert_eq(console_scancode_to_qnum(0x38, true), 0xB8);  /* AltGr */
        cr_assert_eq(console_scancode_to_keysym(0x4D, true), XK_Right);
        cr_assert_eq(console_scancode_to_keysym(0x1C, true), XK_KP_Enter);
        cr_assert_eq(console_scancode_to_keysym(0x38, true), XK_Alt_R);
}

Test(rdp_console, invalid_scancodes_map_to_nothing)
{
        cr_assert_eq(console_scancode_to_qnum(0, false), 0);
        cr_assert_eq(console_scancode_to_qnum(0x80, false), 0);
        cr_assert_eq(console_scancode_to_qnum(0xFFFF, true), 0);
        cr_assert_eq(console_scancode_to_keysym(0xFFFF, false), 0);
        cr_assert_eq(console_scancode_to_keysym(0x7F, false), 0);
}

Test(rdp_console, unicode_to_keysym)
{
        cr_assert_eq(console_unicode_to_keysym('a'), 'a');
        cr_assert_eq(console_unicode_to_keysym(0xE9), 0xE9);            /* é */
        cr_assert_eq(console_unicode_to_keysym(0x20AC), 0x010020AC);    /* € */
        cr_assert_eq(console_unicode_to_keysym(0xD800), 0);             /* lone surrogate */
        cr_assert_eq(console_unicode_to_keysym(0x07), 0);
}

Test(rdp_console, rect_clamping)
{
        int x = -10, y = -10, w = 100, h = 100;
        cr_assert(console_rect_clamp(&x, &y, &w, &h, 1280, 800));
        cr_assert_eq(x, 0);
        cr_assert_eq(w, 90);
        x = 1200, y = 700, w = 100000, h = 100000;
        cr_assert(console_rect_clamp(&x, &y, &w, &h, 1280, 800));
        cr_assert_eq(w, 80);
        cr_assert_eq(h, 100);
        x = 2147483000, y = 0, w = 2147483000, h = 10;          /* x + w overflows int */
        cr_assert_not(console_rect_clamp(&x, &y, &w, &h, 1280, 800));
        x = 0, y = 0, w = 0, h = 10;
        cr_assert_not(console_rect_clamp(&x, &y, &w, &h, 1280, 800));
        x = 1280, y = 0, w = 10, h = 10;
        cr_assert_not(console_rect_clamp(&x, &y, &w, &h, 1280, 800));
}
