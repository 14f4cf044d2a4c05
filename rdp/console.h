/* The desktop console, for any front end (RDP today, a browser later): a VNC client on a connected
 * socket to the guest's console, its framebuffer and damage, the pacing of frames to one viewer,
 * and key/pointer input in QEMU's terms. Must never include FreeRDP or any front end's protocol,
 * and never trusts the guest: sizes are capped before allocation, rects clamped before use. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_DAMAGE_MAX 64           /* rects kept before collapsing into their bounding box */
#define CONSOLE_FRAMES_AHEAD_MAX 3      /* frames sent but not acknowledged by the viewer */

/* Pointer button mask: the RFB bits, which QEMU takes as they are (ui/vnc.c). */
#define CONSOLE_BUTTON_LEFT        0x01
#define CONSOLE_BUTTON_MIDDLE      0x02
#define CONSOLE_BUTTON_RIGHT       0x04
#define CONSOLE_BUTTON_WHEEL_UP    0x08
#define CONSOLE_BUTTON_WHEEL_DOWN  0x10
#define CONSOLE_BUTTON_WHEEL_LEFT  0x20
#define CONSOLE_BUTTON_WHEEL_RIGHT 0x40
#define CONSOLE_BUTTON_SIDE        0x80

#define CONSOLE_QNUM_PAUSE 0xC6         /* QEMU's key number for Pause (no set-1 make code) */

typedef struct ConsoleRect {
        int x, y, w, h;
} ConsoleRect;

/* What the viewer should be sent next (console_frame_next). */
typedef struct ConsoleFrame {
        uint32_t id;                    /* the viewer acknowledges the frame by this */
        bool full;                      /* the whole area the viewer shows */
        size_t n;
        ConsoleRect rects[CONSOLE_DAMAGE_MAX];  /* inside the area the viewer shows */
} ConsoleFrame;

typedef struct Console Console;

/* ---- connection and framebuffer ---- */

/* Take ownership of fd (a connected stream socket to the VNC server), run the RFB handshake.
 * The framebuffer may not exceed max_w×max_h. On error fd is closed. */
int console_open(int fd, uint32_t max_w, uint32_t max_h, Console **ret);
Console *console_free(Console *c);
/* The socket to poll for input. */
int console_fd(const Console *c);
/* Handle every message that is readable or buffered, without blocking on an idle socket.
 * Returns 0, or -EPIPE when the server went away or spoke nonsense. */
int console_process(Console *c);
/* The framebuffer (BGRX32, stride bytes per row) and its current size: the VNC client's own
 * buffer, valid until the next console_process. */
const uint8_t *console_framebuffer(const Console *c, uint32_t *ret_stride, uint32_t *ret_w, uint32_t *ret_h);
/* True once a framebuffer update was handled since the connection or the last resize (QEMU
 * answers the first request with the whole screen; a resize's own update also counts). */
bool console_has_content(const Console *c);
/* Every pixel of the framebuffer black (the X byte aside): a guest that has not drawn yet. */
bool console_is_black(const Console *c);

/* ---- frames to the viewer ---- */

/* The next frame for a viewer that shows the top-left w×h of the framebuffer. False when nothing
 * changed there, or the viewer acknowledges frames and has CONSOLE_FRAMES_AHEAD_MAX of them
 * unacknowledged (damage keeps accumulating meanwhile). Takes the damage: send the frame. */
bool console_frame_next(Console *c, uint32_t w, uint32_t h, ConsoleFrame *ret);
/* The frame went out. */
void console_frame_sent(Console *c, const ConsoleFrame *f);
/* The viewer acknowledged frame id; ids never sent are ignored. */
void console_frame_ack(Console *c, uint32_t id);
/* An id for a frame the viewer is sent besides the console's own (the encoder's lossless pass
 * over what it sent lossy), counted as sent: 0 when the viewer is as many frames behind as
 * console_frame_next allows. */
uint32_t console_frame_extra(Console *c);
/* The viewer may be sent a frame now (it is not as far behind as allowed). */
bool console_frame_window_open(const Console *c);
bool console_frame_is_acked(const Console *c, uint32_t id);
/* The viewer's decoder starts afresh (new codec, reactivation): earlier frames need no
 * acknowledgement and the next frame is full. acks: the viewer acknowledges frames from now on. */
void console_frame_restart(Console *c, bool acks);
/* The next frame is the whole screen (the viewer asked for a refresh or shows again). */
void console_refresh(Console *c);

/* ---- input to the guest ---- */

/* A key by QEMU key number (XT set 1, 0x80 = E0 prefix), with an X keysym as a hint. qnum 0, or
 * no QEMU extended key support (yet), sends the keysym alone; neither sends nothing. */
int console_key(Console *c, uint32_t keysym, uint32_t qnum, bool down);
/* The pointer at (x,y) with the CONSOLE_BUTTON_* held. */
int console_pointer(Console *c, int x, int y, uint8_t buttons);

/* ---- keys and rects: pure helpers for front ends ---- */

/* PC scancode (set-1 make code, 0x01..0x7F) + E0 flag → QEMU key number, 0 when not a key. */
uint32_t console_scancode_to_qnum(uint16_t code, bool extended);
/* Scancode → X keysym on a US layout, 0 when unknown. */
uint32_t console_scancode_to_keysym(uint16_t code, bool extended);
/* A UTF-16 code unit → keysym; 0 for surrogates and controls. */
uint32_t console_unicode_to_keysym(uint16_t cp);
/* Intersect the rect (x,y,w,h) with [0,W)×[0,H); false when nothing is left. */
bool console_rect_clamp(int *x, int *y, int *w, int *h, int W, int H);
