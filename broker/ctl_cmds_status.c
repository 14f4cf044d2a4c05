/* slatectl status and audit: slated as a whole, its state now and its audit log of what
 * happened. Read-only: nothing here changes slated. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include "broker/ctl_cmds.h"
#include "broker/ctl_format.h"
#include "common/util.h"

/* the most entries slated returns for one audit request (docs/control-api.md) */
#define AUDIT_LIMIT_MAX 10000

static int cmd_status(Ctl *c, int argc, char **argv)
{
        PARSE_OR_RETURN(c, argc, argv, NULL, NULL, 0, 0);
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "status", NULL, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json) {
                print_json(res);
                return EXIT_OK;
        }
        kv("version:", cell(res, "version"));
        const char *reason = jsonx_string_or(res, "accel_reason", NULL);
        if (reason && *reason) {
                _cleanup_free_ char *a = cell(res, "accel"), *why = sanitize(reason);
                kv("accel:", xasprintf("%s (%s)", a, why));
        } else
                kv("accel:", cell(res, "accel"));
        int64_t up;
        kv("uptime:", jsonx_get_int64(res, "uptime_s", &up) == 0 ? fmt_duration(up) : cell(res, "uptime_s"));
        kv("pools:", cell(res, "pools"));
        kv("desktops:", cell(res, "desktops"));
        return EXIT_OK;
}

/* ts is unix seconds; a fractional or textual one is shown as well as it can be, not dropped. */
static char *audit_time(json_object *e)
{
        json_object *v;
        if (!json_object_object_get_ex(e, "ts", &v) || !v)
                return xstrdup("-");
        if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
                return fmt_time_s((int64_t)json_object_get_double(v));
        return cell(e, "ts");
}

static void audit_row(Table *t, json_object *e)
{
        table_row(t, audit_time(e), cell(e, "kind"), cell(e, "subject"), cell(e, "detail"));
}

static int cmd_audit(Ctl *c, int argc, char **argv)
{
        const char *limit = NULL, *kind = NULL;
        const Opt opts[] = { { "--limit", &limit, NULL }, { "--kind", &kind, NULL }, {} };
        PARSE_OR_RETURN(c, argc, argv, opts, NULL, 0, 0);
        json_object *args = json_object_new_object();
        unsigned n;
        if (limit && (parse_uint(limit, AUDIT_LIMIT_MAX, &n) < 0 || n == 0)) {
                json_object_put(args);
                return usage_error(c, "--limit: expected a number from 1 to %d, got \"%s\"", AUDIT_LIMIT_MAX, limit);
        }
        if (limit)
                json_object_object_add(args, "limit", json_object_new_int64(n));
        if (kind)
                json_object_object_add(args, "kind", json_object_new_string(kind));
        static const char *const hdr[] = { "TIME", "KIND", "SUBJECT", "DETAIL" };
        return ctl_cmd_list(c, "audit", args, NULL, hdr, ELEMENTSOF(hdr), audit_row);
}

const Command ctl_cmds_status[] = {
        { NULL, "status", "",
          "\nShow slated's version, accelerator (kvm or tcg, and why), uptime and counts.\n\n"
          "Options:\n" COMMON_OPTS,
          cmd_status },
        { NULL, "audit", "[--limit N] [--kind PREFIX]",
          "\nShow slated's audit log, newest first; TIME is local time.\n\nOptions:\n"
          "  --limit N       show the N newest entries (default 50, at most 10000)\n"
          "  --kind PREFIX   only entries whose kind starts with PREFIX (logon, pool.)\n" COMMON_OPTS,
          cmd_audit },
        {},
};
