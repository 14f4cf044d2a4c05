/* A program that reads one hostile file (qemu-img on a published image) runs in a sandbox set up
 * by common/spawn between fork and exec: new mount, network, PID, IPC, UTS and cgroup namespaces;
 * a read-only tmpfs root with /usr, the /lib and /bin links, /dev/{null,zero,random,urandom}, the
 * one input file read-only and at most one writable directory; no /proc, /sys, /etc, /home; then
 * an unprivileged identity, no capabilities (bounding set emptied too), no_new_privs and a
 * seccomp filter. It must never let the program see another host file, reach a socket outside
 * its own namespace, or regain a capability. libc only, async-signal-safe calls only. */
#pragma once
#include <sys/types.h>

typedef struct Sandbox {
        const char *program;            /* bound read-only at its own path unless the new root has it
                                         * already (under /usr, or /bin on a merged /usr) */
        const char *input_path;         /* where fd 3's file (opened by the caller) appears, read-only,
                                         * e.g. "/in/image"; fd 3 itself is closed */
        const char *output_dir;         /* NULL, or a host directory bound writable at output_path */
        const char *output_path;        /* e.g. "/out" */
        uid_t uid;                      /* the identity of the run; 0 is allowed (then with no */
        gid_t gid;                      /* capability either, and SECBIT_NOROOT locked) */
} Sandbox;

/* In the forked child, after its fds 0-3 are in place and every other fd but keep_fd is closed.
 * Forks once more: the caller's child stays outside the new PID namespace, closes its fds, waits
 * for the sandboxed process (PID 1 inside) and exits as it did (the same code, or killed by the
 * same signal), so the caller's waitpid sees the program's end; it never returns. In the
 * sandboxed process: returns 0 with fd 3 closed, ready to exec, or a positive errno. */
int sandbox_enter(const Sandbox *s);

/* The uid the sandbox uses for a file that others may read (nobody on Debian). */
#define SANDBOX_NOBODY 65534
