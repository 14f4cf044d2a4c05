/* A reserved range of uids (= gids) handed out one per process (a slate-session, a desktop's
 * QEMU): a bitmap with a next-fit cursor, and the start-up check that the range is nobody else's.
 * An id goes back only when its process has been reaped: it must never be handed out while
 * anything may still run as it. libc only. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Zeroed, or initialised with count 0, it is an empty range: it contains nothing and every take
 * fails (vm-uid-count = 0: every QEMU runs as vm-user). */
typedef struct IdRange {
        uint32_t base, count;
        uint8_t *used;          /* ours: handed out and not yet released */
        uint8_t *foreign;       /* seen in /proc (a previous slated's children): skipped until rescanned */
        uint32_t next;          /* next-fit: a released id is reused as late as possible */
        uint32_t in_use;
} IdRange;

/* Refuses (-EINVAL, why in ret_why) a range that holds 0, reaches (uid_t)-1 or nobody (65534),
 * or is empty. Pure. */
int idrange_validate(uint32_t base, uint32_t count, char *ret_why, size_t why_len);
/* Refuses (-EEXIST, why in ret_why) a range any passwd or group entry falls in (NSS, so LDAP
 * users too: their files would be the session's to open). */
int idrange_check_unused(uint32_t base, uint32_t count, char *ret_why, size_t why_len);
/* Allocates the bitmaps and marks the ids processes run as now (see idrange_take). */
void idrange_init(IdRange *r, uint32_t base, uint32_t count);
void idrange_free(IdRange *r);
bool idrange_contains(const IdRange *r, uint32_t id);
/* A free id: not ours, and no process was running as it at the last scan of /proc (at init, and
 * each time the cursor wraps). -EAGAIN when every id is taken. */
int idrange_take(IdRange *r, uint32_t *ret_id);
/* Marks id as ours, though the /proc scan may have seen a process run as it: that process is
 * the one being adopted (a desktop's QEMU still running at start), so it is no longer foreign.
 * The cursor moves past it, as if it had been taken. -ERANGE: not in the range; -EEXIST: ours
 * already. */
int idrange_claim(IdRange *r, uint32_t id);
/* The process that ran as id has been reaped. */
void idrange_release(IdRange *r, uint32_t id);
/* The ids processes run as now (real, effective or saved uid in /proc/PID/status), marked
 * foreign; earlier foreign marks are cleared first. Returns how many ids were marked. */
unsigned idrange_scan_proc(IdRange *r, const char *proc_dir);
