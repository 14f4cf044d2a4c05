/* slatectl desktop ..., template ... and session ...: what runs on the host now, the desktops of
 * the pools, the templates they are cloned from, and the users' sessions on them. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker/ctl_cmds.h"
#include "broker/ctl_format.h"
#include "common/util.h"

static void desktop_row(Table *t, json_object *d)
{
        _cleanup_free_ char *img = cell(d, "image"), *ver = cell(d, "image_version");
        int64_t age, created;
        if (jsonx_get_int64(d, "age_s", &age) < 0)
                age = jsonx_get_int64(d, "created", &created) == 0 ? (int64_t)now_realtime_s() - created : -1;
        int64_t pid = jsonx_int_or(d, "pid", 0);
        table_row(t, cell(d, "id"), cell(d, "pool"), cell(d, "state"), xasprintf("%s:v%s", img, ver),
                  age >= 0 ? fmt_age(age) : xstrdup("-"), cell_bytes(d, "overlay_bytes"),
                  pid > 0 ? xasprintf("%" PRId64, pid) : xstrdup("-"));
}

static int cmd_desktop_list(Ctl *c, int argc, char **argv)
{
        const char *pool = NULL;
        const Opt opts[] = { { "--pool", &pool, NULL }, {} };
        PARSE_OR_RETURN(c, argc, argv, opts, NULL, 0, 0);
        json_object *args = json_object_new_object();
        if (pool)
                json_object_object_add(args, "pool", json_object_new_string(pool));
        static const char *const hdr[] = { "ID", "POOL", "STATE", "IMAGE", "AGE", "OVERLAY", "PID" };
        return ctl_cmd_list(c, "desktop.list", args, NULL, hdr, ELEMENTSOF(hdr), desktop_row);
}

static void template_row(Table *t, json_object *o)
{
        _cleanup_free_ char *img = cell(o, "image"), *ver = cell(o, "version");
        int64_t created = jsonx_int_or(o, "created", 0);
        table_row(t, cell(o, "name"), xasprintf("%s:v%s", img, ver), cell_bytes(o, "memory"), cell(o, "vcpus"),
                  cell(o, "state"), created > 0 ? fmt_age((int64_t)now_realtime_s() - created) : xstrdup("-"),
                  cell(o, "build_ms"), cell_bytes(o, "state_size"), cell(o, "reason"));
}

static int cmd_template_list(Ctl *c, int argc, char **argv)
{
        PARSE_OR_RETURN(c, argc, argv, NULL, NULL, 0, 0);
        static const char *const hdr[] = { "NAME", "IMAGE", "MEMORY", "VCPUS", "STATE", "AGE", "BUILD(ms)", "STATE-FILE",
                                           "REASON" };
        return ctl_cmd_list(c, "template.list", NULL, NULL, hdr, ELEMENTSOF(hdr), template_row);
}

static int cmd_template_rm(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        json_object *args = json_object_new_object();
        json_object_object_add(args, "name", json_object_new_string(pos[0]));
        return ctl_cmd_done(c, "template.rm", args, "template", pos[0],
                            "removed; running clones keep going, the next desktops boot cold until it is rebuilt");
}

static json_object *args_id(const char *id)
{
        json_object *args = json_object_new_object();
        json_object_object_add(args, "id", json_object_new_string(id));
        return args;
}

static int cmd_desktop_destroy(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        return ctl_cmd_done(c, "desktop.destroy", args_id(pos[0]), "desktop", pos[0], "destroyed");
}

static void session_row(Table *t, json_object *s)
{
        table_row(t, cell(s, "id"), cell(s, "user"), cell(s, "pool"), cell(s, "desktop"), cell(s, "state"),
                  cell(s, "client"), fmt_time(jsonx_int_or(s, "since", 0)), cell(s, "logon_ms"));
}

static int cmd_session_list(Ctl *c, int argc, char **argv)
{
        const char *user = NULL, *pool = NULL;
        const Opt opts[] = { { "--user", &user, NULL }, { "--pool", &pool, NULL }, {} };
        PARSE_OR_RETURN(c, argc, argv, opts, NULL, 0, 0);
        json_object *args = json_object_new_object();
        if (user)
                json_object_object_add(args, "user", json_object_new_string(user));
        if (pool)
                json_object_object_add(args, "pool", json_object_new_string(pool));
        static const char *const hdr[] = { "ID", "USER", "POOL", "DESKTOP", "STATE", "CLIENT", "SINCE", "LOGON(ms)" };
        return ctl_cmd_list(c, "session.list", args, NULL, hdr, ELEMENTSOF(hdr), session_row);
}

static int cmd_session_end(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        return ctl_cmd_done(c, "session.end", args_id(pos[0]), "session", pos[0],
                            "ended; its desktop is erased and the pool refills");
}

/* Every logon, reconnect and logoff of the session, one line per step. */
static void print_timeline(json_object *res)
{
        printf("session %s  user %s  pool %s  desktop %s  %s  from %s\n", jsonx_string_or(res, "id", "?"),
               jsonx_string_or(res, "user", "?"), jsonx_string_or(res, "pool", "?"),
               jsonx_string_or(res, "desktop", "-"), jsonx_string_or(res, "state", "?"),
               jsonx_string_or(res, "client", "?"));
        json_object *tl;
        if (!json_object_object_get_ex(res, "timeline", &tl) || !json_object_is_type(tl, json_type_array))
                return;
        for (size_t i = 0; i < json_object_array_length(tl); i++) {
                json_object *a = json_object_array_get_idx(tl, i), *steps;
                printf("\n#%lld %s\n", (long long)jsonx_int_or(a, "attempt", 0), jsonx_string_or(a, "kind", "?"));
                if (!json_object_object_get_ex(a, "steps", &steps))
                        continue;
                int64_t total = 0;
                for (size_t k = 0; k < json_object_array_length(steps); k++) {
                        json_object *st = json_object_array_get_idx(steps, k);
                        const char *result = jsonx_string_or(st, "result", "?");
                        int64_t ms = jsonx_int_or(st, "ms", 0);
                        if (strcmp(result, "ok") == 0) {
                                total += ms;
                                printf("  %-12s %8lld ms\n", jsonx_string_or(st, "step", "?"), (long long)ms);
                        } else {
                                printf("  %-12s %8s    %s\n", jsonx_string_or(st, "step", "?"), "-", result);
                        }
                }
                printf("  %-12s %8lld ms\n", "total", (long long)total);
        }
}

