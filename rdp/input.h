/* RDP input → console input for slate-session: keyboard events (with RDP's Pause sequence) to
 * QEMU key numbers plus a keysym, pointer flags to the console's button mask, and clamping of
 * every client-supplied coordinate or size. Pure functions, no I/O, no FreeRDP: the flag values
 * below are the RDP wire values (peer.c checks them against FreeRDP's). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "rdp/console.h"

/* TS_KEYBOARD_EVENT flags ([MS-RDPBCGR] 2.2.8.1.1.3.1.1.1) */
#define INPUT_KBD_EXTENDED  0x0100
#define INPUT_KBD_EXTENDED1 0x0200
#define INPUT_KBD_DOWN      0x4000
#define INPUT_KBD_RELEASE   0x8000
/* TS_POINTER_EVENT / TS_POINTERX_EVENT flags */
#define INPUT_PTR_HWHEEL          0x0400
#define INPUT_PTR_WHEEL           0x0200
#define INPUT_PTR_WHEEL_NEGATIVE  0x0100
#define INPUT_PTR_ROTATION_MASK   0x01FF
#define INPUT_PTR_MOVE            0x0800
#define INPUT_PTR_DOWN            0x8000
#define INPUT_PTR_BUTTON1         0x1000 /* left */
#define INPUT_PTR_BUTTON2         0x2000 /* right */
#define INPUT_PTR_BUTTON3         0x4000 /* middle */
#define INPUT_PTRX_DOWN           0x8000
#define INPUT_PTRX_BUTTON1        0x0001
#define INPUT_PTRX_BUTTON2        0x0002

typedef struct InputKey {
        uint32_t keysym;    /* US-layout keysym: only a hint, QEMU uses qnum */
        uint32_t qnum;      /* QEMU key number; never 0 in an emitted event */
        bool down;
} InputKey;

typedef struct InputState {
        bool e1_pending;    /* saw Pause's E1 1D: swallow the 45 that follows */
        int x, y;           /* last pointer position (wheel events carry none) */
        uint8_t buttons;    /* CONSOLE_BUTTON_* held */
} InputState;

typedef struct InputPointer {
        int x, y;
        uint8_t mask;       /* CONSOLE_BUTTON_* */
} InputPointer;

/* One RDP keyboard event → 0..2 key events in out[]. Handles the Pause (E1) sequence. */
int input_key_translate(InputState *st, uint16_t flags, uint16_t code, InputKey out[2]);
/* One RDP pointer event → 0..2 console pointer events (a wheel notch is a press then a release),
 * with the position clamped into the fb_w×fb_h screen. extended = TS_POINTERX_EVENT. */
int input_pointer_translate(InputState *st, bool extended, uint16_t flags, uint16_t x, uint16_t y,
                            int fb_w, int fb_h, InputPointer out[2]);

/* ---- keys as text, for slate-session's own screens (the logon screen) ---- */

typedef enum InputText {
        INPUT_TEXT_NONE,        /* nothing to type: a release, a modifier, an unknown key */
        INPUT_TEXT_CHAR,        /* a character: *ret_cp */
        INPUT_TEXT_TAB,
        INPUT_TEXT_BACKTAB,     /* Shift-Tab */
        INPUT_TEXT_BACKSPACE,
        INPUT_TEXT_ENTER,
        INPUT_TEXT_ESCAPE,
} InputText;

typedef struct InputTextState {
        bool shift_l, shift_r, ctrl_l, ctrl_r, alt_l, alt_r, caps;
} InputTextState;

/* One RDP keyboard event → what it types on a US layout, with the Shift, Caps Lock and Ctrl/Alt
 * state kept in st (a character with Ctrl or Alt held types nothing). */
InputText input_key_text(InputTextState *st, uint16_t flags, uint16_t code, uint32_t *ret_cp);
/* One RDP Unicode event (a UTF-16 unit) → the same; surrogates and controls other than
 * Backspace, Tab, Enter and Escape type nothing. */
InputText input_unicode_text(uint16_t flags, uint16_t unit, uint32_t *ret_cp);

/* Clamp a point into [0,w)×[0,h) (w,h ≥ 1). */
void input_clamp_point(int *x, int *y, int w, int h);
/* A client- or guest-supplied dimension into [lo, hi]. */
uint32_t input_clamp_dim(uint32_t v, uint32_t lo, uint32_t hi);
