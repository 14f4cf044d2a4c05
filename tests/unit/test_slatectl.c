/* slatectl: human formats, option values, the reply reader's size limit, and request/answer
 * exchanges with a scripted fake slated on a real unix socket. It links libslatectl.a, the same
 * code as slatectl itself, and runs commands through their table entries. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "broker/ctl_args.h"
#include "broker/ctl_client.h"
#include "broker/ctl_cmds.h"
#include "broker/ctl_format.h"
#include "common/util.h"

/* The scripted peer's writes. */
static int send_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t r = write(fd, p, n);
                if (r < 0)
                        return -1;
                p += r;
                n -= (size_t)r;
        }
        return 0;
}

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

/* A peer that never ends its line is cut off at CONTROL_CLIENT_REPLY_MAX, not buffered without bound. */
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
                for (size_t sent = 0; sent < CONTROL_CLIENT_REPLY_MAX + sizeof chunk * 2; sent += sizeof chunk)
                        if (send_all(sv[1], chunk, sizeof chunk) < 0)
                                break;
                _exit(0);
        }
        close(sv[1]);
        _cleanup_(control_client_reader_freep) ControlClientReader k = { .fd = sv[0] };
        char *line;
        size_t n;
        cr_expect_eq(control_client_read_line(&k, &line, &n), -EMSGSIZE);
        cr_expect_leq(k.cap, (size_t)CONTROL_CLIENT_REPLY_MAX + 2);
        close(sv[0]);
        waitpid(pid, NULL, 0);
}

/* Fake slated: read one request line, check it names cmd (and, if want_args is not NULL, that
 * its args equal that JSON text), answer with the given lines. */
static pid_t fake_slated_args(const char *path, const char *cmd, const char *want_args, const char *const *lines)
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
        if (want_args) {
                _cleanup_json_ json_object *want = json_tokener_parse(want_args);
                json_object *args = NULL;
                json_object_object_get_ex(o, "args", &args);
                if (!want || !json_object_equal(want, args))
                        _exit(5);
        }
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

static pid_t fake_slated(const char *path, const char *cmd, const char *const *lines)
{
        return fake_slated_args(path, cmd, NULL, lines);
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

Test(slatectl, durations_take_seconds_or_units)
{
        static const struct { const char *s; int64_t v; } good[] = {
                { "0", 0 }, { "300", 300 }, { "45s", 45 }, { "5m", 300 }, { "1h", 3600 },
                { "1h30m", 5400 }, { "2d", 172800 }, { "1d2h3m4s", 93784 },
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                int64_t v = -1;
                cr_expect_eq(parse_duration(good[i].s, &v), 0, "%s", good[i].s);
                cr_expect_eq(v, good[i].v, "%s", good[i].s);
        }
        static const char *const bad[] = { "", "-5", "+5", "5x", "m", "1.5h", "30m1h", "1m1m", "1m30", " 5", "5 ",
                                           "99999999999" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int64_t v;
                cr_expect_lt(parse_duration(bad[i], &v), 0, "\"%s\" accepted", bad[i]);
        }
}

/* What pool list prints for a timeout can be given back to --disconnect-timeout. */
Test(slatectl, shown_timeouts_parse_back)
{
        static const int64_t cases[] = { 0, 59, 300, 5400, 86400, 93784 };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = fmt_seconds(cases[i]);
                int64_t v = -1;
                cr_expect_eq(parse_duration(s, &v), 0, "%s", s);
                cr_expect_eq(v, cases[i], "%s", s);
        }
}

