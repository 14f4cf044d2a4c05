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
void control_register(Control *c, const char *cmd, ControlHandler h);

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

/* Is this peer allowed? root, slated's own uid, or a member of the admin group (gid). */
bool control_peer_allowed(uid_t peer_uid, gid_t peer_gid, uid_t self_uid, gid_t admin_gid);
