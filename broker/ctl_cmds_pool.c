/* slatectl pool ...: desktop pools, their settings and who may use them (create, list, show,
 * set, entitle, unentitle, delete). Option values are checked here before anything is sent. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker/ctl_cmds.h"
#include "broker/ctl_format.h"
#include "common/util.h"

static char *disconnect_text(json_object *p)
{
        int64_t s;
        if (jsonx_get_int64(p, "disconnect_timeout", &s) < 0 || s < 0)
                return cell(p, "disconnect_timeout");
        if (s == 0)
                return xstrdup("session ends at once");
        _cleanup_free_ char *d = fmt_seconds(s);
        return xasprintf("session ends %s after its client disconnects", d);
}

static void print_pool(json_object *p)
{
        kv("name:", cell(p, "name"));
        kv("image:", cell(p, "image"));
        kv("warm:", cell(p, "warm"));
        kv("max:", cell(p, "max"));
        kv("memory:", cell_bytes(p, "memory"));
        kv("vcpus:", cell(p, "vcpus"));
        kv("overlay:", cell(p, "overlay"));
        kv("boot:", xstrdup(strcmp(jsonx_string_or(p, "boot", "cold"), "clone") == 0
                                    ? "clone (instant clones of a template; cold while there is none)"
                                    : "cold (every desktop boots)"));
        kv("disconnect:", disconnect_text(p));
        int64_t usable;
        if (jsonx_get_int64(p, "usable_timeout", &usable) == 0 && usable > 0) {
                _cleanup_free_ char *d = fmt_seconds(usable);
                kv("usable:", xasprintf("a logon waits at most %s for the desktop to be usable", d));
        }
        kv("entitled:", cell_list(p, "entitlements", ", ", "nobody"));
        bool profiles = true;
        jsonx_get_bool(p, "profiles", &profiles);
        kv("profiles:", xstrdup(profiles ? "on (each user's home is their roaming profile disk)"
                                         : "off (home is erased with the desktop)"));
        int64_t psize;
        if (jsonx_get_int64(p, "profile_size", &psize) == 0 && profiles)
                kv("profile size:", xasprintf("%lld MiB for a new disk", (long long)(psize >> 20)));
        _cleanup_free_ char *policy = cell(p, "layer_policy");
        if (strcmp(policy, "refuse") == 0)
                kv("layers:", xstrdup("made for an older image version: not attached"));
        _cleanup_free_ char *ready = cell(p, "ready"), *booting = cell(p, "booting"),
                            *assigned = cell(p, "assigned"), *total = cell(p, "total");
        kv("desktops:", xasprintf("%s ready, %s booting, %s assigned, %s total", ready, booting, assigned, total));
        bool deleting = false;
        if (jsonx_get_bool(p, "deleting", &deleting) == 0 && deleting)
                kv("state:", xstrdup("being deleted"));
}

/* Call cmd, which answers with the pool, and print it. */
static int pool_call(Ctl *c, const char *cmd, json_object *args)
{
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, cmd, args, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json)
                print_json(res);
        else
                print_pool(res);
        return EXIT_OK;
}

typedef struct PoolOpts {
        const char *image, *warm, *max, *memory, *vcpus, *overlay, *disconnect_timeout, *idle_timeout, *max_age, *profiles, *layer_policy, *profile_size,
                *usable_timeout;
        bool clone, boot;
} PoolOpts;

static int pool_opts_to_args(Ctl *c, json_object *args, const PoolOpts *o)
{
        if (o->image)
                json_object_object_add(args, "image", json_object_new_string(o->image));
        if (add_uint(c, args, "warm", "--warm", o->warm) || add_uint(c, args, "max", "--max", o->max) ||
            add_size(c, args, "memory", "--memory", o->memory) || add_uint(c, args, "vcpus", "--vcpus", o->vcpus) ||
            add_overlay(c, args, o->overlay) ||
            add_duration(c, args, "disconnect_timeout", "--disconnect-timeout", o->disconnect_timeout) ||
            add_duration(c, args, "idle_timeout", "--idle-timeout", o->idle_timeout) ||
            add_duration(c, args, "max_age", "--max-age", o->max_age) ||
            add_duration(c, args, "usable_timeout", "--usable-timeout", o->usable_timeout) ||
            add_size(c, args, "profile_size", "--profile-size", o->profile_size))
                return EXIT_USAGE;
        if (o->profiles) {
                bool on = strcmp(o->profiles, "on") == 0;
                if (!on && strcmp(o->profiles, "off") != 0)
                        return usage_error(c, "--profiles: expected on or off, got \"%s\"", o->profiles);
                json_object_object_add(args, "profiles", json_object_new_boolean(on));
        }
        if (o->clone && o->boot)
                return usage_error(c, "--clone and --boot exclude each other");
        if (o->clone || o->boot)
                json_object_object_add(args, "clone", json_object_new_boolean(o->clone));
        if (o->layer_policy) {
                if (strcmp(o->layer_policy, "warn") != 0 && strcmp(o->layer_policy, "refuse") != 0)
                        return usage_error(c, "--layer-policy: expected warn or refuse, got \"%s\"", o->layer_policy);
                json_object_object_add(args, "layer_policy", json_object_new_string(o->layer_policy));
        }
        return EXIT_OK;
}

