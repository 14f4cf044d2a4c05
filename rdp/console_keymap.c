/* PC scancodes and characters → what QEMU's VNC server takes (see console.h): pure tables, no
 * I/O. Nothing a front end passes in is trusted: out-of-range codes map to 0, never index past a
 * table. */
#include <rfb/keysym.h>
#include "rdp/console.h"

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

uint32_t console_scancode_to_qnum(uint16_t code, bool extended)
{
        /* A make code is 7 bits; bit 7 would be a break code: a release comes as its own flag. */
        if (code == 0 || code > 0x7F)
                return 0;
        return extended ? (uint32_t)code | 0x80 : code;
}

uint32_t console_scancode_to_keysym(uint16_t code, bool extended)
{
        if (code == 0 || code > 0x7F)
                return 0;
        if (extended)
                return keysym_extended(code);
        return code < sizeof keysym_base / sizeof keysym_base[0] ? keysym_base[code] : 0;
}

uint32_t console_unicode_to_keysym(uint16_t cp)
{
        if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        /* Latin-1 keysyms equal their code points; everything else uses the Unicode keysym range. */
        return cp <= 0xFF ? cp : 0x01000000u | cp;
}
