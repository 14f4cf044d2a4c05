/* slatectl's command table entries and their argument parsing: options anywhere, "--" ends
 * them, usage errors name the command and exit 2. The value parsers (durations, principals)
 * do no I/O so they can be tested directly. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "broker/ctl_client.h"

enum { PARSE_OK, PARSE_HELP, PARSE_USAGE };

typedef struct Command {
        const char *group;            /* "image", "pool", "desktop", "session", or NULL */
        const char *name;
        const char *synopsis;         /* arguments after "slatectl GROUP NAME" */
        const char *help;             /* description and options, shown by --help */
        int (*run)(Ctl *c, int argc, char **argv);
} Command;

/* One option of a command: a flag (value == NULL) or an option taking a value. */
typedef struct Opt {
        const char *name;             /* "--warm" */
        const char **value;
        bool *flag;
} Opt;

#define COMMON_OPTS "  --json          print the raw JSON result\n" \
                    "  --socket PATH   control socket of slated\n"

void usage_line(const Command *cmd, FILE *f);
/* Print "slatectl GROUP NAME: MESSAGE" and the usage line; returns EXIT_USAGE. */
int usage_error(Ctl *c, const char *fmt, ...) _printf_(2, 3);

/* Options may come before, between or after the positional arguments; "--" ends them.
 * --json, --socket and --help are accepted by every command. */
int args_parse(Ctl *c, int argc, char **argv, const Opt *opts, char **pos, int npos_min, int npos_max);

#define PARSE_OR_RETURN(...)                                                     \
        do {                                                                     \
                int _p = args_parse(__VA_ARGS__);                                \
                if (_p != PARSE_OK)                                              \
                        return _p == PARSE_HELP ? EXIT_OK : EXIT_USAGE;          \
        } while (0)

/* "300", "90s", "5m", "1h30m", "2d" → seconds. -EINVAL if malformed, -ERANGE past INT32_MAX. */
int parse_duration(const char *s, int64_t *ret);
/* "user:NAME", "group:NAME" or "all"; NAME non-empty, printable, without ':' or spaces at
 * either end. Returns NULL if valid, else what is wrong (a static string). */
const char *principal_check(const char *s);

/* Add an option's value to args (nothing if val is NULL); 0, or a usage error was printed. */
int add_uint(Ctl *c, json_object *args, const char *key, const char *opt, const char *val);
int add_size(Ctl *c, json_object *args, const char *key, const char *opt, const char *val);
int add_duration(Ctl *c, json_object *args, const char *key, const char *opt, const char *val);
int add_overlay(Ctl *c, json_object *args, const char *val);
/* "3" or "v3" as args.version; 0, or a usage error was printed. */
int parse_version(Ctl *c, const char *s, json_object *args);
json_object *args_name(const char *name);
