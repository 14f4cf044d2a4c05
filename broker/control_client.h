/* The control API's client side (docs/control-api.md), for every front end: slatectl today,
 * slate-web next. One request per connection, the answer matched by id, progress events
 * handed to a callback. Prints nothing and never buffers a reply without bound; what slated
 * says is returned raw, for the front end to sanitize for its medium. */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONTROL_CLIENT_DEFAULT_SOCKET "/run/slate/control.sock"
/* A reply is one line; the biggest honest one (desktop.list on a large host) is far below this.
 * Anything longer is refused rather than buffered without bound. */
#define CONTROL_CLIENT_REPLY_MAX (16u << 20)
/* slated closes the connection on a longer request line; say so before sending. */
#define CONTROL_CLIENT_REQUEST_MAX (64u << 10)

/* A connection's read side: lines are cut out of one growing buffer. */
typedef struct ControlClientReader {
        int fd;
        char *buf;
        size_t len, cap;
        size_t scanned;               /* bytes already searched for '\n' */
        size_t consumed;              /* bytes of the line handed out last */
} ControlClientReader;

/* Next line (without '\n', NUL-terminated, valid until the next call). -EMSGSIZE if a line
 * passes CONTROL_CLIENT_REPLY_MAX, -ENOMSG on end of stream. */
int control_client_read_line(ControlClientReader *k, char **ret, size_t *ret_len);
void control_client_reader_freep(ControlClientReader *k);

/* The socket: path if given, else $SLATE_CONTROL_SOCKET, else the default. */
const char *control_client_socket(const char *path);

typedef void (*ControlClientProgress)(const char *step, int64_t percent, void *data);

/* Send {id, cmd, args} (args consumed) and wait for the answer with this id. 0: *ret_result
 * holds a reference (may be NULL). -EREMOTEIO: slated refused the request; *ret_error is its
 * message. Other negative errnos: the request never got an answer; *ret_error says why. */
int control_client_call(const char *socket_path, int64_t id, const char *cmd, json_object *args,
                        ControlClientProgress progress, void *data, json_object **ret_result, char **ret_error);
