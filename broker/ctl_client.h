/* slatectl's side of the control API (docs/control-api.md), over the shared control client
 * (control_client.h): progress shown on stderr, errors as exit codes. It must never print
 * reply text to the terminal unsanitized. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/cleanup.h"
#include "common/jsonx.h"
#include "broker/control_client.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct Command;

typedef struct Ctl {
        const char *socket_path;      /* --socket; NULL: environment, then the default */
        bool json;
        int64_t id;
        const struct Command *cmd;    /* the command being run, for messages */
        /* progress display on stderr */
        bool tty;
        bool bar_shown;
        char step[64];
} Ctl;

/* "slatectl: MESSAGE" on stderr. */
void errorf(const char *fmt, ...) _printf_(1, 2);


const char *ctl_socket_path(Ctl *c);

/* Send {id, cmd, args} (args consumed) and wait for the answer with our id, showing progress
 * events on the way. Returns an exit code; on EXIT_OK *ret_result holds a reference. */
int ctl_call(Ctl *c, const char *cmd, json_object *args, json_object **ret_result);
