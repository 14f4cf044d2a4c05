/* slatectl: the administrator's command line, a thin client of slated's control API
 * (docs/control-api.md). One request per run over the control socket; it keeps no state
 * and never touches slated's files, so anything it can do, slate-web can do too.
 * This file is the entry point: global options, command lookup and --help. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "broker/ctl_cmds.h"
#include "common/util.h"

/* In the order --help lists them: commands without a group first. */
static const Command *const command_tables[] = { ctl_cmds_status, ctl_cmds_image, ctl_cmds_pool, ctl_cmds_desktop,
                                                       ctl_cmds_app, ctl_cmds_profile, ctl_cmds_store };

#define FOREACH_COMMAND(cmd)                                                                          \
        for (size_t _t = 0; _t < ELEMENTSOF(command_tables); _t++)                                     \
                for (const Command *cmd = command_tables[_t]; cmd->name; cmd++)

static void help_main(FILE *f)
{
        fputs("usage: slatectl [--socket PATH] [--json] COMMAND [ARGS...]\n"
              "       slatectl --help | --version\n"
              "       slatectl COMMAND --help\n\n"
              "Administer slated through its control socket.\n\nCommands:\n",
              f);
        FOREACH_COMMAND(cmd) {
                _cleanup_free_ char *s = cmd->group ? xasprintf("%s %s", cmd->group, cmd->name) : xstrdup(cmd->name);
                fprintf(f, *cmd->synopsis ? "  %-16s %s\n" : "  %s\n", s, cmd->synopsis);
        }
        fputs("\nOptions:\n"
              "  --socket PATH  control socket (default: $SLATE_CONTROL_SOCKET, else " CONTROL_CLIENT_DEFAULT_SOCKET ")\n"
              "  --json         print the raw JSON result, for scripts\n"
              "  --help         show this help\n"
              "  --version      show the version\n\n"
              "Exit status: 0 success, 1 the command failed, 2 usage error or no answer from slated.\n"
              "See slatectl(8).\n",
              f);
}

static void help_group(const char *group, FILE *f)
{
        fprintf(f, "usage: slatectl %s SUBCOMMAND [ARGS...]\n\nSubcommands:\n", group);
        FOREACH_COMMAND(cmd)
                if (cmd->group && strcmp(cmd->group, group) == 0)
                        fprintf(f, *cmd->synopsis ? "  %-9s %s\n" : "  %s\n", cmd->name, cmd->synopsis);
        fprintf(f, "\nRun 'slatectl %s SUBCOMMAND --help' for details.\n", group);
}

static bool is_group(const char *s)
{
        FOREACH_COMMAND(cmd)
                if (cmd->group && strcmp(cmd->group, s) == 0)
                        return true;
        return false;
}

static const Command *command_find(const char *group, const char *name)
{
        FOREACH_COMMAND(cmd) {
                if ((group ? cmd->group && strcmp(cmd->group, group) == 0 : !cmd->group) &&
                    strcmp(cmd->name, name) == 0)
                        return cmd;
        }
        return NULL;
}

int main(int argc, char **argv)
{
        Ctl c = { .id = (int64_t)getpid(), .tty = isatty(STDERR_FILENO) == 1 };
        int i = 1;

        for (; i < argc && argv[i][0] == '-'; i++) {
                const char *a = argv[i];
                if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        help_main(stdout);
                        return EXIT_OK;
                } else if (strcmp(a, "--version") == 0) {
                        printf("slatectl (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
                        return EXIT_OK;
                } else if (strcmp(a, "--json") == 0)
                        c.json = true;
                else if (strcmp(a, "--socket") == 0 && i + 1 < argc)
                        c.socket_path = argv[++i];
                else if (strncmp(a, "--socket=", 9) == 0)
                        c.socket_path = a + 9;
                else if (strcmp(a, "--") == 0) {
                        i++;
                        break;
                } else {
                        fprintf(stderr, "slatectl: %s option %s\n",
                                strcmp(a, "--socket") == 0 ? "missing value for" : "unknown", a);
                        fputs("usage: slatectl [--socket PATH] [--json] COMMAND [ARGS...] (see slatectl --help)\n",
                              stderr);
                        return EXIT_USAGE;
                }
        }
        if (i >= argc) {
                fputs("usage: slatectl [--socket PATH] [--json] COMMAND [ARGS...] (see slatectl --help)\n", stderr);
                return EXIT_USAGE;
        }

        const char *word = argv[i++];
        if (strcmp(word, "help") == 0) {
                /* slatectl help [COMMAND [SUBCOMMAND]] */
                if (i >= argc) {
                        help_main(stdout);
                        return EXIT_OK;
                }
                word = argv[i++];
                if (is_group(word) && i >= argc) {
                        help_group(word, stdout);
                        return EXIT_OK;
                }
                const Command *cmd = is_group(word) ? command_find(word, argv[i]) : command_find(NULL, word);
                if (!cmd) {
                        fprintf(stderr, "slatectl: no help for \"%s\" (see slatectl --help)\n", word);
                        return EXIT_USAGE;
                }
                usage_line(cmd, stdout);
                fputs(cmd->help, stdout);
                return EXIT_OK;
        }
        const Command *cmd;
        if (is_group(word)) {
                if (i >= argc || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        bool asked = i < argc;
                        help_group(word, asked ? stdout : stderr);
                        return asked ? EXIT_OK : EXIT_USAGE;
                }
                cmd = command_find(word, argv[i]);
                if (!cmd) {
                        fprintf(stderr, "slatectl: %s: unknown subcommand \"%s\"\n", word, argv[i]);
                        help_group(word, stderr);
                        return EXIT_USAGE;
                }
                i++;
        } else if (!(cmd = command_find(NULL, word))) {
                fprintf(stderr, "slatectl: unknown command \"%s\" (see slatectl --help)\n", word);
                return EXIT_USAGE;
        }
        c.cmd = cmd;
        int r = cmd->run(&c, argc - i, argv + i);
        if (fflush(stdout) != 0 && r == EXIT_OK) {
                errorf("writing output: %s", strerror(errno));
                return EXIT_FAIL;
        }
        return r;
}
