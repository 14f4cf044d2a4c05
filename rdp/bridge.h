/* The VNC side of slate-session: a libvncclient connection on the desktop console fd handed
 * over by slated. Tracks damage and size changes of the guest framebuffer and forwards input.
 * Trusts nothing from the guest: the framebuffer size is capped before any allocation. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BRIDGE_DAMAGE_MAX 64    /* rects kept before collapsing into their bounding box */

typedef struct BridgeRect {
        int x, y, w, h;
} BridgeRect;

typedef struct Bridge Bridge;

/* Take ownership of fd (a connected stream socket to the VNC server), run the RFB handshake.
 * The framebuffer may not exceed max_w×max_h. On error fd is closed. */
int bridge_new(int fd, uint32_t max_w, uint32_t max_h, Bridge **ret);
Bridge *bridge_free(Bridge *b);
int bridge_fd(const Bridge *b);
/* Handle every message that is readable or buffered, without blocking on an idle socket.
 * Returns 0, or -EPIPE when the server went away or spoke nonsense. */
int bridge_process(Bridge *b);

/* The framebuffer (BGRX32) and its current size. */
const uint8_t *bridge_framebuffer(const Bridge *b, uint32_t *ret_stride, uint32_t *ret_w, uint32_t *ret_h);
/* True once a whole framebuffer update has arrived since the connection or the last resize. */
bool bridge_has_content(const Bridge *b);
/* Set when the size changed since the last call (and cleared by it). */
bool bridge_take_resized(Bridge *b);
/* Damaged rects (clamped to the framebuffer) since the last take, at most max; returns the count. */
size_t bridge_take_damage(Bridge *b, BridgeRect *out, size_t max);
bool bridge_has_damage(const Bridge *b);
/* Mark the whole screen damaged (client refresh request, codec reset). */
void bridge_damage_all(Bridge *b);

/* Input to the guest. qnum 0 or no QEMU extended key support → a plain keysym event. */
int bridge_key(Bridge *b, uint32_t keysym, uint32_t qnum, bool down);
int bridge_pointer(Bridge *b, int x, int y, uint8_t mask);
