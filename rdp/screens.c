/* slate-session's own screens from a connection's side (see screens.h): the state behind the
 * ScreenView that rdp/screen.c draws, and the pacing of its frames. Must never do I/O or log what
 * was typed; the fields are wiped when taken, on success and at the end. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "common/ipc.h"
#include "common/log.h"
#include "rdp/form.h"
#include "rdp/input.h"
#include "rdp/screens.h"

typedef enum ScreensShow {
        SHOW_PROGRESS,                  /* "Welcome, NAME", what happens now */
        SHOW_LOGON,                     /* the logon screen waits for the user */
        SHOW_LOGON_BUSY,                /* the logon screen, while slated checks what was typed */
} ScreensShow;

struct Screens {
        Screen *screen;                 /* the caller's; NULL: nothing to draw */
        bool dirty;                     /* the view changed: draw it */
        uint32_t next_id, acked_next;   /* frames sent (without the base); the first not acknowledged */
        ScreensShow show;

        /* the progress screen */
        char title[IPC_NAME_MAX + 16], text[IPC_TEXT_MAX + 1];
        unsigned step, steps;
        bool attached, failed;

        /* the logon screen */
        char banner[IPC_TEXT_MAX + 1];
        bool prompting;                 /* the answer is for a PAM prompt, not the first credentials */
        Form form;
        InputTextState kt;
        char prompt[IPC_TEXT_MAX + 1];
        bool prompt_secret;
        char message[IPC_TEXT_MAX + 1];
        bool message_error;
};

int screens_new(Screen *screen, Screens **ret)
{
        Screens *sc = calloc(1, sizeof *sc);
        if (!sc)
                return log_error_errno(-ENOMEM, "screens: out of memory");
        sc->screen = screen;
        *ret = sc;
        return 0;
}

Screens *screens_free(Screens *sc)
{
        if (!sc)
                return NULL;
        form_wipe(&sc->form);
        free(sc);
        return NULL;
}

bool screens_can_logon(const Screens *sc)
{
        return sc->screen && screen_has_text(sc->screen);
}

void screens_set_banner(Screens *sc, const char *banner)
{
        snprintf(sc->banner, sizeof sc->banner, "%s", banner);
}

/* ---- the logon screen ---- */

void screens_logon(Screens *sc, const char *user)
{
        sc->show = SHOW_LOGON;
        sc->prompting = false;
        sc->prompt_secret = true;
        snprintf(sc->prompt, sizeof sc->prompt, "Password");
        form_init(&sc->form, user, true);
        sc->dirty = true;
}

void screens_prompt(Screens *sc, const char *user, const char *text, bool secret)
{
        sc->show = SHOW_LOGON;
        sc->prompting = true;
        sc->prompt_secret = secret;
        snprintf(sc->prompt, sizeof sc->prompt, "%s", text);
        form_init(&sc->form, user, false);
        sc->dirty = true;
}

void screens_message(Screens *sc, const char *text, bool error)
{
        snprintf(sc->message, sizeof sc->message, "%s", text);
        sc->message_error = error;
        sc->dirty = true;
}

static bool logon_text(Screens *sc, InputText kind, uint32_t cp)
{
        FormResult r = form_key(&sc->form, kind, cp);
        if (r == FORM_CHANGED)
                sc->dirty = true;
        return r == FORM_SUBMIT;
}

bool screens_key(Screens *sc, uint16_t flags, uint16_t code)
{
        uint32_t cp;
        InputText t = input_key_text(&sc->kt, flags, code, &cp);
        return logon_text(sc, t, cp);
}

bool screens_unicode(Screens *sc, uint16_t flags, uint16_t code)
{
        uint32_t cp;
        InputText t = input_unicode_text(flags, code, &cp);
        return logon_text(sc, t, cp);
}

const char *screens_submit(Screens *sc, const char **ret_user)
{
        if (sc->form.dropped)
                log_info("logon screen: %u characters dropped (a field was full)", sc->form.dropped);
        sc->message[0] = 0;
        sc->show = SHOW_LOGON_BUSY;
        sc->dirty = true;
        *ret_user = sc->prompting ? NULL : sc->form.user.text;
        sc->prompting = false;
        return sc->form.answer.text;
}

void screens_answer_wipe(Screens *sc)
{
        form_field_clear(&sc->form.answer);
}

/* ---- the progress screen ---- */

