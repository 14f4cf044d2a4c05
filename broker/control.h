/* The control API server: newline-delimited JSON on a unix socket (docs/control-api.md).
 * Peer credentials are checked on accept; a request line is capped before buffering;
 * handlers may answer later (publishing runs in the thread pool). */
#pragma once
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/types.h>
#include "broker/broker.h"

#define CONTROL_LINE_MAX (64u * 1024)

typedef struct ControlRequest ControlRequest;
typedef void (*ControlHandler)(Broker *b, ControlRequest *req, json_object *args);

int control_start(Broker *b, const char *path, const char *admin_group, Control **ret);
void control_stop(Control *c);
/* After the loop's last run: nothing may reference the server any more. */
void control_free(Control *c);
/* The API as a table: each command with its handler, whether it changes anything (mutating
 * commands are audited with the caller's uid) and its argument schema. The dispatcher checks
 * every request against the schema before the handler runs: unknown arguments, missing
 * required ones, wrong types and values out of range are refused with the argument's name, so
 * a handler reads only values that passed (jsonx getters), never raw input. */
typedef enum ControlArgType { CONTROL_ARG_STRING = 1, CONTROL_ARG_INT, CONTROL_ARG_BOOL } ControlArgType;

/* Strings without their own limit are capped here (paths, command lines). */
#define CONTROL_STRING_MAX 4096

typedef struct ControlArg {
        const char *name;
        ControlArgType type;
        bool required;
        int64_t min, max;       /* INT: the range; STRING: length (max 0 = CONTROL_STRING_MAX) */
} ControlArg;

#define CONTROL_ARGS_MAX 16

typedef struct ControlCommand {
        const char *cmd;
        ControlHandler fn;
        bool mutating;
        ControlArg args[CONTROL_ARGS_MAX];     /* ends at the first entry without a name */
} ControlCommand;

/* Register a table ending with an entry whose cmd is NULL. The table must outlive the server. */
void control_register(Control *c, const ControlCommand *table);
/* Check args against a command's schema (no I/O; fuzzed with the request parser). 0, or
 * -EINVAL with a message naming the argument. */
int control_args_check(const ControlCommand *cmd, json_object *args, char *msg, size_t msg_size);

/* Exactly one of these per request; result is stolen. */
void control_reply(ControlRequest *req, json_object *result);
void control_reply_error(ControlRequest *req, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void control_progress(ControlRequest *req, const char *step, int percent);

/* Nesting deeper than this in a request is refused (no command needs more than 3 levels). */
#define CONTROL_JSON_DEPTH 16

typedef struct ControlParsed {
        json_object *root;      /* owned: json_object_put when done (also on error) */
        int64_t id;
        char cmd[64];
        json_object *args;      /* borrowed from root; NULL when absent */
} ControlParsed;

/* Parse one request line (no I/O, fuzzed): 0, or -EINVAL/-EMSGSIZE with a message for the client. */
int control_request_parse(const char *line, size_t len, ControlParsed *ret, const char **ret_error);

/* Who sent the request (SO_PEERCRED of its connection). */
void control_request_peer(const ControlRequest *req, uid_t *uid, gid_t *gid);

/* Is this peer allowed? root, slated's own uid, or a member of the admin group (gid). */
bool control_peer_allowed(uid_t peer_uid, gid_t peer_gid, uid_t self_uid, gid_t admin_gid);
