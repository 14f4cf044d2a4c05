/* The logon screen's input: keys typed as text on a US layout (Shift, Caps Lock, Ctrl), Unicode
 * events, and field editing with its bounds (a long paste is cut, never buffered). */
#include <string.h>
#include <criterion/criterion.h>
#include "rdp/form.h"

static InputText key(InputTextState *st, uint16_t code, bool ext, uint32_t *cp)
{
        InputText t = input_key_text(st, ext ? INPUT_KBD_EXTENDED : 0, code, cp);
        uint32_t ignored;
        input_key_text(st, INPUT_KBD_RELEASE | (ext ? INPUT_KBD_EXTENDED : 0), code, &ignored);
        return t;
}

Test(rdp_form, scancodes_type_us_characters_with_shift_and_caps)
{
        InputTextState st = { 0 };
        uint32_t cp;
        cr_assert_eq(key(&st, 0x1E, false, &cp), INPUT_TEXT_CHAR);
        cr_assert_eq(cp, 'a');
        cr_assert_eq(key(&st, 0x02, false, &cp), INPUT_TEXT_CHAR);
        cr_assert_eq(cp, '1');
        input_key_text(&st, 0, 0x2A, &cp);                      /* Shift down */
        cr_assert_eq(key(&st, 0x1E, false, &cp), INPUT_TEXT_CHAR);
        cr_assert_eq(cp, 'A');
        cr_assert_eq(key(&st, 0x02, false, &cp), INPUT_TEXT_CHAR);
        cr_assert_eq(cp, '!');
        cr_assert_eq(key(&st, 0x28, false, &cp), INPUT_TEXT_CHAR);
        cr_assert_eq(cp, '"');
        cr_assert_eq(key(&st, 0x0F, false, &cp), INPUT_TEXT_BACKTAB);
        input_key_text(&st, INPUT_KBD_RELEASE, 0x2A, &cp);      /* Shift up */
        cr_assert_eq(key(&st, 0x0F, false, &cp), INPUT_TEXT_TAB);
        key(&st, 0x3A, false, &cp);                             /* Caps Lock on */
        cr_assert_eq(key(&st, 0x1E, false, &cp), INPUT_TEXT_CHAR);
        cr_assert_eq(cp, 'A');
        cr_assert_eq(key(&st, 0x02, false, &cp), INPUT_TEXT_CHAR);
        cr_assert_eq(cp, '1', "Caps Lock shifts letters only");
        input_key_text(&st, 0, 0x36, &cp);                      /* right Shift with Caps: lower case */
        cr_assert_eq(key(&st, 0x1E, false, &cp), INPUT_TEXT_CHAR);
        cr_assert_eq(cp, 'a');
}

Test(rdp_form, control_keys_and_modifiers)
{
        InputTextState st = { 0 };
        uint32_t cp;
        cr_assert_eq(key(&st, 0x1C, false, &cp), INPUT_TEXT_ENTER);
        cr_assert_eq(key(&st, 0x1C, true, &cp), INPUT_TEXT_ENTER, "keypad Enter");
        cr_assert_eq(key(&st, 0x0E, false, &cp), INPUT_TEXT_BACKSPACE);
        cr_assert_eq(key(&st, 0x01, false, &cp), INPUT_TEXT_ESCAPE);
        cr_assert_eq(key(&st, 0x48, true, &cp), INPUT_TEXT_NONE, "Up types nothing");
        cr_assert_eq(key(&st, 0x52, false, &cp), INPUT_TEXT_CHAR);
        cr_assert_eq(cp, '0', "keypad 0");
        input_key_text(&st, 0, 0x1D, &cp);                      /* Ctrl down */
        cr_assert_eq(key(&st, 0x2F, false, &cp), INPUT_TEXT_NONE, "Ctrl-V types nothing");
        input_key_text(&st, INPUT_KBD_RELEASE, 0x1D, &cp);
        cr_assert_eq(input_key_text(&st, INPUT_KBD_RELEASE, 0x1E, &cp), INPUT_TEXT_NONE, "a release");
        cr_assert_eq(input_key_text(&st, 0, 0x1FF, &cp), INPUT_TEXT_NONE, "out of range");
        cr_assert_eq(input_key_text(&st, INPUT_KBD_EXTENDED1, 0x1D, &cp), INPUT_TEXT_NONE, "Pause");
}

Test(rdp_form, unicode_events)
{
        uint32_t cp;
        cr_assert_eq(input_unicode_text(0, 0x00E9, &cp), INPUT_TEXT_CHAR);
        cr_assert_eq(cp, 0xE9);
        cr_assert_eq(input_unicode_text(INPUT_KBD_RELEASE, 'x', &cp), INPUT_TEXT_NONE);
        cr_assert_eq(input_unicode_text(0, 0xD83D, &cp), INPUT_TEXT_NONE, "a lone surrogate");
        cr_assert_eq(input_unicode_text(0, 0x07, &cp), INPUT_TEXT_NONE);
        cr_assert_eq(input_unicode_text(0, 0x0D, &cp), INPUT_TEXT_ENTER);
        cr_assert_eq(input_unicode_text(0, 0x08, &cp), INPUT_TEXT_BACKSPACE);
}

