/* slate-session's own screens, composed on the server: the progress screen (from the credentials
 * to a usable desktop) and the logon screen (for clients that send no password). Draws into a
 * BGRX32 framebuffer of the client's size with cairo and one TrueType font read before the
 * sandbox; says which rects changed since the last draw. Never reads a file after
 * screen_font_load, never includes FreeRDP, never holds typed text longer than a draw. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "rdp/console.h"

#define SCREEN_BACKDROP 0x152233        /* the Xfce image's session backdrop: the switch is seamless */
#define SCREEN_DIM_MAX 8192
#define SCREEN_BANNER_LINES 6           /* a longer banner is cut, with an ellipsis */

typedef struct ScreenFont ScreenFont;

/* Read the font file (at most 16 MiB) and open it with FreeType: before the sandbox. */
int screen_font_load(const char *path, ScreenFont **ret);
ScreenFont *screen_font_free(ScreenFont *f);

typedef enum ScreenMode {
        SCREEN_PROGRESS,                /* "Welcome, NAME", what happens now, a step bar */
        SCREEN_LOGON,                   /* banner, user, a prompt and its field, a message, a hint */
        SCREEN_FAILED,                  /* the session did not come up: why */
} ScreenMode;

typedef struct ScreenView {
        ScreenMode mode;
        const char *title;              /* progress and failed: "Welcome, alice" */
        const char *text;               /* progress and failed: what happens now, or why */
        unsigned step, steps;           /* progress: step of steps; 0 of 0: no bar */
        const char *banner;             /* logon: the pool's message, wrapped; NULL or "" none */
        const char *user;               /* logon: the user name field */
        bool user_editable;
        const char *prompt;             /* logon: the answer field's label ("Password") */
        const char *answer;             /* logon: shown when !secret */
        size_t answer_chars;            /* logon: dots when secret */
        bool secret;
        int focus;                      /* 0 user, 1 answer, -1 none (busy) */
        const char *message;            /* logon: an error or information line; NULL none */
        bool message_error;
        const char *hint;               /* the bottom line ("Press Enter to sign in") */
} ScreenView;

typedef struct Screen Screen;

/* font may be NULL: shapes without text. */
int screen_new(const ScreenFont *font, Screen **ret);
Screen *screen_free(Screen *s);
/* Draw v at w×h (clamped to 1..SCREEN_DIM_MAX). ret_rects gets up to max rects that differ from
 * the previous draw (the whole screen after a resize or screen_invalidate); *ret_n 0 when
 * nothing changed. */
int screen_draw(Screen *s, const ScreenView *v, uint32_t w, uint32_t h, ConsoleRect *ret_rects, size_t max,
                size_t *ret_n);
/* The last drawn framebuffer (BGRX32). */
const uint8_t *screen_framebuffer(const Screen *s, uint32_t *ret_stride, uint32_t *ret_w, uint32_t *ret_h);
/* Whether text is drawn (the font loaded): a logon screen needs it. */
bool screen_has_text(const Screen *s);
/* The next draw reports the whole screen (the client's decoder started afresh). */
void screen_invalidate(Screen *s);