void screens_welcome(Screens *sc, const char *user)
{
        snprintf(sc->title, sizeof sc->title, "Welcome, %s", user);
        snprintf(sc->text, sizeof sc->text, "Signing in\xE2\x80\xA6");
        sc->dirty = true;
}

void screens_signed_in(Screens *sc)
{
        form_wipe(&sc->form);
        sc->show = SHOW_PROGRESS;
        snprintf(sc->text, sizeof sc->text, "Preparing your desktop\xE2\x80\xA6");
        sc->dirty = true;
}

void screens_attached(Screens *sc, bool starting)
{
        sc->attached = true;
        if (starting) {
                snprintf(sc->text, sizeof sc->text, "Starting your session\xE2\x80\xA6");
                sc->dirty = true;
        }
}

void screens_step(Screens *sc, const char *title, const char *text, unsigned step, unsigned steps)
{
        if (*title)
                snprintf(sc->title, sizeof sc->title, "%s", title);
        snprintf(sc->text, sizeof sc->text, "%s", text);
        sc->step = step;
        sc->steps = steps;
        sc->dirty = true;
}

void screens_failed(Screens *sc, const char *why)
{
        sc->failed = true;
        snprintf(sc->text, sizeof sc->text, "%s", *why ? why : "Your desktop could not be started.");
        sc->dirty = true;
}

/* ---- frames ---- */

void screens_changed(Screens *sc)
{
        sc->dirty = true;
}

void screens_refresh(Screens *sc)
{
        if (sc->screen)
                screen_invalidate(sc->screen);
        sc->dirty = true;
}

bool screens_pending(const Screens *sc)
{
        return sc->screen && sc->dirty;
}

static void screens_view(const Screens *sc, ScreenView *v)
{
        *v = (ScreenView){ .hint = "" };
        if (sc->failed) {
                v->mode = SCREEN_FAILED;
                v->title = "Your desktop could not start";
                v->text = sc->text;
                v->hint = "This connection closes in a few seconds.";
        } else if (sc->show != SHOW_PROGRESS) {
                bool busy = sc->show == SHOW_LOGON_BUSY;
                v->mode = SCREEN_LOGON;
                v->banner = sc->banner;
                v->user = sc->form.user.text;
                v->user_editable = sc->form.user_editable;
                v->prompt = sc->prompt;
                v->secret = sc->prompt_secret;
                v->answer = sc->prompt_secret ? "" : sc->form.answer.text;
                v->answer_chars = form_field_chars(&sc->form.answer);
                v->focus = busy ? -1 : sc->form.focus;
                v->message = sc->message;
                v->message_error = sc->message_error;
                if (busy)
                        v->hint = "Signing in\xE2\x80\xA6";
                else if (sc->form.user_editable)
                        v->hint = "Press Enter to sign in \xC2\xB7 Tab switches fields";
                else
                        v->hint = "Press Enter to continue";
        } else {
                v->mode = SCREEN_PROGRESS;
                v->title = *sc->title ? sc->title : "Welcome";
                v->text = sc->text;
                v->step = sc->step;
                v->steps = sc->steps;
                v->hint = sc->attached ? "Your desktop appears in a moment." : "";
        }
}

int screens_frame_next(Screens *sc, uint32_t w, uint32_t h, bool acks, ScreensFrame *ret)
{
        if (!screens_pending(sc))
                return 0;
        /* The client paces us as it does for the console: a few frames ahead at most. */
        if (acks && sc->next_id - sc->acked_next >= CONSOLE_FRAMES_AHEAD_MAX)
                return 0;
        ScreenView v;
        screens_view(sc, &v);
        int r = screen_draw(sc->screen, &v, w, h, ret->rects, SCREENS_RECTS_MAX, &ret->n);
        if (r < 0)
                return r;
        sc->dirty = false;
        if (ret->n == 0)
                return 0;
        uint32_t fw, fh;
        ret->fb = screen_framebuffer(sc->screen, &ret->stride, &fw, &fh);
        ret->id = SCREENS_ID_BASE + sc->next_id++;
        return 1;
}

void screens_frame_ack(Screens *sc, uint32_t id)
{
        if (id < SCREENS_ID_BASE)
                return;
        /* Screen frames count from 0 without the base. */
        uint32_t k = id - SCREENS_ID_BASE;
        if (k >= sc->acked_next && k < sc->next_id)
                sc->acked_next = k + 1;
}

void screens_frame_restart(Screens *sc)
{
        if (sc->screen)
                screen_invalidate(sc->screen);
        sc->acked_next = sc->next_id;
}
