/* slate-session's sandbox: no new privileges and a seccomp allow-list, entered before the first
 * byte from slated or the network is read, for the whole life of the process. */
#pragma once

typedef enum SandboxMode {
        SANDBOX_ENFORCE,        /* a call off the list fails with EPERM; a forbidden one kills */
        SANDBOX_LOG,            /* a call off the list is allowed and logged by the kernel (debugging);
                                 * the forbidden ones still kill */
} SandboxMode;

/* SLATE_SESSION_SECCOMP's value: NULL or "enforce", or "log". -EINVAL otherwise. */
int sandbox_mode_parse(const char *s, SandboxMode *ret);
/* PR_SET_NO_NEW_PRIVS, then the filter on every thread. 0, or a negative errno (logged). */
int sandbox_enter(SandboxMode mode);
