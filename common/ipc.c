/* slated ⇄ slate-session IPC codec and fd passing. The decoder is fuzzed
 * (tests/fuzz/fuzz_ipc.c); every field is read through common/reader with a size bound. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/fdpass.h"
#include "common/ipc.h"
#include "common/util.h"

void ipc_parser_init(FrameParser *p, uint32_t max)
{
        frame_parser_init(p, IPC_MAGIC, IPC_VERSION, MIN(max, IPC_FRAME_MAX));
}

/* A u32-length-prefixed blob of at most max bytes, NUL-terminated copy, no NUL inside. */
static int read_blob(Reader *r, size_t max, char **ret)
{
        uint32_t n;
        const uint8_t *p;
        if (reader_u32(r, &n) < 0 || n > max || reader_bytes(r, n, &p) < 0 || memchr(p, 0, n))
                return -EBADMSG;
        char *s = malloc((size_t)n + 1);
        if (!s)
                return -ENOMEM;
        memcpy(s, p, n);
        s[n] = 0;
        *ret = s;
        return 0;
}

static void write_blob(Writer *w, const char *s)
{
        size_t n = s ? strlen(s) : 0;
        writer_u32(w, (uint32_t)n);
        writer_bytes(w, s, n);
}

/* Strings longer than a u16 can carry go through write_blob; these are short by contract. */
static int read_str(Reader *r, char *buf, size_t max) { return reader_string(r, buf, max); }

int ipc_msg_decode(const Frame *f, IpcMsg *ret)
{
        Reader r = reader_init(f->payload, f->len);
        IpcMsg m = { .type = f->type };
        int bad = 0;
        uint8_t b;

        switch (f->type) {
        case IPC_CONFIG:
                bad = read_blob(&r, IPC_PEM_MAX, &m.config.cert_pem) < 0 ||
                      reader_u16(&r, &m.config.max_width) < 0 || reader_u16(&r, &m.config.max_height) < 0 ||
                      reader_u32(&r, &m.config.handshake_timeout_ms) < 0 ||
                      read_str(&r, m.config.banner, IPC_TEXT_MAX) < 0;
                break;
        case IPC_AUTH:
                bad = read_str(&r, m.auth.user, IPC_NAME_MAX) < 0 || read_str(&r, m.auth.domain, IPC_NAME_MAX) < 0 ||
                      read_str(&r, m.auth.password, IPC_PASSWORD_MAX) < 0 ||
                      read_str(&r, m.auth.client_host, IPC_NAME_MAX) < 0 || reader_u16(&r, &m.auth.width) < 0 ||
                      reader_u16(&r, &m.auth.height) < 0 || reader_u8(&r, &m.auth.flags) < 0 ||
                      (m.auth.flags & ~IPC_AUTH_INTERACTIVE);
                break;
        case IPC_AUTH_RESULT:
                bad = reader_u8(&r, &m.auth_result.status) < 0 || m.auth_result.status > IPC_AUTH_STATUS_LAST ||
                      read_str(&r, m.auth_result.message, IPC_TEXT_MAX) < 0;
                break;
        case IPC_ATTACH:
                bad = read_str(&r, m.attach.desktop_id, IPC_NAME_MAX) < 0 ||
                      read_str(&r, m.attach.session_id, IPC_NAME_MAX) < 0 || reader_u16(&r, &m.attach.width) < 0 ||
                      reader_u16(&r, &m.attach.height) < 0 || reader_u8(&r, &b) < 0 || b > 1;
                m.attach.reconnect = b == 1;
                break;
        case IPC_FIRST_FRAME:
                bad = reader_u32(&r, &m.first_frame.ms_since_accept) < 0 || reader_u32(&r, &m.first_frame.width) < 0 ||
                      reader_u32(&r, &m.first_frame.height) < 0;
                break;
        case IPC_END:
                bad = read_str(&r, m.end.reason, IPC_TEXT_MAX) < 0;
                break;
        case IPC_LOGOUT:
        case IPC_ACTIVITY:
        case IPC_CLIENT:
                break;
        case IPC_PHASE:
                bad = read_str(&r, m.phase.name, sizeof m.phase.name - 1) < 0 || reader_u32(&r, &m.phase.ms) < 0;
                break;
        case IPC_SIGN:
        case IPC_SIGNATURE: {
                const uint8_t *p;
                bad = reader_u8(&r, &m.sign.alg) < 0 || reader_u16(&r, &m.sign.len) < 0 || m.sign.len > IPC_SIGN_MAX ||
                      reader_bytes(&r, m.sign.len, &p) < 0;
                if (!bad)
                        memcpy(m.sign.data, p, m.sign.len);
                break;
        }
        case IPC_PROGRESS:
                bad = reader_u8(&r, &m.progress.kind) < 0 || m.progress.kind < IPC_PROGRESS_STEP ||
                      m.progress.kind > IPC_PROGRESS_KIND_LAST || reader_u8(&r, &m.progress.step) < 0 ||
                      reader_u8(&r, &m.progress.steps) < 0 || m.progress.step > m.progress.steps ||
                      read_str(&r, m.progress.title, IPC_NAME_MAX) < 0 || read_str(&r, m.progress.text, IPC_TEXT_MAX) < 0;
                break;
        case IPC_PROMPT:
                bad = reader_u8(&r, &m.prompt.style) < 0 || m.prompt.style < IPC_PROMPT_SECRET ||
                      m.prompt.style > IPC_PROMPT_STYLE_LAST || read_str(&r, m.prompt.text, IPC_TEXT_MAX) < 0;
                break;
        case IPC_PROMPT_REPLY:
                bad = read_str(&r, m.prompt_reply.text, IPC_PASSWORD_MAX) < 0;
                break;
        default:
                bad = 1;
        }
        /* Trailing bytes mean the peer speaks something else: refuse rather than guess. */
        if (bad || reader_remaining(&r) != 0) {
                ipc_msg_clear(&m);
                return -EBADMSG;
        }
        *ret = m;
        return 0;
}

