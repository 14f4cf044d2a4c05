/* Replicas over OpenSSH's sftp (sftp.h). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/spawn.h"
#include "common/util.h"
#include "streaming/sftp.h"

#define OUT_MAX (8u << 20)
#define ERR_MAX (64u << 10)

int sftp_parse(const char *dest, const char *program, const char *config, Sftp *ret)
{
        if (dest[0] == '/')
                return 0;
        const char *colon = dest[0] == '[' ? strstr(dest, "]:") : strchr(dest, ':');
        if (colon && dest[0] == '[')
                colon++;
        if (!colon || colon == dest || colon[1] != '/' || strpbrk(dest, " \t\n\"'\\"))
                return -EINVAL;
        size_t hl = (size_t)(colon - dest);
        if (dest[0] == '-' || hl > 255)
                return -EINVAL;
        *ret = (Sftp){ .program = program, .config = config, .host = xasprintf("%.*s", (int)hl, dest),
                       .path = xstrdup(colon + 1) };
        return 1;
}

void sftp_free(Sftp *s)
{
        free(s->host);
        free(s->path);
        s->host = s->path = NULL;
}

char *sftp_quote(const char *path)
{
        size_t n = strlen(path);
        char *q = xmalloc0(2 * n + 3), *p = q;
        *p++ = '"';
        for (size_t i = 0; i < n; i++) {
                if (path[i] == '"' || path[i] == '\\')
                        *p++ = '\\';
                *p++ = path[i];
        }
        *p++ = '"';
        return q;
}

/* Appends what fd has to *buf (len, capped at max: the rest is read and dropped). 0 at EOF. */
static int drain(int fd, char **buf, size_t *len, size_t max)
{
        char tmp[65536];
        ssize_t k = read(fd, tmp, sizeof tmp);
        if (k <= 0)
                return k < 0 && errno == EINTR ? 1 : 0;
        size_t take = *len + (size_t)k > max ? max - *len : (size_t)k;
        *buf = xrealloc(*buf, *len + take + 1);
        memcpy(*buf + *len, tmp, take);
        *len += take;
        (*buf)[*len] = 0;
        return 1;
}

int sftp_batch(const Sftp *s, const char *batch, char **ret_out, char **ret_error)
{
        *ret_error = NULL;
        if (ret_out)
                *ret_out = NULL;
        const char *argv[12];
        size_t a = 0;
        argv[a++] = s->program;
        if (s->config) {
                argv[a++] = "-F";
                argv[a++] = s->config;
        }
        argv[a++] = "-q";
        argv[a++] = "-o";
        argv[a++] = "BatchMode=yes";    /* never a password prompt from a daemon */
        argv[a++] = "-b";
        argv[a++] = "-";
        argv[a++] = "--";
        argv[a++] = s->host;
        argv[a] = NULL;
        SpawnOpts o = { .argv = argv, .search_path = true, .fd3 = -1, .default_signals = true,
                        .new_session = true,
                        .stdio = { SPAWN_STDIO_PIPE, SPAWN_STDIO_PIPE, SPAWN_STDIO_PIPE } };
        SpawnChild c;
        int r = spawn_start(&o, &c);
        if (r < 0) {
                *ret_error = xasprintf("%s: %s", s->program, strerror(-r));
                return r;
        }
        /* The batch is small (a line a file): written whole, then stdin closed. */
        size_t n = strlen(batch);
        for (size_t off = 0; off < n;) {
                ssize_t k = write(c.fds[0], batch + off, n - off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                off += (size_t)k;
        }
        close(c.fds[0]);
        c.fds[0] = -1;
        char *out = NULL, *err = NULL;
        size_t out_len = 0, err_len = 0;
        bool out_open = true, err_open = true;
        while (out_open || err_open) {
                struct pollfd p[2] = { { out_open ? c.fds[1] : -1, POLLIN, 0 }, { err_open ? c.fds[2] : -1, POLLIN, 0 } };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[0].revents && !drain(c.fds[1], &out, &out_len, OUT_MAX))
                        out_open = false;
                if (p[1].revents && !drain(c.fds[2], &err, &err_len, ERR_MAX))
                        err_open = false;
        }
        spawn_child_close(&c);
        int status = 0;
        r = spawn_wait(c.pid, 0, &status);
        if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                /* sftp's last line says what failed. */
                char *last = err ? err : out;
                size_t len = last ? strlen(last) : 0;
                while (len && last[len - 1] == '\n')
                        last[--len] = 0;
                char *nl = last ? strrchr(last, '\n') : NULL;
                *ret_error = xasprintf("sftp to %s failed: %s", s->host,
                                       last && last[0] ? (nl ? nl + 1 : last) : "(no message)");
                free(out);
                free(err);
                return -EIO;
        }
        free(err);
        if (ret_out)
                *ret_out = out ? out : xstrdup("");
        else
                free(out);
        return 0;
}

char **sftp_names(const char *out, unsigned section, size_t *ret_n)
{
        char **v = NULL;
        size_t n = 0;
        int at = -1;    /* the section the line is in: after how many echoed commands, less one */
        for (const char *line = out, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                size_t ll = next ? (size_t)(next - line) : strlen(line);
                next = next ? next + 1 : line + ll;
                if (strncmp(line, "sftp> ", 6) == 0) {
                        at++;
                        continue;
                }
                if (at != (int)section)
                        continue;
                while (ll && (line[ll - 1] == ' ' || line[ll - 1] == '\r'))
                        ll--;
                if (ll == 0)
                        continue;
                const char *base = line;
                for (size_t i = 0; i < ll; i++)
                        if (line[i] == '/' && i + 1 < ll)
                                base = line + i + 1;
                size_t bl = ll - (size_t)(base - line);
                if (bl && base[bl - 1] == '/')
                        bl--;
                if (bl == 0 || (bl == 1 && base[0] == '.') || (bl == 2 && base[0] == '.' && base[1] == '.'))
                        continue;
                v = xrealloc(v, sizeof *v * (n + 1));
                v[n++] = xasprintf("%.*s", (int)bl, base);
        }
        *ret_n = n;
        return v;
}
