/* slate-session input translation: RDP keyboard events to QEMU key numbers (the guest sees the
 * key the user pressed, whatever the layout), pointer events, and clamping of client values.
 * The scancode tables and rect clamping themselves are tested with the console (test_rdp_console). */
#include <criterion/criterion.h>
#include <rfb/keysym.h>
#include "rdp/input.h"

Test(rdp_input, invalid_scancodes_are_dropped)
{
        InputState st = { 0 };
        InputKey k[2];
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
        cr_assert_eq(k[0].qnum, CONSOLE_QNUM_PAUSE);
        cr_assert(k[0].down);
        cr_assert_not(k[1].down);
        cr_assert_eq(input_key_translate(&st, 0, 0x45, k), 0);
        cr_assert_eq(input_key_translate(&st, INPUT_KBD_EXTENDED1 | INPUT_KBD_RELEASE, 0x1D, k), 0);
        cr_assert_eq(input_key_translate(&st, INPUT_KBD_RELEASE, 0x45, k), 0);
        /* A real Num Lock afterwards is not swallowed. */
        cr_assert_eq(input_key_translate(&st, 0, 0x45, k), 1);
        cr_assert_eq(k[0].qnum, 0x45);
}

Test(rdp_input, pointer_is_clamped_to_the_screen)
{
        InputState st = { 0 };
        InputPointer p[2];
        cr_assert_eq(input_pointer_translate(&st, false, INPUT_PTR_MOVE, 65535, 65535, 1280, 800, p), 1);
        cr_assert_eq(p[0].x, 1279);
        cr_assert_eq(p[0].y, 799);
        cr_assert_eq(input_pointer_translate(&st, false, INPUT_PTR_DOWN | INPUT_PTR_BUTTON1, 10, 20, 1280, 800, p), 1);
        cr_assert_eq(p[0].mask, CONSOLE_BUTTON_LEFT);
        cr_assert_eq(input_pointer_translate(&st, false, INPUT_PTR_DOWN | INPUT_PTR_BUTTON2, 10, 20, 1280, 800, p), 1);
        cr_assert_eq(p[0].mask, CONSOLE_BUTTON_LEFT | CONSOLE_BUTTON_RIGHT);
        cr_assert_eq(input_pointer_translate(&st, false, INPUT_PTR_BUTTON1, 10, 20, 1280, 800, p), 1);
        cr_assert_eq(p[0].mask, CONSOLE_BUTTON_RIGHT);
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
        cr_assert_eq(p[0].mask, CONSOLE_BUTTON_WHEEL_UP);
        cr_assert_eq(p[1].mask, 0);
        cr_assert_eq(input_pointer_translate(&st, false, INPUT_PTR_WHEEL | INPUT_PTR_WHEEL_NEGATIVE | 0x0088, 0, 0, 1280,
                                             800, p), 2);
        cr_assert_eq(p[0].mask, CONSOLE_BUTTON_WHEEL_DOWN);
        cr_assert_eq(input_pointer_translate(&st, false, INPUT_PTR_HWHEEL | 0x0078, 0, 0, 1280, 800, p), 2);
        cr_assert_eq(p[0].mask, CONSOLE_BUTTON_WHEEL_RIGHT);
}

Test(rdp_input, client_sizes_are_clamped)
{
        cr_assert_eq(input_clamp_dim(0, 1, 4096), 1);
        cr_assert_eq(input_clamp_dim(100000, 1, 4096), 4096);
        cr_assert_eq(input_clamp_dim(1024, 1, 4096), 1024);
}