Test(rdp_form, fields_hold_utf8_and_backspace_removes_a_character)
{
        Form f;
        form_init(&f, "", true);
        cr_assert_eq(f.focus, FORM_FOCUS_USER);
        cr_assert_eq(form_key(&f, INPUT_TEXT_CHAR, 'j'), FORM_CHANGED);
        cr_assert_eq(form_key(&f, INPUT_TEXT_CHAR, 0xE9), FORM_CHANGED);
        cr_assert_eq(form_key(&f, INPUT_TEXT_CHAR, 0x20AC), FORM_CHANGED);
        cr_assert_str_eq(f.user.text, "j\xC3\xA9\xE2\x82\xAC");
        cr_assert_eq(form_field_chars(&f.user), 3);
        cr_assert_eq(form_key(&f, INPUT_TEXT_BACKSPACE, 0), FORM_CHANGED);
        cr_assert_str_eq(f.user.text, "j\xC3\xA9");
        cr_assert_not(form_field_insert(&f.user, 0xD800), "no surrogates");
        cr_assert_not(form_field_insert(&f.user, 0x1B), "no controls");
}

Test(rdp_form, a_10000_key_paste_is_cut_at_the_bound)
{
        Form f;
        form_init(&f, "alice", true);
        cr_assert_eq(f.focus, FORM_FOCUS_ANSWER, "a known user starts at the password");
        for (int i = 0; i < 10000; i++)
                form_key(&f, INPUT_TEXT_CHAR, 'x');
        cr_assert_eq(f.answer.len, IPC_PASSWORD_MAX);
        cr_assert_eq(f.dropped, 10000 - IPC_PASSWORD_MAX);
        cr_assert_eq(strlen(f.answer.text), IPC_PASSWORD_MAX);
        /* A character that would straddle the bound is dropped whole. */
        form_key(&f, INPUT_TEXT_BACKSPACE, 0);
        cr_assert_not(form_field_insert(&f.answer, 0x20AC));
        cr_assert_eq(f.answer.len, IPC_PASSWORD_MAX - 1);
        form_key(&f, INPUT_TEXT_TAB, 0);
        for (int i = 0; i < 10000; i++)
                form_key(&f, INPUT_TEXT_CHAR, 'u');
        cr_assert_eq(f.user.len, IPC_NAME_MAX);
}

Test(rdp_form, long_prefilled_user_is_cut_on_a_character_boundary)
{
        char u[IPC_NAME_MAX + 10];
        memset(u, 'a', sizeof u);
        u[IPC_NAME_MAX - 1] = (char)0xC3;                       /* é straddling the bound */
        u[IPC_NAME_MAX] = (char)0xA9;
        u[sizeof u - 1] = 0;
        Form f;
        form_init(&f, u, true);
        cr_assert_eq(f.user.len, IPC_NAME_MAX - 1);
}

Test(rdp_form, tab_enter_escape)
{
        Form f;
        form_init(&f, "", true);
        cr_assert_eq(form_key(&f, INPUT_TEXT_ENTER, 0), FORM_UNCHANGED, "no user: nothing to submit");
        form_key(&f, INPUT_TEXT_CHAR, 'b');
        cr_assert_eq(form_key(&f, INPUT_TEXT_ENTER, 0), FORM_CHANGED, "Enter in the user field moves on");
        cr_assert_eq(f.focus, FORM_FOCUS_ANSWER);
        form_key(&f, INPUT_TEXT_CHAR, 's');
        cr_assert_eq(form_key(&f, INPUT_TEXT_ESCAPE, 0), FORM_CHANGED);
        cr_assert_eq(f.answer.len, 0);
        cr_assert_eq(form_key(&f, INPUT_TEXT_BACKTAB, 0), FORM_CHANGED);
        cr_assert_eq(f.focus, FORM_FOCUS_USER);
        form_key(&f, INPUT_TEXT_TAB, 0);
        form_key(&f, INPUT_TEXT_CHAR, 'p');
        cr_assert_eq(form_key(&f, INPUT_TEXT_ENTER, 0), FORM_SUBMIT);
        /* A later PAM prompt: the answer only. */
        form_init(&f, "bob", false);
        cr_assert_eq(form_key(&f, INPUT_TEXT_TAB, 0), FORM_UNCHANGED);
        cr_assert_eq(form_key(&f, INPUT_TEXT_ENTER, 0), FORM_SUBMIT, "an empty answer is an answer");
        form_wipe(&f);
        cr_assert_eq(f.user.text[0], 0);
}
