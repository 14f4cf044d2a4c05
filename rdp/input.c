/* RDP → QEMU input translation (see input.h). Every value from the client is checked or
 * clamped here; nothing in this file trusts a code or a coordinate. */
#include <rfb/keysym.h>
#include "rdp/input.h"

/* Set-1 make codes 0x00..0x58 on a US layout. Only a hint for QEMU, which maps qnum itself. */
static const uint32_t keysym_base[0x59] = {
        [0x01] = XK_Escape, [0x02] = XK_1, [0x03] = XK_2, [0x04] = XK_3, [0x05] = XK_4,
        [0x06] = XK_5, [0x07] = XK_6, [0x08] = XK_7, [0x09] = XK_8, [0x0A] = XK_9, [0x0B] = XK_0,
        [0x0C] = XK_minus, [0x0D] = XK_equal, [0x0E] = XK_BackSpace, [0x0F] = XK_Tab,
        [0x10] = XK_q, [0x11] = XK_w, [0x12] = XK_e, [0x13] = XK_r, [0x14] = XK_t, [0x15] = XK_y,
        [0x16] = XK_u, [0x17] = XK_i, [0x18] = XK_o, [0x19] = XK_p, [0x1A] = XK_bracketleft,
        [0x1B] = XK_bracketright, [0x1C] = XK_Return, [0x1D] = XK_Control_L, [0x1E] = XK_a,
        [0x1F] = XK_s, [0x20] = XK_d, [0x21] = XK_f, [0x22] = XK_g, [0x23] = XK_h, [0x24] = XK_j,
        [0x25] = XK_k, [0x26] = XK_l, [0x27] = XK_semicolon, [0x28] = XK_apostrophe,
        [0x29] = XK_grave, [0x2A] = XK_Shift_L, [0x2B] = XK_backslash, [0x2C] = XK_z,
        [0x2D] = XK_x, [0x2E] = XK_c, [0x2F] = XK_v, [0x30] = XK_b, [0x31] = XK_n, [0x32] = XK_m,
        [0x33] = XK_comma, [0x34] = XK_period, [0x35] = XK_slash, [0x36] = XK_Shift_R,
        [0x37] = XK_KP_Multiply, [0x38] = XK_Alt_L, [0x39] = XK_space, [0x3A] = XK_Caps_Lock,
        [0x3B] = XK_F1, [0x3C] = XK_F2, [0x3D] = XK_F3, [0x3E] = XK_F4, [0x3F] = XK_F5,
        [0x40] = XK_F6, [0x41] = XK_F7, [0x42] = XK_F8, [0x43] = XK_F9, [0x44] = XK_F10,
        [0x45] = XK_Num_Lock, [0x46] = XK_Scroll_Lock, [0x47] = XK_KP_7, [0x48] = XK_KP_8,
        [0x49] = XK_KP_9, [0x4A] = XK_KP_Subtract, [0x4B] = XK_KP_4, [0x4C] = XK_KP_5,
        [0x4D] = XK_KP_6, [0x4E] = XK_KP_Add, [0x4F] = XK_KP_1, [0x50] = XK_KP_2, [0x51] = XK_KP_3,
        [0x52] = XK_KP_0, [0x53] = XK_KP_Decimal, [0x56] = XK_less, [0x57] = XK_F11, [0x58] = XK_F12,
};

/* The E0-prefixed keys that exist on a standard 105-key keyboard. */
static uint32_t keysym_extended(uint16_t code)
{
        switch (code) {
        case 0x1C: return XK_KP_Enter;
        case 0x1D: return XK_Control_R;
        case 0x35: return XK_KP_Divide;
        case 0x37: return XK_Print;
        case 0x38: return XK_Alt_R;
        case 0x46: return XK_Break;
        case 0x47: return XK_Home;
        case 0x48: return XK_Up;
        case 0x49: return XK_Prior;
        case 0x4B: return XK_Left;
        case 0x4D: return XK_Right;
        case 0x4F: return XK_End;
        case 0x50: return XK_Down;
        case 0x51: return XK_Next;
        case 0x52: return XK_Insert;
        case 0x53: return XK_Delete;
        case 0x5B: return XK_Super_L;
        case 0x5C: return XK_Super_R;
        case 0x5D: return XK_Menu;
        default: return 0;
        }
}

uint32_t input_scancode_to_qnum(uint16_t code, bool extended)
{
        /* A make code is 7 bits; bit 7 would be a break code, which RDP signals by a flag. */
        if (code == 0 || code > 0x7F)
                return 0;
        return extended ? (uint32_t)code | 0x80 : code;
}

uint32_t input_scancode_to_keysym(uint16_t code, bool extended)
{
        if (code == 0 || code > 0x7F)
                return 0;
        if (extended)
                return keysym_extended(code);
        return code < sizeof keysym_base / sizeof keysym_base[0] ? keysym_base[code] : 0;
}

uint32_t input_unicode_to_keysym(uint16_t cp)
{
        if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        /* Latin-1 keysyms equal their code points; everything else uses the Unicode keysym range. */
        return cp <= 0xFF ? cp : 0x01000000u | cp;
}

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
                out[0] = (InputKey){ .keysym = XK_Pause, .qnum = INPUT_QNUM_PAUSE, .down = true };
                out[1] = (InputKey){ .keysym = XK_Pause, .qnum = INPUT_QNUM_PAUSE, .down = false };
                return 2;
        }
        if (st->e1_pending && code == 0x45 && !(flags & INPUT_KBD_EXTENDED)) {
                if (!down)
                        st->e1_pending = false;
                return 0;
        }
        st->e1_pending = false;

        bool ext = flags & INPUT_KBD_EXTENDED;
        uint32_t qnum = input_scancode_to_qnum(code, ext);
        if (!qnum)
                return 0;
        out[0] = (InputKey){ .keysym = input_scancode_to_keysym(code, ext), .qnum = qnum, .down = down };
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
                uint8_t bit = (flags & INPUT_PTR_HWHEEL) ? (rot > 0 ? INPUT_VNC_WHEEL_RIGHT : INPUT_VNC_WHEEL_LEFT)
                                                         : (rot > 0 ? INPUT_VNC_WHEEL_UP : INPUT_VNC_WHEEL_DOWN);
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
                        bit = INPUT_VNC_SIDE;
                down = flags & INPUT_PTRX_DOWN;
        } else {
                if (flags & INPUT_PTR_BUTTON1)
                        bit = INPUT_VNC_LEFT;
                else if (flags & INPUT_PTR_BUTTON2)
                        bit = INPUT_VNC_RIGHT;
                else if (flags & INPUT_PTR_BUTTON3)
                        bit = INPUT_VNC_MIDDLE;
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

bool input_rect_clamp(int *x, int *y, int *w, int *h, int W, int H)
{
        /* 64-bit so that x+w cannot overflow whatever the peer sent. */
        int64_t x0 = *x, y0 = *y, x1 = x0 + *w, y1 = y0 + *h;
        if (*w <= 0 || *h <= 0 || W <= 0 || H <= 0)
                return false;
        if (x0 < 0)
                x0 = 0;
        if (y0 < 0)
                y0 = 0;
        if (x1 > W)
                x1 = W;
        if (y1 > H)
                y1 = H;
        if (x1 <= x0 || y1 <= y0)
                return false;
        *x = (int)x0;
        *y = (int)y0;
        *w = (int)(x1 - x0);
        *h = (int)(y1 - y0);
        return true;
}

uint32_t input_clamp_dim(uint32_t v, uint32_t lo, uint32_t hi)
{
        return v < lo ? lo : v > hi ? hi : v;
}
