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

/* The characters a shifted key types on a US layout, by its unshifted character. */
static uint32_t shifted(uint32_t c)
{
        static const char from[] = "`1234567890-=[]\\;',./", to[] = "~!@#$%^&*()_+{}|:\"<>?";
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 'A';
        for (size_t i = 0; from[i]; i++)
                if ((uint32_t)(unsigned char)from[i] == c)
                        return (unsigned char)to[i];
        return c;
}

/* Keypad keys type what their face says (Num Lock is not tracked: the keypad is for digits). */
static uint32_t keypad_char(uint32_t sym)
{
        if (sym >= XK_KP_0 && sym <= XK_KP_9)
                return '0' + (sym - XK_KP_0);
        switch (sym) {
        case XK_KP_Decimal: return '.';
        case XK_KP_Add: return '+';
        case XK_KP_Subtract: return '-';
        case XK_KP_Multiply: return '*';
        case XK_KP_Divide: return '/';
        default: return 0;
        }
}

InputText input_key_text(InputTextState *st, uint16_t flags, uint16_t code, uint32_t *ret_cp)
{
        bool down = !(flags & INPUT_KBD_RELEASE);
        *ret_cp = 0;
        if (flags & INPUT_KBD_EXTENDED1)
                return INPUT_TEXT_NONE;
        uint32_t sym = console_scancode_to_keysym(code, flags & INPUT_KBD_EXTENDED);
        switch (sym) {
        case XK_Shift_L: st->shift_l = down; return INPUT_TEXT_NONE;
        case XK_Shift_R: st->shift_r = down; return INPUT_TEXT_NONE;
        case XK_Control_L: st->ctrl_l = down; return INPUT_TEXT_NONE;
        case XK_Control_R: st->ctrl_r = down; return INPUT_TEXT_NONE;
        case XK_Alt_L: st->alt_l = down; return INPUT_TEXT_NONE;
        case XK_Alt_R: st->alt_r = down; return INPUT_TEXT_NONE;
        case XK_Caps_Lock:
                if (down)
                        st->caps = !st->caps;
                return INPUT_TEXT_NONE;
        default:
                break;
        }
        if (!down)
                return INPUT_TEXT_NONE;
        bool shift = st->shift_l || st->shift_r;
        switch (sym) {
        case XK_Tab: return shift ? INPUT_TEXT_BACKTAB : INPUT_TEXT_TAB;
        case XK_BackSpace: return INPUT_TEXT_BACKSPACE;
        case XK_Return: case XK_KP_Enter: return INPUT_TEXT_ENTER;
        case XK_Escape: return INPUT_TEXT_ESCAPE;
        default: break;
        }
        if (st->ctrl_l || st->ctrl_r || st->alt_l || st->alt_r)
                return INPUT_TEXT_NONE;
        uint32_t c = keypad_char(sym);
        if (!c && sym >= 0x20 && sym <= 0x7E) {
                c = sym;
                bool letter = c >= 'a' && c <= 'z';
                if (letter ? shift != st->caps : shift)
                        c = shifted(c);
        }
        if (!c)
                return INPUT_TEXT_NONE;
        *ret_cp = c;
        return INPUT_TEXT_CHAR;
}

InputText input_unicode_text(uint16_t flags, uint16_t unit, uint32_t *ret_cp)
{
        *ret_cp = 0;
        if (flags & INPUT_KBD_RELEASE)
                return INPUT_TEXT_NONE;
        switch (unit) {
        case 0x08: return INPUT_TEXT_BACKSPACE;
        case 0x09: return INPUT_TEXT_TAB;
        case 0x0D: return INPUT_TEXT_ENTER;
        case 0x1B: return INPUT_TEXT_ESCAPE;
        default: break;
        }
        if (unit < 0x20 || (unit >= 0x7F && unit < 0xA0) || (unit >= 0xD800 && unit <= 0xDFFF))
                return INPUT_TEXT_NONE;
        *ret_cp = unit;
        return INPUT_TEXT_CHAR;
}
