/* slatectl: human formats, the reply reader's size limit, and one request/answer exchange with a
 * scripted fake slated on a real unix socket. slatectl.c is compiled in with its main renamed,
 * so its static helpers are tested as they are, not copies of them. */
#define main slatectl_main
#include "broker/slatectl.c"
#undef main

#include <criterion/criterion.h>
#include <signal.h>
#include <sys/wait.h>

Test(slatectl, sizes_read_like_ls_h)
{
        static const struct { uint64_t v; const char *s; } cases[] = {
                { 0, "0B" },          { 1000, "1000B" },    { 2411724, "2.3M" },
                { 512ull << 20, "512M" }, { 2ull << 30, "2G" }, { 1288490188, "1.2G" },
                { 23ull << 20, "23M" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = fmt_bytes(cases[i].v);
                cr_expect_str_eq(s, cases[i].s, "%" PRIu64 " bytes", cases[i].v);
        }
}

Test(slatectl, ages_use_one_unit)
{
        static const struct { int64_t v; const char *s; } cases[] = {
                { 12, "12s" }, { 320, "5m" }, { 3 * 3600 + 5, "3h" }, { 3 * 86400, "3d" }, { -4, "0s" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = fmt_age(cases[i].v);
                cr_expect_str_eq(s, cases[i].s);
        }
}

Test(slatectl, reply_text_cannot_drive_the_terminal)
{
        _cleanup_free_ char *s = sanitize("ok\033[31mred\n");
        cr_expect_str_eq(s, "ok?[31mred?");
}

/* A peer that never ends its line is cut off at RESPONSE_MAX, not buffered without bound. */
Test(slatectl, endless_reply_line_is_refused)
{
        int sv[2];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                close(sv[0]);
                static char chunk[65536];
                memset(chunk, 'x', sizeof chunk);
                for (size_t sent = 0; sent < RESPONSE_MAX + sizeof chunk * 2; sent += sizeof chunk)
                        if (send_all(sv[1], chunk, sizeof chunk) < 0)
                                break;
                _exit(0);
        }
        close(sv[1]);
        _cleanup_(conn_freep) Conn k = { .fd = sv[0] };
        char *line;
        size_t n;
        cr_expect_eq(conn_read_line(&k, &line, &n), -EMSGSIZE);
        cr_expect_leq(k.cap, (size_t)RESPONSE_MAX + 2);
        close(sv[0]);
        waitpid(pid, NULL, 0);
}

/* Fake slated: read one request line, check it names cmd, answer with the given lines. */
static pid_t fake_slated(const char *path, const char *cmd, const char *const *lines)
{
        int ls = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        unlink(path);
        cr_assert_eq(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
        cr_assert_eq(listen(ls, 1), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid > 0) {
                close(ls);
                return pid;
        }
        int fd = accept(ls, NULL, NULL);
        char req[4096];
        size_t len = 0;
        while (len < sizeof req - 1 && !memchr(req, '\n', len)) {
                ssize_t r = read(fd, req + len, sizeof req - 1 - len);
                if (r <= 0)
                        _exit(2);
                len += (size_t)r;
        }
        req[len] = 0;
        _cleanup_json_ json_object *o = json_tokener_parse(req);
        if (!o || strcmp(jsonx_string_or(o, "cmd", ""), cmd) != 0)
                _exit(3);
        int64_t id = jsonx_int_or(o, "id", -1);
        for (size_t i = 0; lines[i]; i++) {
                /* "%lld" in a scripted line stands for the request's id */
                const char *at = strstr(lines[i], "%lld");
                _cleanup_free_ char *l = at ? xasprintf("%.*s%lld%s", (int)(at - lines[i]), lines[i], (long long)id,
                                                        at + 4)
                                            : xstrdup(lines[i]);
                if (send_all(fd, l, strlen(l)) < 0)
                        _exit(4);
        }
        close(fd);
        _exit(0);
}

static char *sock_path(void)
{
        return xasprintf("/tmp/test_slatectl.%d.sock", (int)getpid());
}

Test(slatectl, answer_is_matched_by_id_past_others_and_progress)
{
        static const char *const lines[] = {
                "{\"id\": 999999999, \"ok\": true, \"result\": \"not ours\"}\n",
                "{\"id\": %lld, \"event\": \"progress\", \"step\": \"convert\", \"percent\": 50}\n",
                "{\"id\": %lld, \"ok\": true, \"result\": {\"pools\": 2}}\n",
                NULL,
        };
        _cleanup_free_ char *path = sock_path();
        pid_t pid = fake_slated(path, "status", lines);
        Ctl c = { .socket_path = path, .id = 4242 };
        _cleanup_json_ json_object *res = NULL;
        cr_assert_eq(ctl_call(&c, "status", NULL, &res), EXIT_OK);
        cr_expect_eq(jsonx_int_or(res, "pools", -1), 2);
        int st;
        waitpid(pid, &st, 0);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        unlink(path);
}

Test(slatectl, refusal_exits_1)
{
        static const char *const lines[] = {
                "{\"id\": %lld, \"ok\": false, \"error\": \"pool x: no such pool\", \"errno\": \"ENOENT\"}\n",
                NULL,
        };
        _cleanup_free_ char *path = sock_path();
        pid_t pid = fake_slated(path, "pool.delete", lines);
        Ctl c = { .socket_path = path, .id = 7 };
        _cleanup_json_ json_object *res = NULL;
        cr_expect_eq(ctl_call(&c, "pool.delete", args_name("x"), &res), EXIT_FAIL);
        cr_expect_null(res);
        waitpid(pid, NULL, 0);
        unlink(path);
}

Test(slatectl, hang_up_without_answer_exits_2)
{
        static const char *const lines[] = {
                "{\"id\": %lld, \"event\": \"progress\", \"step\": \"convert\", \"percent\": 10}\n",
                NULL,
        };
        _cleanup_free_ char *path = sock_path();
        pid_t pid = fake_slated(path, "image.list", lines);
        Ctl c = { .socket_path = path, .id = 8 };
        _cleanup_json_ json_object *res = NULL;
        cr_expect_eq(ctl_call(&c, "image.list", NULL, &res), EXIT_USAGE);
        waitpid(pid, NULL, 0);
        unlink(path);
}

Test(slatectl, no_slated_exits_2)
{
        Ctl c = { .socket_path = "/nonexistent/slate/control.sock", .id = 9 };
        _cleanup_json_ json_object *res = NULL;
        cr_expect_eq(ctl_call(&c, "status", NULL, &res), EXIT_USAGE);
}
