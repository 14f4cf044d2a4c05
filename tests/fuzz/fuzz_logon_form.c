/* Fuzz target for the logon screen's input (rdp/form, input_key_text/input_unicode_text): the
 * client's keyboard and Unicode events, 4 bytes each (kind and flags, then a 16-bit code), into
 * one form. Checks, not just runs: no field past its bound, each NUL-terminated at its length and
 * valid UTF-8 without controls, the focus one of the two fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "rdp/form.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static void check_field(const FormField *f)
{
        CHECK(f->len <= f->max && f->max <= FORM_FIELD_CAP);
        CHECK(f->text[f->len] == 0 && strlen(f->text) == f->len);
        for (size_t i = 0; i < f->len;) {
                unsigned char c = (unsigned char)f->text[i];
                size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
                CHECK(n > 0 && i + n <= f->len);
                CHECK(n > 1 || (c >= 0x20 && c != 0x7F));
                for (size_t k = 1; k < n; k++)
                        CHECK(((unsigned char)f->text[i + k] & 0xC0) == 0x80);
                i += n;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        Form f;
        InputTextState st = { 0 };
        memset(&f, 0, sizeof f);
        form_init(&f, size && data[0] & 1 ? "alice" : "", !(size && data[0] & 2));
        for (size_t i = 1; i + 4 <= size; i += 4) {
                uint16_t flags = (uint16_t)((data[i] & 0x0F) << 8 | (data[i] & 0xF0) << 8);
                uint16_t code = (uint16_t)(data[i + 2] | data[i + 3] << 8);
                uint32_t cp;
                InputText t = data[i + 1] & 1 ? input_unicode_text(flags, code, &cp)
                                               : input_key_text(&st, flags, code, &cp);
                CHECK(t == INPUT_TEXT_CHAR ? cp >= 0x20 : cp == 0);
                form_key(&f, t, cp);
                check_field(&f.user);
                check_field(&f.answer);
                CHECK(f.focus == FORM_FOCUS_USER || f.focus == FORM_FOCUS_ANSWER);
                CHECK(f.user.max == IPC_NAME_MAX && f.answer.max == IPC_PASSWORD_MAX);
        }
        form_wipe(&f);
        CHECK(f.user.len == 0 && f.answer.len == 0 && f.answer.text[0] == 0);
        return 0;
}