static int pool_write_cmd(Ctl *c, int argc, char **argv, bool create)
{
        PoolOpts o = {};
        const Opt create_opts[] = {
                { "--image", &o.image, NULL },
                { "--warm", &o.warm, NULL },
                { "--max", &o.max, NULL },
                { "--memory", &o.memory, NULL },
                { "--vcpus", &o.vcpus, NULL },
                { "--overlay", &o.overlay, NULL },
                { "--disconnect-timeout", &o.disconnect_timeout, NULL },
                { "--idle-timeout", &o.idle_timeout, NULL },
                { "--max-age", &o.max_age, NULL },
                { "--usable-timeout", &o.usable_timeout, NULL },
                { "--profiles", &o.profiles, NULL },
                { "--layer-policy", &o.layer_policy, NULL },
                { "--profile-size", &o.profile_size, NULL },
                { "--clone", NULL, &o.clone },
                { "--boot", NULL, &o.boot },
                {},
        };
        char *pos[1];
        /* pool set takes every option but --image, the first */
        PARSE_OR_RETURN(c, argc, argv, create ? create_opts : create_opts + 1, pos, 1, 1);
        if (create && (!o.image || !o.warm))
                return usage_error(c, "--image and --warm are required");
        if (!create && !o.warm && !o.max && !o.memory && !o.vcpus && !o.overlay && !o.disconnect_timeout &&
            !o.idle_timeout && !o.max_age && !o.profiles && !o.layer_policy && !o.profile_size &&
            !o.usable_timeout && !o.clone && !o.boot)
                return usage_error(c, "nothing to change");

        _cleanup_json_ json_object *args = args_name(pos[0]);
        if (pool_opts_to_args(c, args, &o) != EXIT_OK)
                return EXIT_USAGE;
        return pool_call(c, create ? "pool.create" : "pool.set", json_object_get(args));
}

static int cmd_pool_create(Ctl *c, int argc, char **argv) { return pool_write_cmd(c, argc, argv, true); }
static int cmd_pool_set(Ctl *c, int argc, char **argv) { return pool_write_cmd(c, argc, argv, false); }

static void pool_row(Table *t, json_object *p)
{
        table_row(t, cell(p, "name"), cell(p, "image"), cell(p, "warm"), cell(p, "max"), cell_bytes(p, "memory"),
                  cell(p, "vcpus"), cell(p, "overlay"), cell(p, "ready"), cell(p, "booting"), cell(p, "assigned"),
                  cell(p, "total"), cell_seconds(p, "disconnect_timeout"), cell_list(p, "entitlements", ",", "nobody"));
}

static int cmd_pool_list(Ctl *c, int argc, char **argv)
{
        PARSE_OR_RETURN(c, argc, argv, NULL, NULL, 0, 0);
        /* ENTITLED last: it is the one column of unbounded width */
        static const char *const hdr[] = { "NAME",  "IMAGE",   "WARM",     "MAX",   "MEMORY",     "VCPUS",   "OVERLAY",
                                           "READY", "BOOTING", "ASSIGNED", "TOTAL", "DISCONNECT", "ENTITLED" };
        return ctl_cmd_list(c, "pool.list", NULL, NULL, hdr, ELEMENTSOF(hdr), pool_row);
}

static int cmd_pool_show(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "pool.list", NULL, &res);
        if (r != EXIT_OK)
                return r;
        size_t n = json_object_is_type(res, json_type_array) ? json_object_array_length(res) : 0;
        for (size_t j = 0; j < n; j++) {
                json_object *p = json_object_array_get_idx(res, j);
                if (strcmp(jsonx_string_or(p, "name", ""), pos[0]) != 0)
                        continue;
                if (c->json)
                        print_json(p);
                else
                        print_pool(p);
                return EXIT_OK;
        }
        _cleanup_free_ char *name = sanitize(pos[0]);
        errorf("pool %s: no such pool", name);
        return EXIT_FAIL;
}

static int entitle_cmd(Ctl *c, int argc, char **argv, const char *api)
{
        char *pos[2];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 2, 2);
        const char *why = principal_check(pos[1]);
        if (why) {
                _cleanup_free_ char *p = sanitize(pos[1]);
                return usage_error(c, "principal \"%s\": %s", p, why);
        }
        json_object *args = args_name(pos[0]);
        json_object_object_add(args, "principal", json_object_new_string(pos[1]));
        return pool_call(c, api, args);
}

