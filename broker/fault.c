/* Named crash points (fault.h). Only a test sets SLATE_CRASH_AT; with it unset every point is
 * a string compare against an empty name. Never used to change behaviour, only to stop. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "broker/fault.h"
#include "common/log.h"
#include "common/util.h"

int fault_parse(const char *spec, Fault *ret)
{
        *ret = (Fault){ .after = 1 };
        if (!spec || !*spec)
                return 0;
        const char *colon = strchr(spec, ':');
        size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
        if (n == 0 || n >= sizeof ret->point)
                return -EINVAL;
        if (colon) {
                unsigned v;
                if (parse_uint(colon + 1, 1000000, &v) < 0 || v == 0)
                        return -EINVAL;
                ret->after = v;
        }
        memcpy(ret->point, spec, n);
        ret->point[n] = 0;
        return 0;
}

void fault_point(Fault *f, const char *point)
{
        if (!f || !f->point[0] || strcmp(f->point, point) != 0)
                return;
        if (++f->hits < f->after)
                return;
        log_warn("crash point %s reached (hit %u): SIGKILL", point, f->hits);
        kill(getpid(), SIGKILL);
}
