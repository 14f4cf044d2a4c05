/* slatectl desktop ... and session ...: what runs on the host now, the desktops of the pools
 * and the users' sessions on them (list, and end one early). */
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

const Command ctl_cmds_desktop[] = {
        { "desktop", "list", "[--pool POOL]",
          "\nList desktops (all pools, or one).\n\nOptions:\n"
          "  --pool POOL     only desktops of POOL\n" COMMON_OPTS,
          cmd_desktop_list },
        { "desktop", "destroy", "ID",
          "\nDestroy a desktop now: its session ends and its overlay is erased.\n\nOptions:\n" COMMON_OPTS,
          cmd_desktop_destroy },
        { "session", "list", "[--user USER] [--pool POOL]",
          "\nList sessions: who is logged on to which desktop, from where, since when, and how\n"
          "long the logon took.\n\nOptions:\n"
          "  --user USER     only sessions of USER\n"
          "  --pool POOL     only sessions in POOL\n" COMMON_OPTS,
          cmd_session_list },
        { "session", "end", "ID",
          "\nEnd a session now: the user is disconnected, the desktop is erased and the pool\n"
          "refills.\n\nOptions:\n" COMMON_OPTS,
          cmd_session_end },
        {},
};
