/* slate-session input translation: RDP scancodes to QEMU key numbers (the guest sees the key
 * the user pressed, whatever the layout), pointer events, and clamping of client values. */
#include <criterion/criterion.h>
#include <rfb/keysym.h>
#include "rdp/input.h"

Test(rdp_input, plain_scancode_is_the_qemu_keycode)
{
        cr_assert_eq(input_scancode_to_qnum(0x1E, false), 0x1E); /* a */
        cr_assert_eq(input_scancode_to_qnum(0x01, false), 0x01); /* Esc */
        cr_assert_eq(input_scancode_to_keysym(0x1E, false), XK_a);
        cr_assert_eq(input_scancode_to_keysym(0x1C, false), XK_Return);
}

Test(rdp_input, extended_keys_get_the_e0_bit)
{
        cr_assert_eq(input_scancode_to_qnum(0x4D, true), 0xCD);  /* Right */
        cr_assert_eq(input_scancode_to_qnum(0x4B, true), 0xCB);  /* Left */
        cr_assert_eq(input_scancode_to_qnum(0x1C, true), 0x9C);  /* KP Enter */
        cr_assert_eq(input_scancode_to_qnum(0x53, true), 0xD3);  /* Delete */
        cr_assert_eq(input_scancode_to_qnum(0x5B, true), 0xDB);  /* left Windows */
        cr_assert_eq(input_scancode_to_qnum(0x38, true), 0xB8);  /* AltGr */
        cr_assert_eq(input_scancode_to_keysym(0x4D, true), XK_Right);
        cr_assert_eq(input_scancode_to_keysym(0x1C, true), XK_KP_Enter);
        cr_assert_eq(input_scancode_to_keysym(0x38, true), XK_Alt_R);
}

Test(rdp_input, invalid_scancodes_are_dropped)
{
        InputState st = { 0 };
        InputKey k[2];
        cr_assert_eq(input_scancode_to_qnum(0, false), 0);
        cr_assert_eq(input_scancode_to_qnum(0x80, false), 0);
        cr_assert_eq(input_scancode_to_qnum(0xFFFF, true), 0);
        cr_assert_eq(input_key_translate(&st, 0, 0x1FF, k), 0);
        cr_assert_eq(input_key_translate(&st, INPUT_KBD_RELEASE, 0, k), 0);
}

Test(rdp_input, key_down_and_release)
{
        InputState st = { 0 };
        InputKey k[2];
        cr_assert_eq(input_key_translate(&st, 0, 0x1E, k), 1);
        cr_assert(k[0].down);
        cr_assert_eq(k[0].qnum, 0x1E);
        /* KBD_FLAGS_DOWN on its own marks a repeat: still a press. */
        cr_assert_eq(input_key_translate(&st, INPUT_KBD_DOWN, 0x1E, k), 1);
        cr_assert(k[0].down);
        cr_assert_eq(input_key_translate(&st, INPUT_KBD_RELEASE | INPUT_KBD_EXTENDED, 0x48, k), 1);
        cr_assert_not(k[0].down);
        cr_assert_eq(k[0].qnum, 0xC8);
        cr_assert_eq(k[0].keysym, XK_Up);
}

Test(rdp_input, pause_becomes_one_key_and_numlock_still_works)
{
        InputState st = { 0 };
        InputKey k[2];
        /* xfreerdp: E1 1D down, 45 down, E1 1D up, 45 up */
        cr_assert_eq(input_key_translate(&st, INPUT_KBD_EXTENDED1, 0x1D, k), 2);
        cr_assert_eq(k[0].qnum, INPUT_QNUM_PAUSE);
        cr_assert(k[0].down);
        cr_assert_not(k[1].down);
        cr_assert_eq(input_key_translate(&st, 0, 0x45, k), 0);
        cr_assert_eq(input_key_translate(&st, INPUT_KBD_EXTENDED1 | INPUT_KBD_RELEASE, 0x1D, k), 0);
        cr_assert_eq(input_key_translate(&st, INPUT_KBD_RELEASE, 0x45, k), 0);
        /* A real Num Lock afterwards is not swallowed. */
        cr_assert_eq(input_key_translate(&st, 0, 0x45, k), 1);
        cr_assert_eq(k[0].qnum, 0x45);
}

