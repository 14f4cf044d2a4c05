/* Starting a helper program: fork + exec with its stdio, fd 3, limits and identity set up in
 * the child by async-signal-safe calls only (slated forks from its thread pool). libc only: the
 * static slate-agent links it. It must never let an fd the caller did not name reach the child. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "common/sandbox.h"

typedef enum SpawnStdio {
        SPAWN_STDIO_INHERIT,    /* the parent's own fd 0/1/2 */
        SPAWN_STDIO_NULL,       /* /dev/null */
        SPAWN_STDIO_PIPE,       /* a new pipe; the parent's end is SpawnChild.fds[i] */
        SPAWN_STDIO_FD,         /* SpawnOpts.stdio_fd[i] */
        SPAWN_STDIO_STDOUT,     /* stderr only: wherever stdout goes (one pipe for both) */
} SpawnStdio;

typedef struct SpawnOpts {
        const char *const *argv;        /* argv[0]: the program */
        const char *const *envp;        /* NULL: the parent's environment */
        bool search_path;               /* argv[0] without a '/' is looked up in PATH */
        SpawnStdio stdio[3];            /* stdin, stdout, stderr; zero: inherit */
        int stdio_fd[3];                /* for SPAWN_STDIO_FD */
        int fd3;                        /* >= 0: becomes fd 3 in the child; give -1 otherwise */
        bool new_session;               /* setsid(): own session and process group */
        bool new_pgroup;                /* setpgid(0, 0) */
        bool default_signals;           /* every disposition SIG_DFL, nothing blocked (an ignored
                                         * SIGPIPE in slated must not reach tar or qemu-img) */
        uint64_t limit_as;              /* RLIMIT_AS in bytes; 0: inherit */
        unsigned limit_cpu_s;           /* RLIMIT_CPU soft limit (SIGXCPU), hard one second later
                                         * (SIGKILL if it is caught); 0: inherit */
        bool drop_privileges;           /* setgroups + setgid(gid) + setuid(uid) before exec */
        uid_t uid;
        gid_t gid;
        bool with_extra_gid;            /* keep extra_gid as the one supplementary group */
        gid_t extra_gid;
        const Sandbox *sandbox;         /* run in this sandbox (common/sandbox.h; fd3 is its input)
                                         * instead of drop_privileges; the pid is then the relay's */
} SpawnOpts;

typedef struct SpawnChild {
        pid_t pid;
        int fds[3];                     /* the parent's pipe ends (stdin: write end), O_CLOEXEC; else -1 */
} SpawnChild;

/* Starts the program and returns once it has exec'd. 0, or a negative errno: of pipe/fork, or of
 * the child's setup or exec (the child is reaped then, and no fd stays open). Logs nothing: the
 * caller knows what the program was for. Every fd other than 0-2 (and fd3) is closed in the child. */
int spawn_start(const SpawnOpts *o, SpawnChild *ret);
/* Closes the parent's pipe ends that are still open. */
void spawn_child_close(SpawnChild *c);
/* waitpid, retried on EINTR. flags 0 or WNOHANG. 1 with the raw status when the child was
 * reaped, 0 when it still runs (WNOHANG), or a negative errno. */
int spawn_wait(pid_t pid, int flags, int *ret_status);
