/* Logon screen fields (see form.h). Nothing typed is logged here or anywhere: the fields are
 * wiped when cleared, and the caller wipes them after sending. */
#include <string.h>
#include "common/util.h"
#include "rdp/form.h"

static size_t utf8_encode(uint32_t cp, char out[4])
{
        if (cp < 0x80) {
                out[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char)(0xC0 | (cp >> 6));
                out[1] = (char)(0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                if (cp >= 0xD800 && cp <= 0xDFFF)
                        return 0;
                out[0] = (char)(0xE0 | (cp >> 12));
                out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[2] = (char)(0x80 | (cp & 0x3F));
                return 3;
        }
        if (cp <= 0x10FFFF) {
                out[0] = (char)(0xF0 | (cp >> 18));
                out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[3] = (char)(0x80 | (cp & 0x3F));
                return 4;
        }
        return 0;
}

bool form_field_insert(FormField *f, uint32_t cp)
{
        char b[4];
        if (cp < 0x20 || cp == 0x7F)
                return false;
        size_t n = utf8_encode(cp, b);
        if (n == 0 || f->len + n > f->max)
                return false;
        memcpy(f->text + f->len, b, n);
        f->len += n;
        f->text[f->len] = 0;
        return true;
}

bool form_field_backspace(FormField *f)
{
        if (f->len == 0)
                return false;
        size_t n = f->len - 1;
        while (n > 0 && ((unsigned char)f->text[n] & 0xC0) == 0x80)
                n--;
        secret_wipe(f->text + n, f->len - n);
        f->len = n;
        f->text[n] = 0;
        return true;
}

void form_field_clear(FormField *f)
{
        secret_wipe(f->text, sizeof f->text);
        f->len = 0;
}

size_t form_field_chars(const FormField *f)
{
        size_t n = 0;
        for (size_t i = 0; i < f->len; i++)
                n += ((unsigned char)f->text[i] & 0xC0) != 0x80;
        return n;
}

void form_init(Form *f, const char *user, bool user_editable)
{
        form_wipe(f);
        f->user.max = IPC_NAME_MAX;
        f->answer.max = IPC_PASSWORD_MAX;
        f->user_editable = user_editable;
        f->dropped = 0;
        size_t n = strnlen(user ? user : "", IPC_NAME_MAX + 1);
        if (n > IPC_NAME_MAX) {
                /* Cut on a character boundary. */
                n = IPC_NAME_MAX;
                while (n > 0 && ((unsigned char)user[n] & 0xC0) == 0x80)
                        n--;
        }
        if (n)
                memcpy(f->user.text, user, n);
        f->user.text[n] = 0;
        f->user.len = n;
        f->focus = (n || !user_editable) ? FORM_FOCUS_ANSWER : FORM_FOCUS_USER;
}

void form_wipe(Form *f)
{
        form_field_clear(&f->user);
        form_field_clear(&f->answer);
}

FormResult form_key(Form *f, InputText kind, uint32_t cp)
{
        FormField *fld = f->focus == FORM_FOCUS_USER ? &f->user : &f->answer;
        switch (kind) {
        case INPUT_TEXT_CHAR:
                if (form_field_insert(fld, cp))
                        return FORM_CHANGED;
                f->dropped++;
                return FORM_UNCHANGED;
        case INPUT_TEXT_BACKSPACE:
                return form_field_backspace(fld) ? FORM_CHANGED : FORM_UNCHANGED;
        case INPUT_TEXT_ESCAPE:
                if (!fld->len)
                        return FORM_UNCHANGED;
                form_field_clear(fld);
                return FORM_CHANGED;
        case INPUT_TEXT_TAB:
        case INPUT_TEXT_BACKTAB:
                if (!f->user_editable)
                        return FORM_UNCHANGED;
                f->focus = f->focus == FORM_FOCUS_USER ? FORM_FOCUS_ANSWER : FORM_FOCUS_USER;
                return FORM_CHANGED;
        case INPUT_TEXT_ENTER:
                if (!f->user.len) {
                        /* Nobody to sign in as: Enter goes to the user name. */
                        if (!f->user_editable || f->focus == FORM_FOCUS_USER)
                                return FORM_UNCHANGED;
                        f->focus = FORM_FOCUS_USER;
                        return FORM_CHANGED;
                }
                if (f->focus == FORM_FOCUS_USER && f->user_editable && !f->answer.len) {
                        f->focus = FORM_FOCUS_ANSWER;
                        return FORM_CHANGED;
                }
                return FORM_SUBMIT;
        default:
                return FORM_UNCHANGED;
        }
}
