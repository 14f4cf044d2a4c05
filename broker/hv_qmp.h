/* QMP client (QEMU Machine Protocol) on libuv + json-c: greeting, capabilities, commands matched to
 * replies by id, events. QEMU is untrusted input here: every line is size-capped before buffering,
 * and a bad line ends that one connection, never the daemon. Only this file and hv_qemu.c know QEMU. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>
#include <uv.h>
#include "common/linebuf.h"

/* One QMP message is one line of JSON. The largest replies slated asks for (query-block,
 * query-named-block-nodes with a few hot-plugged disks) are tens of KiB; 1 MiB leaves ample room
 * while bounding what a misbehaving QEMU can make us buffer per connection. */
#define QMP_MESSAGE_MAX (1u << 20)

typedef struct Qmp Qmp;

/* r == 0: success, ret is the "return" value (borrowed, valid during the call).
 * r == -EIO: QEMU answered with an error; err_class/err_desc say which (borrowed).
 * r == -EPIPE: the connection ended before the reply; -ECANCELED: qmp_free() before the reply. */
typedef void (*QmpReplyCb)(Qmp *q, int r, json_object *ret, const char *err_class, const char *err_desc,
                           void *userdata);

typedef struct QmpCallbacks {
        /* Greeting read and qmp_capabilities accepted: commands now go out. */
        void (*on_ready)(Qmp *q, void *userdata);
        /* An asynchronous event; data is the "data" member or NULL (borrowed). */
        void (*on_event)(Qmp *q, const char *event, json_object *data, void *userdata);
        /* The connection ended (EOF, I/O error, protocol error): called once, after every pending
         * command got its -EPIPE reply. r: -EPIPE for EOF, else the error. Call qmp_free() after. */
        void (*on_closed)(Qmp *q, int r, void *userdata);
} QmpCallbacks;

/* The process must ignore SIGPIPE (a daemon does anyway): a write racing QEMU's exit would kill it. */

/* Over a connected stream socket fd (taken over, closed by qmp_free); name is for the log. The
 * driver connects it (hv_qemu_connect): the socket lives in a directory the VM controls. */
int qmp_open_fd(uv_loop_t *loop, int fd, const char *name, const QmpCallbacks *cb, void *userdata,
                Qmp **ret);

/* Send {"execute":cmd,"arguments":args,"id":N}. args is stolen (may be NULL). Commands issued before
 * the connection is ready are held and sent right after capabilities. cb may be NULL (result only
 * logged on error). -EPIPE if the connection has already ended (cb is not called then). */
int qmp_command(Qmp *q, const char *cmd, json_object *args, QmpReplyCb cb, void *userdata);

/* The same with fd passed along (SCM_RIGHTS), for getfd: QEMU holds it for the next command
 * that reads one. Only once ready and with nothing else waiting to be written (-EAGAIN), so the
 * fd cannot arrive with another command. fd stays the caller's. */
int qmp_command_fd(Qmp *q, const char *cmd, json_object *args, int fd, QmpReplyCb cb, void *userdata);

bool qmp_is_ready(const Qmp *q);
/* "7.2.22" from the greeting, or NULL before it arrived. */
const char *qmp_version(const Qmp *q);

/* Close (if still open) and release. Pending commands get -ECANCELED; on_closed is not called.
 * Safe from inside any Qmp callback; the memory goes once libuv has closed the socket. NULL ok. */
void qmp_free(Qmp *q);

/* ---- Parser, kept free of I/O so tests and the fuzzer drive it directly. ---- */

/* Splits a byte stream into lines (common/linebuf). A line longer than QMP_MESSAGE_MAX is refused
 * before the buffer grows past it. */
typedef struct QmpLines {
        LineBuf lb;
} QmpLines;

void qmp_lines_init(QmpLines *l);
/* Calls on_line for each complete non-empty line (without the '\n' and a '\r' before it,
 * NUL-terminated at line[len]); a non-zero return from on_line stops and is returned. -EMSGSIZE if
 * a line exceeds the cap. */
int qmp_lines_feed(QmpLines *l, const char *data, size_t n,
                   int (*on_line)(char *line, size_t len, void *userdata), void *userdata);
void qmp_lines_clear(QmpLines *l);

typedef enum QmpMsgType {
        QMP_MSG_GREETING,
        QMP_MSG_RETURN,
        QMP_MSG_ERROR,
        QMP_MSG_EVENT,
} QmpMsgType;

typedef struct QmpMsg {
        QmpMsgType type;
        json_object *obj;          /* the whole message (owned; qmp_msg_clear puts it) */
        bool has_id;
        uint64_t id;               /* our ids are unsigned integers; anything else is has_id=false */
        json_object *ret;          /* RETURN: "return" member */
        const char *err_class;     /* ERROR */
        const char *err_desc;
        const char *event;         /* EVENT */
        json_object *data;         /* EVENT: "data" member or NULL */
        char version[32];          /* GREETING: "major.minor.micro" */
} QmpMsg;

/* Classify one line. -EBADMSG for anything that is not one well-formed QMP message object. */
int qmp_msg_parse(const char *line, size_t len, QmpMsg *ret);
void qmp_msg_clear(QmpMsg *m);

