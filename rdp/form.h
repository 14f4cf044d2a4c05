/* The logon screen's fields and their editing: the user name and one answer field (a password, a
 * one-time code, a new password: whatever PAM asks), focus, and keys applied to them. Pure: no
 * I/O, no drawing. Every field is bounded in bytes; a key that would not fit is dropped, never
 * buffered, and a cleared field is wiped (it may hold a secret). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/ipc.h"
#include "rdp/input.h"

#define FORM_FIELD_CAP IPC_PASSWORD_MAX /* the largest field: IPC_PROMPT_REPLY's text */

typedef struct FormField {
        char text[FORM_FIELD_CAP + 1];  /* UTF-8, NUL-terminated */
        size_t len;                     /* bytes */
        size_t max;                     /* bytes, ≤ FORM_FIELD_CAP */
} FormField;

enum { FORM_FOCUS_USER = 0, FORM_FOCUS_ANSWER = 1 };

typedef struct Form {
        FormField user, answer;
        int focus;                      /* FORM_FOCUS_* */
        bool user_editable;             /* the first prompt; later PAM prompts have the answer only */
        uint32_t dropped;               /* characters dropped because a field was full */
} Form;

typedef enum FormResult {
        FORM_UNCHANGED,
        FORM_CHANGED,                   /* redraw */
        FORM_SUBMIT,                    /* Enter with a user name: send what the fields hold */
} FormResult;

/* An empty form: user prefilled (cut at IPC_NAME_MAX bytes on a character boundary), focus on
 * the answer when the user is known, on the user otherwise. */
void form_init(Form *f, const char *user, bool user_editable);
/* Append one character (UTF-8 encoded); false when it does not fit or is not a character. */
bool form_field_insert(FormField *f, uint32_t cp);
/* Remove the last character; false when empty. */
bool form_field_backspace(FormField *f);
/* Empty the field and wipe what it held. */
void form_field_clear(FormField *f);
/* Characters (not bytes) in the field: what a masked field shows as dots. */
size_t form_field_chars(const FormField *f);
/* Apply one key: characters go to the focused field, Tab/Shift-Tab move the focus (when the user
 * is editable), Backspace deletes, Escape clears the focused field, Enter submits. */
FormResult form_key(Form *f, InputText kind, uint32_t cp);
/* Wipe both fields. */
void form_wipe(Form *f);