int ipc_msg_encode(const IpcMsg *m, Writer *w)
{
        Writer body;
        writer_init(&body, IPC_FRAME_MAX);
        switch (m->type) {
        case IPC_CONFIG:
                write_blob(&body, m->config.cert_pem);
                writer_u16(&body, m->config.max_width);
                writer_u16(&body, m->config.max_height);
                writer_u32(&body, m->config.handshake_timeout_ms);
                writer_string(&body, m->config.banner);
                break;
        case IPC_AUTH:
                writer_string(&body, m->auth.user);
                writer_string(&body, m->auth.domain);
                writer_string(&body, m->auth.password);
                writer_string(&body, m->auth.client_host);
                writer_u16(&body, m->auth.width);
                writer_u16(&body, m->auth.height);
                writer_u8(&body, m->auth.flags);
                break;
        case IPC_AUTH_RESULT:
                writer_u8(&body, m->auth_result.status);
                writer_string(&body, m->auth_result.message);
                break;
        case IPC_ATTACH:
                writer_string(&body, m->attach.desktop_id);
                writer_string(&body, m->attach.session_id);
                writer_u16(&body, m->attach.width);
                writer_u16(&body, m->attach.height);
                writer_u8(&body, m->attach.reconnect);
                break;
        case IPC_FIRST_FRAME:
                writer_u32(&body, m->first_frame.ms_since_accept);
                writer_u32(&body, m->first_frame.width);
                writer_u32(&body, m->first_frame.height);
                break;
        case IPC_END:
                writer_string(&body, m->end.reason);
                break;
        case IPC_LOGOUT:
        case IPC_ACTIVITY:
        case IPC_CLIENT:
                break;
        case IPC_PHASE:
                writer_string(&body, m->phase.name);
                writer_u32(&body, m->phase.ms);
                break;
        case IPC_SIGN:
        case IPC_SIGNATURE:
                if (m->sign.len > IPC_SIGN_MAX) {
                        writer_free(&body);
                        return -EINVAL;
                }
                writer_u8(&body, m->sign.alg);
                writer_u16(&body, m->sign.len);
                writer_bytes(&body, m->sign.data, m->sign.len);
                break;
        case IPC_PROGRESS:
                writer_u8(&body, m->progress.kind);
                writer_u8(&body, m->progress.step);
                writer_u8(&body, m->progress.steps);
                writer_string(&body, m->progress.title);
                writer_string(&body, m->progress.text);
                break;
        case IPC_PROMPT:
                writer_u8(&body, m->prompt.style);
                writer_string(&body, m->prompt.text);
                break;
        case IPC_PROMPT_REPLY:
                writer_string(&body, m->prompt_reply.text);
                break;
        default:
                writer_free(&body);
                return -EINVAL;
        }
        int r = frame_write(w, IPC_MAGIC, IPC_VERSION, (uint8_t)m->type, &body);
        /* The body may hold a password. */
        secret_wipe(body.data, body.cap);
        writer_free(&body);
        return r;
}

void ipc_msg_clear(IpcMsg *m)
{
        if (m->type == IPC_CONFIG) {
                free(m->config.cert_pem);
                m->config.cert_pem = NULL;
        }
        if (m->type == IPC_AUTH)
                secret_wipe(m->auth.password, sizeof m->auth.password);
        if (m->type == IPC_PROMPT_REPLY)
                secret_wipe(m->prompt_reply.text, sizeof m->prompt_reply.text);
}

