/* slatectl's side of the control API (docs/control-api.md): one request per connection, the
 * answer matched by id, progress events shown on stderr. It must never buffer a reply without
 * bound nor print reply text to the terminal unsanitized. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/cleanup.h"
#include "common/jsonx.h"

#define DEFAULT_SOCKET "/run/slate/control.sock"
/* A reply is one line; the biggest honest one (desktop.list on a large host) is far below this.
 * Anything longer is refused rather than buffered without bound. */
#define RESPONSE_MAX (16u << 20)
/* slated closes the connection on a longer request line; say so before sending. */
#define REQUEST_MAX (64u << 10)

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

/* A connection's read side: lines are cut out of one growing buffer. */
typedef struct Conn {
        int fd;
        char *buf;
        size_t len, cap;
        size_t scanned;               /* bytes already searched for '\n' */
        size_t consumed;              /* bytes of the line handed out last */
} Conn;

/* "slatectl: MESSAGE" on stderr. */
void errorf(const char *fmt, ...) _printf_(1, 2);

/* Next line (without '\n', NUL-terminated, valid until the next call). -EMSGSIZE if a line
 * passes RESPONSE_MAX, -ENOMSG on end of stream. */
int conn_read_line(Conn *k, char **ret, size_t *ret_len);
void conn_freep(Conn *k);
int send_all(int fd, const char *p, size_t n);

const char *ctl_socket_path(Ctl *c);

/* Send {id, cmd, args} (args consumed) and wait for the answer with our id, showing progress
 * events on the way. Returns an exit code; on EXIT_OK *ret_result holds a reference. */
int ctl_call(Ctl *c, const char *cmd, json_object *args, json_object **ret_result);