Test(rdp_input, unicode_to_keysym)
{
        cr_assert_eq(input_unicode_to_keysym('a'), 'a');
        cr_assert_eq(input_unicode_to_keysym(0xE9), 0xE9);            /* é */
        cr_assert_eq(input_unicode_to_keysym(0x20AC), 0x010020AC);    /* € */
        cr_assert_eq(input_unicode_to_keysym(0xD800), 0);             /* lone surrogate */
        cr_assert_eq(input_unicode_to_keysym(0x07), 0);
}

Test(rdp_input, pointer_is_clamped_to_the_screen)
{
        InputState st = { 0 };
        InputPointer p[2];
        cr_assert_eq(input_pointer_translate(&st, false, INPUT_PTR_MOVE, 65535, 65535, 1280, 800, p), 1);
        cr_assert_eq(p[0].x, 1279);
        cr_assert_eq(p[0].y, 799);
        cr_assert_eq(input_pointer_translate(&st, false, INPUT_PTR_DOWN | INPUT_PTR_BUTTON1, 10, 20, 1280, 800, p), 1);
        cr_assert_eq(p[0].mask, INPUT_VNC_LEFT);
        cr_assert_eq(input_pointer_translate(&st, false, INPUT_PTR_DOWN | INPUT_PTR_BUTTON2, 10, 20, 1280, 800, p), 1);
        cr_assert_eq(p[0].mask, INPUT_VNC_LEFT | INPUT_VNC_RIGHT);
        cr_assert_eq(input_pointer_translate(&st, false, INPUT_PTR_BUTTON1, 10, 20, 1280, 800, p), 1);
        cr_assert_eq(p[0].mask, INPUT_VNC_RIGHT);
        /* No screen yet: nothing is sent. */
        cr_assert_eq(input_pointer_translate(&st, false, INPUT_PTR_MOVE, 1, 1, 0, 0, p), 0);
}

Test(rdp_input, wheel_is_a_click_at_the_last_position)
{
        InputState st = { 0 };
        InputPointer p[2];
        input_pointer_translate(&st, false, INPUT_PTR_MOVE, 100, 200, 1280, 800, p);
        cr_assert_eq(input_pointer_translate(&st, false, INPUT_PTR_WHEEL | 0x0078, 0, 0, 1280, 800, p), 2);
        cr_assert_eq(p[0].x, 100);
        cr_assert_eq(p[0].y, 200);
        cr_assert_eq(p[0].mask, INPUT_VNC_WHEEL_UP);
        cr_assert_eq(p[1].mask, 0);
        cr_assert_eq(input_pointer_translate(&st, false, INPUT_PTR_WHEEL | INPUT_PTR_WHEEL_NEGATIVE | 0x0088, 0, 0, 1280,
                                             800, p), 2);
        cr_assert_eq(p[0].mask, INPUT_VNC_WHEEL_DOWN);
        cr_assert_eq(input_pointer_translate(&st, false, INPUT_PTR_HWHEEL | 0x0078, 0, 0, 1280, 800, p), 2);
        cr_assert_eq(p[0].mask, INPUT_VNC_WHEEL_RIGHT);
}

Test(rdp_input, rect_clamping)
{
        int x = -10, y = -10, w = 100, h = 100;
        cr_assert(input_rect_clamp(&x, &y, &w, &h, 1280, 800));
        cr_assert_eq(x, 0);
        cr_assert_eq(w, 90);
        x = 1200, y = 700, w = 100000, h = 100000;
        cr_assert(input_rect_clamp(&x, &y, &w, &h, 1280, 800));
        cr_assert_eq(w, 80);
        cr_assert_eq(h, 100);
        x = 2147483000, y = 0, w = 2147483000, h = 10;          /* x + w overflows int */
        cr_assert_not(input_rect_clamp(&x, &y, &w, &h, 1280, 800));
        x = 0, y = 0, w = 0, h = 10;
        cr_assert_not(input_rect_clamp(&x, &y, &w, &h, 1280, 800));
        x = 1280, y = 0, w = 10, h = 10;
        cr_assert_not(input_rect_clamp(&x, &y, &w, &h, 1280, 800));
}

Test(rdp_input, client_sizes_are_clamped)
{
        cr_assert_eq(input_clamp_dim(0, 1, 4096), 1);
        cr_assert_eq(input_clamp_dim(100000, 1, 4096), 4096);
        cr_assert_eq(input_clamp_dim(1024, 1, 4096), 1024);
}
