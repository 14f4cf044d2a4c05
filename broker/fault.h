/* Crash points for the fault tests: SLATE_CRASH_AT=POINT[:N] makes slated SIGKILL itself the
 * N-th time (default 1) it passes POINT, so a test can stop it at a named step of a logon or
 * logoff and check what the next start makes of the state left behind. Unset: a no-op. */
#pragma once
#include <stdbool.h>

typedef struct Fault {
        char point[48];
        unsigned after;         /* kill when the hit count reaches this */
        unsigned hits;
} Fault;

/* Parse "POINT" or "POINT:N". -EINVAL on a malformed spec (slated then refuses to start). */
int fault_parse(const char *spec, Fault *ret);
/* Count a pass through point; SIGKILL this process when the armed count is reached. */
void fault_point(Fault *f, const char *point);
