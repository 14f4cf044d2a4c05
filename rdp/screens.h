/* slate-session's own screens from a connection's side (rdp/rdpconn.c): which one shows (logon,
 * progress, failed), what it says, the logon screen's typing, and its frames at the client's
 * size, paced like the console's. rdp/screen.c draws, rdp/form.c edits. No I/O and no FreeRDP:
 * the connection sends the frames and the answers. Typed text is wiped once taken and at the end. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "rdp/console.h"
#include "rdp/screen.h"

/* Screen frames' ids, apart from the console's (which count from 1): an ack says whose it is. */
#define SCREENS_ID_BASE 0x40000000u
#define SCREENS_RECTS_MAX 32

typedef struct Screens Screens;

/* screen (may be NULL: nothing is drawn, no logon screen) stays the caller's. */
int screens_new(Screen *screen, Screens **ret);
/* Wipes what was typed. */
Screens *screens_free(Screens *sc);
/* Whether a logon screen can be shown (the font loaded). */
bool screens_can_logon(const Screens *sc);
/* The pool's message above the logon screen's fields. */
void screens_set_banner(Screens *sc, const char *banner);

/* ---- the logon screen ---- */

/* Ask for the user name (prefilled with user) and the password. */
void screens_logon(Screens *sc, const char *user);
/* A PAM prompt under user's name: the answer field only, masked when secret. */
void screens_prompt(Screens *sc, const char *user, const char *text, bool secret);
/* An information or error line under the fields (until the next submit). */
void screens_message(Screens *sc, const char *text, bool error);
/* One RDP key event or Unicode unit on the logon screen: true on Enter with a user name (then take
 * the fields with screens_submit). */
bool screens_key(Screens *sc, uint16_t flags, uint16_t code);
bool screens_unicode(Screens *sc, uint16_t flags, uint16_t code);
/* Enter was taken: the screen is busy until the next prompt or refusal. *ret_user is the typed user
 * name, NULL when this answers a prompt; the answer is valid until screens_answer_wipe. */
const char *screens_submit(Screens *sc, const char **ret_user);
void screens_answer_wipe(Screens *sc);

/* ---- the progress screen ---- */

/* The credentials went to slated: "Welcome, user", signing in. */
void screens_welcome(Screens *sc, const char *user);
/* Signed in: the logon screen's fields are wiped, the progress screen shows. */
void screens_signed_in(Screens *sc);
/* The desktop is attached; starting: say so (slated reports no progress). */
void screens_attached(Screens *sc, bool starting);
/* slated's step: title (kept when empty), text, step of steps. */
void screens_step(Screens *sc, const char *title, const char *text, unsigned step, unsigned steps);
/* The session did not come up: why (a default when empty), until the connection ends. */
void screens_failed(Screens *sc, const char *why);

/* ---- frames ---- */

/* The view may have changed: draw it at the next screens_frame_next. */
void screens_changed(Screens *sc);
/* The next frame is the whole screen (the client asked, or was activated again). */
void screens_refresh(Screens *sc);
/* Whether there is a drawing to do (a screen and a change since the last frame). */
bool screens_pending(const Screens *sc);

typedef struct ScreensFrame {
        uint32_t id;                    /* SCREENS_ID_BASE and up: the client acknowledges the frame by it */
        const uint8_t *fb;              /* BGRX32, valid until the next draw */
        uint32_t stride;
        size_t n;
        ConsoleRect rects[SCREENS_RECTS_MAX];
} ScreensFrame;

/* The next frame at w×h: 1 with *ret to send, 0 when nothing changed there or the client
 * acknowledges frames (acks) and has CONSOLE_FRAMES_AHEAD_MAX of them unacknowledged. */
int screens_frame_next(Screens *sc, uint32_t w, uint32_t h, bool acks, ScreensFrame *ret);
/* The client acknowledged frame id (and all before it); ids never sent are ignored. */
void screens_frame_ack(Screens *sc, uint32_t id);
/* A fresh encoder (the client's decoder starts afresh): the next frame is whole, earlier frames
 * need no acknowledgement. */
void screens_frame_restart(Screens *sc);
