/* slatectl's backup commands: profile history and restore, store stats and check (the block
 * store of profile backups, docs/design.md "Block store"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker/ctl_args.h"
#include "broker/ctl_cmds.h"
#include "broker/ctl_format.h"
#include "common/cleanup.h"
#include "common/jsonx.h"
#include "common/util.h"

static void version_row(Table *t, json_object *o)
{
        table_row(t, cell(o, "version"), fmt_time_s(jsonx_int_or(o, "created", 0)), cell_bytes(o, "size"));
}

static int cmd_profile_history(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        json_object *args = json_object_new_object();
        json_object_object_add(args, "user", json_object_new_string(pos[0]));
        static const char *const hdr[] = { "VERSION", "BACKED UP", "DISK SIZE" };
        return ctl_cmd_list(c, "profile.history", args, NULL, hdr, ELEMENTSOF(hdr), version_row);
}

static void print_backed_up(json_object *o)
{
        kv("version:", cell(o, "version"));
        kv("how:", cell(o, "how"));
        kv("blocks read:", cell(o, "blocks_read"));
        kv("chunks new:", cell(o, "new_chunks"));
        kv("added:", cell_bytes(o, "bytes_added"));
        kv("took:", xasprintf("%lld ms", (long long)jsonx_int_or(o, "ms", 0)));
}

/* A command of one argument, sent as {key: ARG}, its reply shown by print. */
static int show_one(Ctl *c, int argc, char **argv, const char *cmd, const char *key, void (*print)(json_object *))
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        json_object *args = json_object_new_object();
        json_object_object_add(args, key, json_object_new_string(pos[0]));
        return ctl_cmd_show(c, cmd, args, print);
}

static int cmd_profile_backup(Ctl *c, int argc, char **argv)
{
        return show_one(c, argc, argv, "profile.backup", "user", print_backed_up);
}

static void print_restored(json_object *o)
{
        kv("version:", cell(o, "version"));
        kv("generation:", cell(o, "generation"));
        kv("size:", cell_bytes(o, "size"));
        kv("took:", xasprintf("%lld ms", (long long)jsonx_int_or(o, "ms", 0)));
}

static int cmd_profile_restore(Ctl *c, int argc, char **argv)
{
        char *pos[2] = { NULL, NULL };
        const char *from = NULL;
        const Opt opts[] = { { "--from", &from, NULL }, {} };
        PARSE_OR_RETURN(c, argc, argv, opts, pos, 1, 2);
        json_object *args = json_object_new_object();
        json_object_object_add(args, "user", json_object_new_string(pos[0]));
        if (from)
                json_object_object_add(args, "from", json_object_new_string(from));
        if (pos[1]) {
                unsigned v;
                if (parse_uint(pos[1], 99999999, &v) < 0 || v == 0) {
                        json_object_put(args);
                        return usage_error(c, "VERSION: a version number from profile history, got \"%s\"", pos[1]);
                }
                json_object_object_add(args, "version", json_object_new_int((int)v));
        }
        return ctl_cmd_show(c, "profile.restore", args, print_restored);
}

static void print_stats(json_object *o)
{
        kv("users:", cell(o, "users"));
        kv("versions:", cell(o, "versions"));
        kv("chunks:", cell(o, "chunks"));
        kv("pack files:", cell(o, "packs"));
        kv("stored:", cell_bytes(o, "stored_bytes"));
}

static int cmd_store_stats(Ctl *c, int argc, char **argv)
{
        PARSE_OR_RETURN(c, argc, argv, NULL, NULL, 0, 0);
        return ctl_cmd_show(c, "store.stats", json_object_new_object(), print_stats);
}

static void print_check(json_object *o)
{
        bool ok = false, read_data = false;
        jsonx_get_bool(o, "ok", &ok);
        jsonx_get_bool(o, "read_data", &read_data);
        kv("result:", xstrdup(ok ? "clean" : "PROBLEMS FOUND"));
        kv("checked:", xasprintf("%lld versions, %lld chunks in %lld pack files%s", (long long)jsonx_int_or(o, "versions", 0),
                                 (long long)jsonx_int_or(o, "chunks", 0), (long long)jsonx_int_or(o, "packs", 0),
                                 read_data ? ", every chunk read and verified" : ""));
        const char *report;
        if (jsonx_get_string(o, "report", &report) == 0)
                fputs(report, stdout);
}

static int cmd_store_check(Ctl *c, int argc, char **argv)
{
        bool read_data = false;
        const Opt opts[] = { { "--read-data", NULL, &read_data }, {} };
        PARSE_OR_RETURN(c, argc, argv, opts, NULL, 0, 0);
        json_object *args = json_object_new_object();
        if (read_data)
                json_object_object_add(args, "read_data", json_object_new_boolean(true));
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "store.check", args, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json)
                print_json(res);
        else
                print_check(res);
        bool ok = false;
        jsonx_get_bool(res, "ok", &ok);
        return ok ? EXIT_OK : EXIT_FAILURE;
}