static int cmd_session_show(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "session.show", args_id(pos[0]), &res);
        if (r != EXIT_OK)
                return r;
        if (c->json)
                print_json(res);
        else
                print_timeline(res);
        return EXIT_OK;
}

const Command ctl_cmds_desktop[] = {
        { "desktop", "list", "[--pool POOL]",
          "\nList desktops (all pools, or one).\n\nOptions:\n"
          "  --pool POOL     only desktops of POOL\n" COMMON_OPTS,
          cmd_desktop_list },
        { "desktop", "destroy", "ID",
          "\nDestroy a desktop now: its session ends and its overlay is erased.\n\nOptions:\n" COMMON_OPTS,
          cmd_desktop_destroy },
        { "template", "list", "",
          "\nList the templates desktops are cloned from (pools with --clone): one per image\n"
          "version, memory size and vCPU count, with its state (building, ready, failed and\n"
          "why), age, build time and the size of its saved device state.\n\nOptions:\n" COMMON_OPTS,
          cmd_template_list },
        { "template", "rm", "NAME",
          "\nRemove a template. Clones running from it keep running; new desktops boot cold\n"
          "until the pool manager builds it again.\n\nOptions:\n" COMMON_OPTS,
          cmd_template_rm },
        { "session", "list", "[--user USER] [--pool POOL]",
          "\nList sessions: who is logged on to which desktop, from where, since when, and how\n"
          "long the logon took.\n\nOptions:\n"
          "  --user USER     only sessions of USER\n"
          "  --pool POOL     only sessions in POOL\n" COMMON_OPTS,
          cmd_session_list },
        { "session", "show", "ID",
          "\nShow a session and its timeline: every logon, reconnect and logoff with the time\n"
          "each step took (handshake, auth, pam-session, desktop, apps, profile, agent, attach,\n"
          "first-frame, usable: until the desktop said it is usable; detach, agent-stop, destroy,\n"
          "pam-close).\n\nOptions:\n" COMMON_OPTS,
          cmd_session_show },
        { "session", "end", "ID",
          "\nEnd a session now: the user is disconnected, the desktop is erased and the pool\n"
          "refills.\n\nOptions:\n" COMMON_OPTS,
          cmd_session_end },
        {},
};