static int cmd_pool_entitle(Ctl *c, int argc, char **argv) { return entitle_cmd(c, argc, argv, "pool.entitle"); }
static int cmd_pool_unentitle(Ctl *c, int argc, char **argv) { return entitle_cmd(c, argc, argv, "pool.unentitle"); }

static int cmd_pool_delete(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        return ctl_cmd_done(c, "pool.delete", args_name(pos[0]), "pool", pos[0],
                            "deleted; its desktops are being destroyed");
}

#define PRINCIPAL_HELP \
        "PRINCIPAL is user:NAME (one user), group:NAME (the members of a group) or all\n" \
        "(every user). A pool nobody is entitled to gives no desktops.\n"

const Command ctl_cmds_pool[] = {
        { "pool", "create",
          "NAME --image IMAGE --warm N [--max N] [--memory SIZE] [--vcpus N] [--overlay MODE] "
          "[--disconnect-timeout TIME] [--idle-timeout TIME] [--max-age TIME] [--usable-timeout TIME] [--profiles on|off] [--layer-policy warn|refuse] [--profile-size SIZE] [--clone|--boot]",
          "\nCreate a desktop pool booting the current version of IMAGE.\n\n"
          "Options:\n"
          "  --image IMAGE   golden image\n"
          "  --warm N        desktops kept booted and idle\n"
          "  --max N         most desktops in the pool\n"
          "  --memory SIZE   memory per desktop: bytes or with a suffix K, M, G (512M, 2G)\n"
          "  --vcpus N       virtual CPUs per desktop\n"
          "  --overlay MODE  overlay of each desktop: encrypted, ram, or plain (debugging only)\n"
          "  --disconnect-timeout TIME\n"
          "                  how long a session outlives its client's disconnection before it\n"
          "                  ends and its desktop is erased: seconds, or with units s, m, h, d\n"
          "                  (300, 5m, 1h30m); 0 ends it at once\n"
          "  --idle-timeout TIME\n"
          "                  end a session after this long without keyboard or pointer input\n"
          "                  (same units); 0, the default, never\n"
          "  --max-age TIME  replace idle desktops older than this (the nightly re-image);\n"
          "                  desktops in use are replaced when their session ends; 0 = never\n"
          "  --usable-timeout TIME\n"
          "                  how long a logon waits for the desktop to say it is usable (its\n"
          "                  panel drawn) before the user is told it failed, the session ends\n"
          "                  and the desktop is erased (same units; default 3m)\n"
          "  --profiles on|off\n"
          "                  on (default): each user's home is their roaming profile disk, kept\n"
          "                  across logons; off: home is erased with the desktop (kiosks)\n"
          "  --layer-policy warn|refuse\n"
          "                  an app layer made for an older version of the image: attached with\n"
          "                  an audit warning (default) or not attached\n"
          "  --profile-size SIZE\n"
          "                  size of a user's profile disk made at a first logon in this pool\n"
          "                  (2G); a user's profile quota wins; 0: the profile-size setting\n"
          "  --clone         desktops are instant clones of a template of the image version\n"
          "                  (booted once, saved, resumed per desktop with a new identity); a\n"
          "                  desktop boots cold while there is no usable template (default:\n"
          "                  the pool-clone setting, on)\n"
          "  --boot          every desktop boots cold\n" COMMON_OPTS,
          cmd_pool_create },
        { "pool", "list", "",
          "\nList pools with their settings, desktop counts, disconnect timeout and who is\n"
          "entitled to them.\n\nOptions:\n" COMMON_OPTS,
          cmd_pool_list },
        { "pool", "show", "NAME", "\nShow one pool, with its entitlements.\n\nOptions:\n" COMMON_OPTS, cmd_pool_show },
        { "pool", "set",
          "NAME [--warm N] [--max N] [--memory SIZE] [--vcpus N] [--overlay MODE] [--disconnect-timeout TIME]"
          " [--idle-timeout TIME] [--max-age TIME] [--usable-timeout TIME] [--profiles on|off] [--layer-policy warn|refuse] [--profile-size SIZE] [--clone|--boot]",
          "\nChange a pool's settings; new desktops get them, running ones keep theirs.\n\n"
          "Options: as for pool create, plus:\n" COMMON_OPTS,
          cmd_pool_set },
        { "pool", "entitle", "NAME PRINCIPAL",
          "\nAllow PRINCIPAL to get a desktop from pool NAME.\n" PRINCIPAL_HELP "\nOptions:\n" COMMON_OPTS,
          cmd_pool_entitle },
        { "pool", "unentitle", "NAME PRINCIPAL",
          "\nWithdraw an entitlement given with pool entitle.\n" PRINCIPAL_HELP
          "\nOptions:\n" COMMON_OPTS,
          cmd_pool_unentitle },
        { "pool", "delete", "NAME", "\nDelete a pool; its desktops are destroyed.\n\nOptions:\n" COMMON_OPTS,
          cmd_pool_delete },
        {},
};
