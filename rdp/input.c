/* RDP → console input translation (see input.h). Every value from the client is checked or
 * clamped here; nothing in this file trusts a code or a coordinate. */
#include <rfb/keysym.h>
#include "rdp/input.h"

int input_key_translate(InputState *st, uint16_t flags, uint16_t code, InputKey out[2])
{
        bool down = !(flags & INPUT_KBD_RELEASE);

        /* Pause arrives as E1 1D then a bare 45 (both as a press and as a release); QEMU knows it as
         * one key, 0xC6. Emit a full press+release on the first press and swallow the rest. */
        if (flags & INPUT_KBD_EXTENDED1) {
                if (code != 0x1D)
                        return 0;
                st->e1_pending = true;
                if (!down)
                        return 0;
                out[0] = (InputKey){ .keysym = XK_Pause, .qnum = CONSOLE_QNUM_PAUSE, .down = true };
                out[1] = (InputKey){ .keysym = XK_Pause, .qnum = CONSOLE_QNUM_PAUSE, .down = false };
                return 2;
        }
        if (st->e1_pending && code == 0x45 && !(flags & INPUT_KBD_EXTENDED)) {
                if (!down)
                        st->e1_pending = false;
                return 0;
        }
        st->e1_pending = false;

        bool ext = flags & INPUT_KBD_EXTENDED;
        uint32_t qnum = console_scancode_to_qnum(code, ext);
        if (!qnum)
                return 0;
        out[0] = (InputKey){ .keysym = console_scancode_to_keysym(code, ext), .qnum = qnum, .down = down };
        return 1;
}

/* A 9-bit two's complement wheel rotation ([MS-RDPBCGR] 2.2.8.1.1.3.1.1.3). */
static int wheel_rotation(uint16_t flags)
{
        int v = flags & INPUT_PTR_ROTATION_MASK;
        return (flags & INPUT_PTR_WHEEL_NEGATIVE) ? v - 0x200 : v;
}

int input_pointer_translate(InputState *st, bool extended, uint16_t flags, uint16_t x, uint16_t y,
                            int fb_w, int fb_h, InputPointer out[2])
{
        if (fb_w < 1 || fb_h < 1)
                return 0;

        if (!extended && (flags & (INPUT_PTR_WHEEL | INPUT_PTR_HWHEEL))) {
                /* Wheel events carry x=y=0: scroll where the pointer already is. */
                int rot = wheel_rotation(flags);
                if (rot == 0)
                        return 0;
                uint8_t bit = (flags & INPUT_PTR_HWHEEL) ? (rot > 0 ? CONSOLE_BUTTON_WHEEL_RIGHT : CONSOLE_BUTTON_WHEEL_LEFT)
                                                         : (rot > 0 ? CONSOLE_BUTTON_WHEEL_UP : CONSOLE_BUTTON_WHEEL_DOWN);
                input_clamp_point(&st->x, &st->y, fb_w, fb_h);
                out[0] = (InputPointer){ st->x, st->y, (uint8_t)(st->buttons | bit) };
                out[1] = (InputPointer){ st->x, st->y, st->buttons };
                return 2;
        }

        int px = x, py = y;
        input_clamp_point(&px, &py, fb_w, fb_h);
        st->x = px;
        st->y = py;

        uint8_t bit = 0;
        bool down;
        if (extended) {
                if (flags & INPUT_PTRX_BUTTON1)
                        bit = CONSOLE_BUTTON_SIDE;
                down = flags & INPUT_PTRX_DOWN;
        } else {
                if (flags & INPUT_PTR_BUTTON1)
                        bit = CONSOLE_BUTTON_LEFT;
                else if (flags & INPUT_PTR_BUTTON2)
                        bit = CONSOLE_BUTTON_RIGHT;
                else if (flags & INPUT_PTR_BUTTON3)
                        bit = CONSOLE_BUTTON_MIDDLE;
                down = flags & INPUT_PTR_DOWN;
        }
        if (bit) {
                if (down)
                        st->buttons |= bit;
                else
                        st->buttons &= (uint8_t)~bit;
        }
        out[0] = (InputPointer){ px, py, st->buttons };
        return 1;
}

void input_clamp_point(int *x, int *y, int w, int h)
{
        if (*x < 0)
                *x = 0;
        if (*y < 0)
                *y = 0;
        if (*x >= w)
                *x = w > 0 ? w - 1 : 0;
        if (*y >= h)
                *y = h > 0 ? h - 1 : 0;
}

uint32_t input_clamp_dim(uint32_t v, uint32_t lo, uint32_t hi)
{
        return v < lo ? lo : v > hi ? hi : v;
}
