/* The test guest's desktop (tests/guest/README.md "The test desktop"): what an RDP user of the
 * test guest sees, drawn on /dev/fb0 by the test guest's own slate-agent (agent-testdesk.c). A
 * coloured screen per user with the name, a key indicator and F12 to log out; a grey "slate
 * ready" screen otherwise. It must never leave the kernel console switched off after the agent
 * exits, nor draw outside the framebuffer. */
#pragma once
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include "tests/guest/fbdraw.h"
#include "agent/proto.h"
#include "common/username.h"

#define DESK_FB_PATH "/dev/fb0"
#define DESK_INPUT_DIR "/dev/input"
#define DESK_INPUT_MAX 8
/* Run as root at each session start when executable (README "Session hook"); cut off after this. */
#define DESK_HOOK_PATH "/etc/slate-test/session-hook"
#define DESK_HOOK_TIMEOUT_MS 10000

/* Documented in tests/guest/README.md; the end-to-end tests check these pixels. */
#define DESK_READY_BG 0x202020u
#define DESK_TEXT_RGB 0xffffffu
#define DESK_KEYBOX_X 20
#define DESK_KEYBOX_Y 100
#define DESK_KEYBOX_SIZE 100

typedef struct Desk {
        Fb fb;
        int tty_fd;                 /* /dev/tty0 held in KD_GRAPHICS while we own the screen */
        int input[DESK_INPUT_MAX];  /* grabbed keyboards while a session runs */
        unsigned n_input;
        bool active;
        char user[USER_NAME_MAX + 1];
        uint32_t keys;              /* key presses in this session */
} Desk;

/* FNV-1a 32 of the name; each byte of (h>>16, h>>8, h) becomes 0x40 + (c & 0x7f). 0xRRGGBB. */
uint32_t desk_user_rgb(const char *user);
/* Key indicator colour after n key presses: black, red, green, blue, then round again. */
uint32_t desk_keybox_rgb(uint32_t n);

/* Takes the screen (kernel console to KD_GRAPHICS) and draws the ready screen. Without a
 * framebuffer it logs once and every later session start fails. */
void desk_init(Desk *d);
/* Draws the user's desktop and grabs the keyboards. 0, or a negative errno with the reason for
 * the host in detail. width/height are what the host asked for (0: any); the screen is what
 * the framebuffer has, and detail says which. */
int desk_session_start(Desk *d, const char *user, unsigned width, unsigned height, char *detail, size_t size);
/* Ends the session if one runs (releases the keyboards, syncs, draws the ready screen). */
void desk_session_stop(Desk *d);
/* After a start: in how many ms the session is usable, from the user's name (tests/guest/README.md
 * "Usable"): slow* after DESK_SLOW_USABLE_MS, never* never (-1), anyone else at once (0). */
#define DESK_SLOW_USABLE_MS 4000
int desk_usable_delay_ms(const Desk *d);
/* Adds the keyboards' fds (POLLIN) to pfd; returns how many. */
unsigned desk_pollfds(const Desk *d, struct pollfd *pfd, unsigned max);
/* Reads the events pending on fd. Returns 1 when the user asked to log out (F12), else 0. */
int desk_input(Desk *d, int fd);
/* Gives the screen back to the kernel console. */
void desk_done(Desk *d);