static void print_replicated(json_object *o)
{
        _cleanup_free_ char *bytes = cell_bytes(o, "bytes_sent");
        kv("replica:", cell(o, "dest"));
        kv("sent:", xasprintf("%lld chunks (%s), %lld versions", (long long)jsonx_int_or(o, "chunks_sent", 0), bytes,
                              (long long)jsonx_int_or(o, "versions_sent", 0)));
        kv("already there:", xasprintf("%lld chunks", (long long)jsonx_int_or(o, "chunks_present", 0)));
        kv("took:", xasprintf("%lld ms", (long long)jsonx_int_or(o, "ms", 0)));
}

static int cmd_store_replicate(Ctl *c, int argc, char **argv)
{
        return show_one(c, argc, argv, "store.replicate", "dest", print_replicated);
}

static void print_pruned(json_object *o)
{
        _cleanup_free_ char *freed = cell_bytes(o, "bytes_freed");
        kv("versions:", xasprintf("%lld kept, %lld removed", (long long)jsonx_int_or(o, "versions_kept", 0),
                                  (long long)jsonx_int_or(o, "versions_removed", 0)));
        kv("chunks removed:", cell(o, "chunks_removed"));
        kv("freed:", xstrdup(freed));
}

static int cmd_store_prune(Ctl *c, int argc, char **argv)
{
        const char *daily = NULL, *weekly = NULL;
        const Opt opts[] = { { "--keep-daily", &daily, NULL }, { "--keep-weekly", &weekly, NULL }, {} };
        PARSE_OR_RETURN(c, argc, argv, opts, NULL, 0, 0);
        json_object *args = json_object_new_object();
        if (add_uint(c, args, "keep_daily", "--keep-daily", daily) || add_uint(c, args, "keep_weekly", "--keep-weekly", weekly)) {
                json_object_put(args);
                return EXIT_USAGE;
        }
        return ctl_cmd_show(c, "store.prune", args, print_pruned);
}

const Command ctl_cmds_store[] = {
        { "profile", "history", "USER",
          "\nList the backed-up versions of USER's profile (one per logout), oldest first.\n\nOptions:\n" COMMON_OPTS,
          cmd_profile_history },
        { "profile", "backup", "USER",
          "\nBack USER's profile up now, as every logout does: a new version holding only what changed\n"
          "since the last one (the disk's dirty bitmap). Refused while USER has a session (their\n"
          "logout backs it up). Shows progress on a terminal.\n\nOptions:\n" COMMON_OPTS,
          cmd_profile_backup },
        { "profile", "restore", "USER [VERSION] [--from DIR]",
          "\nMake VERSION (default: the newest) of USER's profile their current disk, bit for bit, as\n"
          "a new generation; the disk it replaces is kept until profile prune. Refused while USER has\n"
          "a session.\n\nOptions:\n"
          "  --from DIR      restore from a replica (store replicate) instead of store-dir: disaster\n"
          "                  recovery on a new host (it needs the same host key file)\n" COMMON_OPTS,
          cmd_profile_restore },
        { "store", "stats", "",
          "\nWhat the block store of profile backups holds: users, versions, chunks, bytes on disk.\n\nOptions:\n" COMMON_OPTS,
          cmd_store_stats },
        { "store", "check", "[--read-data]",
          "\nCheck the block store: every version file's MAC, and that every chunk a version names is\n"
          "there; with --read-data, read every chunk and verify it against its id. Lists the damaged\n"
          "versions. Exits 1 when it found a problem.\n\nOptions:\n"
          "  --read-data     read and verify every chunk (slow: reads the whole store)\n" COMMON_OPTS,
          cmd_store_check },
        { "store", "replicate", "DIR | HOST:/DIR",
          "\nCopy to the store at DIR (a replica; made when missing) every pack of chunks it lacks,\n"
          "then every version it lacks. Run it again to bring the replica up to date: it sends only\n"
          "what is missing, also after an interrupted run. The replica opens with the same host key;\n"
          "a DIR holding another store is refused. HOST:/DIR puts the replica on another host with\n"
          "the system's sftp (slate.conf: sftp, replica-ssh-config); that host needs only sshd.\n\nOptions:\n"
          COMMON_OPTS,
          cmd_store_replicate },
        { "store", "prune", "[--keep-daily N] [--keep-weekly N]",
          "\nRemove old profile versions: per user the newest is always kept, and the newest of each of\n"
          "the last N days (default 7) and weeks (default 4); then the chunks no kept version needs.\n"
          "Safe to interrupt: a crash leaves at worst garbage the next prune removes. Refused while\n"
          "backups, restores or replications run (and they wait for it).\n\nOptions:\n"
          "  --keep-daily N  days to keep a version of (default 7)\n"
          "  --keep-weekly N weeks to keep a version of (default 4)\n" COMMON_OPTS,
          cmd_store_prune },
        {},
};