const char *ipc_type_name(uint8_t type)
{
        static const char *const names[] = {
                [IPC_CONFIG] = "config", [IPC_AUTH] = "auth", [IPC_AUTH_RESULT] = "auth-result",
                [IPC_ATTACH] = "attach", [IPC_FIRST_FRAME] = "first-frame", [IPC_END] = "end",
                [IPC_LOGOUT] = "logout", [IPC_PHASE] = "phase", [IPC_ACTIVITY] = "activity",
                [IPC_SIGN] = "sign", [IPC_SIGNATURE] = "signature", [IPC_PROGRESS] = "progress",
                [IPC_PROMPT] = "prompt", [IPC_PROMPT_REPLY] = "prompt-reply", [IPC_CLIENT] = "client",
        };
        return type < ELEMENTSOF(names) && names[type] ? names[type] : "unknown";
}

int ipc_send(int sock, const IpcMsg *m, int fd)
{
        Writer w;
        writer_init(&w, IPC_FRAME_MAX + FRAME_HEADER_SIZE);
        int r = ipc_msg_encode(m, &w);
        if (r < 0) {
                writer_free(&w);
                return r;
        }
        r = fdpass_send(sock, w.data, w.len, fd);
        secret_wipe(w.data, w.cap);
        writer_free(&w);
        return r;
}

ssize_t ipc_recv(int sock, uint8_t *buf, size_t len, int *ret_fd)
{
        ssize_t k = fdpass_recv(sock, buf, len, MSG_DONTWAIT, ret_fd);
        return k == -EWOULDBLOCK ? -EAGAIN : k;
}

/* Reads exactly n bytes or fails: the deadline (-1: none) covers the whole read. With ret_fd,
 * the first fd that comes with the bytes is kept there (any later one is closed). */
static int read_exact(int sock, uint8_t *buf, size_t n, int64_t deadline, int *ret_fd)
{
        size_t got = 0;
        while (got < n) {
                int64_t left = deadline - (int64_t)now_ms();
                struct pollfd p = { .fd = sock, .events = POLLIN };
                int k = poll(&p, 1, deadline < 0 ? -1 : left > 0 ? (int)left : 0);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return -ETIMEDOUT;
                ssize_t r;
                if (ret_fd) {
                        int fd;
                        r = fdpass_recv(sock, buf + got, n - got, MSG_DONTWAIT, &fd);
                        if (fd >= 0 && *ret_fd < 0)
                                *ret_fd = fd;
                        else if (fd >= 0)
                                close(fd);
                        if (r < 0) {
                                errno = (int)-r;
                                r = -1;
                        }
                } else {
                        r = recv(sock, buf + got, n - got, MSG_DONTWAIT);
                }
                if (r < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -EPIPE;
                got += (size_t)r;
        }
        return 0;
}

static int recv_one(int sock, uint32_t max, int64_t deadline, IpcMsg *ret, int *ret_fd)
{
        uint8_t hdr[FRAME_HEADER_SIZE];
        int r = read_exact(sock, hdr, sizeof hdr, deadline, ret_fd);
        if (r < 0)
                return r;
        uint32_t len = (uint32_t)hdr[4] << 24 | (uint32_t)hdr[5] << 16 | (uint32_t)hdr[6] << 8 | hdr[7];
        if (len > max)
                return -EBADMSG;
        FrameParser p;
        ipc_parser_init(&p, max);
        _cleanup_free_ uint8_t *body = xmalloc0(len + 1);
        if ((r = read_exact(sock, body, len, deadline, ret_fd)) < 0) {
                frame_parser_free(&p);
                return r;
        }
        Frame f;
        size_t used;
        r = frame_parser_feed(&p, hdr, sizeof hdr, &used, &f);
        if (r == 0)
                r = frame_parser_feed(&p, body, len, &used, &f);
        if (r == 1)
                r = ipc_msg_decode(&f, ret);
        else
                r = -EBADMSG;
        frame_parser_free(&p);
        return r;
}

int ipc_recv_one_fd(int sock, uint32_t max, int timeout_ms, IpcMsg *ret, int *ret_fd)
{
        *ret_fd = -1;
        int r = recv_one(sock, max, timeout_ms < 0 ? -1 : (int64_t)now_ms() + timeout_ms, ret, ret_fd);
        if (r < 0 && *ret_fd >= 0) {
                close(*ret_fd);
                *ret_fd = -1;
        }
        return r;
}

int ipc_recv_one(int sock, uint32_t max, int timeout_ms, IpcMsg *ret)
{
        return recv_one(sock, max, (int64_t)now_ms() + timeout_ms, ret, NULL);
}
