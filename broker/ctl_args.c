/* slatectl's argument parsing: options anywhere, "--" ends them, usage errors name the command
 * and exit 2; and the checks of option values made before anything is sent to slated. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include "broker/ctl_args.h"
#include "common/username.h"
#include "common/util.h"

void usage_line(const Command *cmd, FILE *f)
{
        if (cmd->group)
                fprintf(f, "usage: slatectl %s %s%s%s\n", cmd->group, cmd->name, *cmd->synopsis ? " " : "",
                        cmd->synopsis);
        else
                fprintf(f, "usage: slatectl %s%s%s\n", cmd->name, *cmd->synopsis ? " " : "", cmd->synopsis);
}

int usage_error(Ctl *c, const char *fmt, ...)
{
        va_list ap;
        if (c->cmd->group)
                fprintf(stderr, "slatectl: %s %s: ", c->cmd->group, c->cmd->name);
        else
                fprintf(stderr, "slatectl: %s: ", c->cmd->name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        usage_line(c->cmd, stderr);
        return EXIT_USAGE;
}

int args_parse(Ctl *c, int argc, char **argv, const Opt *opts, char **pos, int npos_min, int npos_max)
{
        int npos = 0;
        bool dashdash = false;
        for (int i = 0; i < argc; i++) {
                char *a = argv[i];
                if (dashdash || a[0] != '-' || a[1] == 0) {
                        if (npos == npos_max) {
                                usage_error(c, "unexpected argument \"%s\"", a);
                                return PARSE_USAGE;
                        }
                        pos[npos++] = a;
                        continue;
                }
                if (strcmp(a, "--") == 0) {
                        dashdash = true;
                        continue;
                }
                if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        usage_line(c->cmd, stdout);
                        fputs(c->cmd->help, stdout);
                        return PARSE_HELP;
                }
                if (strcmp(a, "--json") == 0) {
                        c->json = true;
                        continue;
                }
                char *eq = strchr(a, '=');
                size_t nl = eq ? (size_t)(eq - a) : strlen(a);
                const char **dest = NULL;
                bool *flag = NULL, known = false;
                if (nl == 8 && strncmp(a, "--socket", 8) == 0) {
                        dest = &c->socket_path;
                        known = true;
                }
                for (const Opt *o = opts; o && o->name && !known; o++)
                        if (strlen(o->name) == nl && strncmp(a, o->name, nl) == 0) {
                                dest = o->value;
                                flag = o->flag;
                                known = true;
                        }
                if (!known) {
                        usage_error(c, "unknown option %.*s", (int)nl, a);
                        return PARSE_USAGE;
                }
                if (flag) {
                        if (eq) {
                                usage_error(c, "option %.*s takes no value", (int)nl, a);
                                return PARSE_USAGE;
                        }
                        *flag = true;
                        continue;
                }
                if (eq)
                        *dest = eq + 1;
                else if (i + 1 < argc)
                        *dest = argv[++i];
                else {
                        usage_error(c, "option %s needs a value", a);
                        return PARSE_USAGE;
                }
        }
        if (npos < npos_min) {
                usage_error(c, "missing argument");
                return PARSE_USAGE;
        }
        return PARSE_OK;
}

int add_uint(Ctl *c, json_object *args, const char *key, const char *opt, const char *val)
{
        unsigned v;
        if (!val)
                return 0;
        if (parse_uint(val, INT_MAX, &v) < 0)
                return usage_error(c, "%s: expected a number, got \"%s\"", opt, val);
        json_object_object_add(args, key, json_object_new_int64(v));
        return 0;
}

int add_size(Ctl *c, json_object *args, const char *key, const char *opt, const char *val)
{
        uint64_t v;
        if (!val)
                return 0;
        if (parse_size(val, &v) < 0 || v > INT64_MAX)
                return usage_error(c, "%s: expected a size such as 512M or 2G, got \"%s\"", opt, val);
        json_object_object_add(args, key, json_object_new_int64((int64_t)v));
        return 0;
}

int parse_duration(const char *s, int64_t *ret)
{
        static const char order[] = "dhms";
        int64_t total = 0;
        const char *p = s;
        char last = 0;
        if (!*s)
                return -EINVAL;
        while (*p) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                int64_t v = 0;
                while (*p >= '0' && *p <= '9') {
                        v = v * 10 + (*p++ - '0');
                        if (v > INT32_MAX)
                                return -ERANGE;
                }
                int64_t unit;
                switch (*p) {
                case 0:
                        /* a bare number is seconds, and only alone: "1m30" is refused, not guessed */
                        if (last)
                                return -EINVAL;
                        unit = 1;
                        break;
                case 's': unit = 1; break;
                case 'm': unit = 60; break;
                case 'h': unit = 3600; break;
                case 'd': unit = 86400; break;
                default:
                        return -EINVAL;
                }
                /* units in decreasing order, each once: "1h30m", not "30m1h" or "1m1m" */
                if (*p) {
                        if (last && strchr(order, last) >= strchr(order, *p))
                                return -EINVAL;
                        last = *p++;
                }
                total += v * unit;
                if (total > INT32_MAX)
                        return -ERANGE;
        }
        *ret = total;
        return 0;
}

const char *principal_check(const char *s)
{
        if (strcmp(s, "all") == 0)
                return NULL;
        const char *name;
        /* A user gets a guest account of that name: slated checks the same rule. */
        if (strncmp(s, "user:", 5) == 0)
                return user_name_valid(s + 5) ? NULL : USER_NAME_RULE;
        if (strncmp(s, "group:", 6) == 0)
                name = s + 6;
        else
                return "expected user:NAME, group:NAME or all";
        size_t n = strlen(name);
        if (n == 0)
                return "the name after the colon is empty";
        if (n > 256)
                return "the name is longer than 256 bytes";
        if (isspace((unsigned char)name[0]) || isspace((unsigned char)name[n - 1]))
                return "the name starts or ends with a space";
        for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
                if (*p < 0x20 || *p == 0x7f)
                        return "the name contains a control character";
                if (*p == ':')
                        return "the name contains a colon";
        }
        return NULL;
}

int add_duration(Ctl *c, json_object *args, const char *key, const char *opt, const char *val)
{
        int64_t v;
        if (!val)
                return 0;
        if (parse_duration(val, &v) < 0)
                return usage_error(c, "%s: expected seconds or a duration such as 300, 5m or 1h30m, got \"%s\"",
                                   opt, val);
        json_object_object_add(args, key, json_object_new_int64(v));
        return 0;
}

int add_overlay(Ctl *c, json_object *args, const char *val)
{
        if (!val)
                return 0;
        if (strcmp(val, "encrypted") && strcmp(val, "ram") && strcmp(val, "plain"))
                return usage_error(c, "--overlay: expected encrypted, ram or plain, got \"%s\"", val);
        json_object_object_add(args, "overlay", json_object_new_string(val));
        return 0;
}

int parse_version(Ctl *c, const char *s, json_object *args)
{
        unsigned v;
        if ((s[0] == 'v' || s[0] == 'V') && s[1])
                s++;
        if (parse_uint(s, INT_MAX, &v) < 0 || v == 0)
                return usage_error(c, "expected a version number such as 3 or v3, got \"%s\"", s);
        json_object_object_add(args, "version", json_object_new_int64(v));
        return 0;
}

json_object *args_name(const char *name)
{
        json_object *a = json_object_new_object();
        json_object_object_add(a, "name", json_object_new_string(name));
        return a;
}