Test(slatectl, principals_are_user_group_or_all)
{
        static const char *const good[] = { "all", "user:alice", "user:Alice", "user:alice.smith", "group:staff",
                                            "group:domain users" };
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                cr_expect_null(principal_check(good[i]), "%s refused", good[i]);
        static const char *const bad[] = { "alice", "ALL", "user:", "group:", "User:alice", "uid:0",
                                           "user:a:b", "user: alice", "user:al\nice", "all:",
                                           /* a user becomes a guest account: common/username's rule */
                                           "user:alice@example.com", "user:-x", "user:a b" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                cr_expect_not_null(principal_check(bad[i]), "\"%s\" accepted", bad[i]);
}

static const Command *find(const Command *table, const char *group, const char *name)
{
        for (const Command *c = table; c->name; c++)
                if ((group ? c->group && strcmp(c->group, group) == 0 : !c->group) && strcmp(c->name, name) == 0)
                        return c;
        cr_assert_fail("no command %s %s", group ? group : "", name);
        return NULL;
}

/* Run a command as slatectl's main would, against the socket at path. */
static int run(const Command *table, const char *group, const char *name, const char *path, char **argv)
{
        Ctl c = { .socket_path = path, .id = 77, .cmd = find(table, group, name) };
        int argc = 0;
        while (argv[argc])
                argc++;
        int r = c.cmd->run(&c, argc, argv);
        fflush(stdout);
        return r;
}

static void utc(void)
{
        setenv("TZ", "UTC", 1);
        tzset();
        cr_redirect_stdout();
}

Test(slatectl, audit_table_shows_local_time_to_the_second, .init = utc)
{
        static const char *const lines[] = {
                "{\"id\": %lld, \"ok\": true, \"result\": [{\"seq\": 2, \"ts\": 1700000000, \"kind\": \"logon\","
                " \"subject\": \"alice\", \"detail\": \"pool office\"}, {\"seq\": 1, \"ts\": 1699999999,"
                " \"kind\": \"logon.fail\", \"subject\": \"mallory\\u001b[2J\", \"detail\": \"\"}]}\n",
                NULL,
        };
        _cleanup_free_ char *path = sock_path();
        pid_t pid = fake_slated_args(path, "audit", "{\"limit\": 2, \"kind\": \"logon\"}", lines);
        char *argv[] = { "--limit", "2", "--kind=logon", NULL };
        cr_expect_eq(run(ctl_cmds_status, NULL, "audit", path, argv), EXIT_OK);
        int st;
        waitpid(pid, &st, 0);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fake slated exit %d", WEXITSTATUS(st));
        unlink(path);
        cr_expect_stdout_eq_str("TIME                 KIND        SUBJECT      DETAIL\n"
                                "2023-11-14 22:13:20  logon       alice        pool office\n"
                                "2023-11-14 22:13:19  logon.fail  mallory?[2J  -\n");
}

Test(slatectl, audit_limit_is_checked_before_sending)
{
        char *argv[] = { "--limit", "10001", NULL };
        cr_expect_eq(run(ctl_cmds_status, NULL, "audit", "/nonexistent/slate.sock", argv), EXIT_USAGE);
        char *argv0[] = { "--limit", "0", NULL };
        cr_expect_eq(run(ctl_cmds_status, NULL, "audit", "/nonexistent/slate.sock", argv0), EXIT_USAGE);
}

Test(slatectl, session_list_filters_and_columns, .init = utc)
{
        static const char *const lines[] = {
                "{\"id\": %lld, \"ok\": true, \"result\": [{\"id\": \"s-1\", \"user\": \"alice\", \"pool\": \"office\","
                " \"desktop\": \"d-3fa2\", \"state\": \"active\", \"client\": \"10.0.0.7\", \"since\": 1700000000,"
                " \"logon_ms\": 2140}, {\"id\": \"s-2\", \"user\": \"alice\", \"pool\": \"office\", \"desktop\":"
                " \"d-77aa\", \"state\": \"starting\", \"client\": \"10.0.0.8\", \"since\": 1700000060}]}\n",
                NULL,
        };
        _cleanup_free_ char *path = sock_path();
        pid_t pid = fake_slated_args(path, "session.list", "{\"user\": \"alice\", \"pool\": \"office\"}", lines);
        char *argv[] = { "--user", "alice", "--pool", "office", NULL };
        cr_expect_eq(run(ctl_cmds_desktop, "session", "list", path, argv), EXIT_OK);
        int st;
        waitpid(pid, &st, 0);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fake slated exit %d", WEXITSTATUS(st));
        unlink(path);
        cr_expect_stdout_eq_str("ID   USER   POOL    DESKTOP  STATE     CLIENT    SINCE             LOGON(ms)\n"
                                "s-1  alice  office  d-3fa2   active    10.0.0.7  2023-11-14 22:13  2140\n"
                                "s-2  alice  office  d-77aa   starting  10.0.0.8  2023-11-14 22:14  -\n");
}

Test(slatectl, entitle_sends_the_principal_and_shows_the_pool, .init = cr_redirect_stdout)
{
        static const char *const lines[] = {
                "{\"id\": %lld, \"ok\": true, \"result\": {\"name\": \"office\", \"image\": \"debian\", \"warm\": 2,"
                " \"max\": 4, \"memory\": 2147483648, \"vcpus\": 2, \"overlay\": \"ram\", \"disconnect_timeout\": 300,"
                " \"entitlements\": [\"group:staff\", \"user:alice\"], \"ready\": 2, \"booting\": 0,"
                " \"assigned\": 1, \"total\": 3}}\n",
                NULL,
        };
        _cleanup_free_ char *path = sock_path();
        pid_t pid = fake_slated_args(path, "pool.entitle", "{\"name\": \"office\", \"principal\": \"group:staff\"}",
                                     lines);
        char *argv[] = { "office", "group:staff", NULL };
        cr_expect_eq(run(ctl_cmds_pool, "pool", "entitle", path, argv), EXIT_OK);
        int st;
        waitpid(pid, &st, 0);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fake slated exit %d", WEXITSTATUS(st));
        unlink(path);
        cr_expect_stdout_eq_str("name:       office\n"
                                "image:      debian\n"
                                "warm:       2\n"
                                "max:        4\n"
                                "memory:     2G\n"
                                "vcpus:      2\n"
                                "overlay:    ram\n"
                                "boot:       cold (every desktop boots)\n"
                                "disconnect: session ends 5m after its client disconnects\n"
                                "entitled:   group:staff, user:alice\n"
                                "profiles:   on (each user's home is their roaming profile disk)\n"
                                "desktops:   2 ready, 0 booting, 1 assigned, 3 total\n");
}

Test(slatectl, bad_principal_is_a_usage_error_before_connecting)
{
        char *argv[] = { "office", "alice", NULL };
        cr_expect_eq(run(ctl_cmds_pool, "pool", "entitle", "/nonexistent/slate.sock", argv), EXIT_USAGE);
}

Test(slatectl, pool_set_sends_disconnect_timeout_in_seconds, .init = cr_redirect_stdout)
{
        static const char *const lines[] = {
                "{\"id\": %lld, \"ok\": true, \"result\": {\"name\": \"office\", \"disconnect_timeout\": 5400}}\n",
                NULL,
        };
        _cleanup_free_ char *path = sock_path();
        pid_t pid = fake_slated_args(path, "pool.set", "{\"name\": \"office\", \"disconnect_timeout\": 5400}", lines);
        char *argv[] = { "office", "--disconnect-timeout", "1h30m", NULL };
        cr_expect_eq(run(ctl_cmds_pool, "pool", "set", path, argv), EXIT_OK);
        int st;
        waitpid(pid, &st, 0);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fake slated exit %d", WEXITSTATUS(st));
        unlink(path);
}
