/* slate-session's screens from a connection's side: what the logon screen hands over on Enter (the
 * typed user, or only the answer to a PAM prompt), that a taken answer is wiped, and that a client
 * that acknowledges frames is never sent more than a few screen frames ahead. */
#include <string.h>
#include <criterion/criterion.h>
#include "rdp/input.h"
#include "rdp/screens.h"

static Screen *screen;
static Screens *sc;

static void setup(void)
{
        cr_assert_eq(screen_new(NULL, &screen), 0);
        cr_assert_eq(screens_new(screen, &sc), 0);
}

static void teardown(void)
{
        sc = screens_free(sc);
        screen = screen_free(screen);
}

/* Type s as Unicode events; true when the last one submitted. */
static bool type(const char *s)
{
        bool submit = false;
        for (; *s; s++) {
                submit = screens_unicode(sc, 0, (uint8_t)*s);
                screens_unicode(sc, INPUT_KBD_RELEASE, (uint8_t)*s);
        }
        return submit;
}

Test(rdp_screens, enter_hands_over_the_typed_user_and_password, .init = setup, .fini = teardown)
{
        screens_logon(sc, "alice");
        cr_assert_not(type("secret"));
        cr_assert(type("\r"));
        const char *user = NULL;
        const char *answer = screens_submit(sc, &user);
        cr_assert_str_eq(user, "alice");
        cr_assert_str_eq(answer, "secret");
        screens_answer_wipe(sc);
        cr_assert_str_eq(answer, "", "a taken answer is wiped");
}

Test(rdp_screens, a_prompt_hands_over_the_answer_alone, .init = setup, .fini = teardown)
{
        screens_prompt(sc, "alice", "One-time code", false);
        type("123456\r");
        const char *user = "x";
        const char *answer = screens_submit(sc, &user);
        cr_assert_null(user, "a prompt's answer goes back without a user name");
        cr_assert_str_eq(answer, "123456");
}

Test(rdp_screens, an_acking_client_is_paced, .init = setup, .fini = teardown)
{
        ScreensFrame f;
        uint32_t first = 0;
        screens_frame_restart(sc);
        for (unsigned i = 0; i < CONSOLE_FRAMES_AHEAD_MAX; i++) {
                screens_step(sc, "", "", i + 1, 8);
                cr_assert_eq(screens_frame_next(sc, 320, 200, true, &f), 1, "frame %u", i);
                cr_assert_geq(f.id, SCREENS_ID_BASE);
                if (i == 0)
                        first = f.id;
        }
        screens_step(sc, "", "", 5, 8);
        cr_assert_eq(screens_frame_next(sc, 320, 200, true, &f), 0, "no frame past the unacknowledged limit");
        cr_assert(screens_pending(sc), "the change waits for an ack");
        screens_frame_ack(sc, first);
        cr_assert_eq(screens_frame_next(sc, 320, 200, true, &f), 1);
        cr_assert_not(screens_pending(sc));
        cr_assert_eq(screens_frame_next(sc, 320, 200, true, &f), 0, "nothing changed");
}

Test(rdp_screens, without_a_screen_nothing_is_drawn, .fini = teardown)
{
        cr_assert_eq(screens_new(NULL, &sc), 0);
        cr_assert_not(screens_can_logon(sc));
        screens_changed(sc);
        cr_assert_not(screens_pending(sc));
        ScreensFrame f;
        cr_assert_eq(screens_frame_next(sc, 320, 200, false, &f), 0);
}
