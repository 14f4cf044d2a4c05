/* Pool manager: keeps each pool's warm desktops ready, within max, boots with bounded
 * parallelism (a boot storm must not starve the host), backs off a pool whose desktops keep
 * failing, and drains pools being deleted. Never touches an assigned desktop. */
#include <errno.h>
#include <stdio.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include "broker/broker.h"
#include "common/log.h"
#include "common/util.h"

#define TICK_MS 1000
#define BACKOFF_MAX_MS 60000

Pool *pool_find(Broker *b, const char *name)
{
        for (Pool *p = b->pools; p; p = p->next)
                if (strcmp(p->name, name) == 0)
                        return p;
        return NULL;
}

Desktop *pool_desktop_take(Broker *b, Pool *p)
{
        Desktop *best = NULL;
        /* The longest-ready desktop first: it has settled the most. */
        for (Desktop *d = b->desktops; d; d = d->next)
                if (strcmp(d->pool, p->name) == 0 && d->state == DESKTOP_READY && !d->stopping && !d->session &&
                    (!best || d->ready_ms < best->ready_ms))
                        best = d;
        return best;
}

bool pool_entitles(const Pool *p, const char *user, gid_t *groups, int ngroups)
{
        for (size_t i = 0; i < p->n_entitlements; i++) {
                const char *e = p->entitlements[i];
                if (strcmp(e, "all") == 0)
                        return true;
                if (strncmp(e, "user:", 5) == 0 && strcmp(e + 5, user) == 0)
                        return true;
                if (strncmp(e, "group:", 6) == 0) {
                        struct group *g = getgrnam(e + 6);
                        for (int k = 0; g && k < ngroups; k++)
                                if (groups[k] == g->gr_gid)
                                        return true;
                }
        }
        return false;
}

void pool_load_entitlements(Broker *b, Pool *p)
{
        for (size_t i = 0; i < p->n_entitlements; i++)
                free(p->entitlements[i]);
        free(p->entitlements);
        p->entitlements = NULL;
        p->n_entitlements = 0;
        db_entitlement_list(b->db, p->name, &p->entitlements, &p->n_entitlements);
}

void pool_free(Pool *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_entitlements; i++)
                free(p->entitlements[i]);
        free(p->entitlements);
        free(p->name);
        free(p->image);
        free(p);
}

int pool_load_all(Broker *b)
{
        DbPool *rows;
        size_t n;
        int r = db_pool_list(b->db, &rows, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                Pool *p = xmalloc0(sizeof *p);
                p->name = xstrdup(rows[i].name);
                p->image = xstrdup(rows[i].image);
                p->warm = rows[i].warm;
                p->max = rows[i].max;
                p->memory = rows[i].memory;
                p->vcpus = rows[i].vcpus;
                overlay_mode_from_string(rows[i].overlay, &p->overlay);
                p->created = rows[i].created;
                p->disconnect_timeout = rows[i].disconnect_timeout;
                p->idle_timeout = rows[i].idle_timeout;
                p->max_age = rows[i].max_age;
                pool_load_entitlements(b, p);
                p->next = b->pools;
                b->pools = p;
        }
        db_pool_free_array(rows, n);
        return 0;
}

void pool_note_failure(Broker *b, const char *name)
{
        Pool *p = pool_find(b, name);
        if (!p)
                return;
        p->failures++;
        uint64_t delay = 1000ull << MIN(p->failures, 6u);
        p->retry_after_ms = now_ms() + MIN(delay, (uint64_t)BACKOFF_MAX_MS);
        if (p->failures >= 3)
                log_warn("pool %s: %u desktops in a row failed to boot; next try in %llu s", p->name, p->failures,
                         (unsigned long long)MIN(delay, (uint64_t)BACKOFF_MAX_MS) / 1000);
}

void pool_note_success(Broker *b, const char *name)
{
        Pool *p = pool_find(b, name);
        if (p) {
                p->failures = 0;
                p->retry_after_ms = 0;
        }
}

static void pool_remove(Broker *b, Pool *p)
{
        for (Pool **pp = &b->pools; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        db_pool_delete(b->db, p->name);
        db_audit(b->db, "pool.delete", p->name, "drained");
        log_info("pool %s: drained and deleted", p->name);
        pool_free(p);
}

/* Destroy the oldest idle ready desktops beyond the warm count. */
static void pool_trim(Broker *b, Pool *p, unsigned excess)
{
        while (excess > 0) {
                Desktop *oldest = NULL;
                for (Desktop *d = b->desktops; d; d = d->next)
                        if (strcmp(d->pool, p->name) == 0 && d->state == DESKTOP_READY && !d->stopping &&
                            (!oldest || d->created < oldest->created))
                                oldest = d;
                if (!oldest)
                        return;
                desktop_destroy(oldest, "pool shrunk");
                excess--;
        }
}

static void pool_evaluate(Broker *b, Pool *p)
{
        unsigned ready, booting, assigned, total;
        if (p->deleting) {
                bool any = false;
                for (Desktop *d = b->desktops; d; d = d->next)
                        if (strcmp(d->pool, p->name) == 0) {
                                any = true;
                                desktop_destroy(d, "pool deleted");
                        }
                if (!any)
                        pool_remove(b, p);
                return;
        }
        /* Rolling refresh and max age: idle desktops of an outdated version, or too old, are
         * replaced at once; desktops in use finish their sessions first (they are never reused). */
        int current = images_current_version(b, p->image);
        int64_t now = (int64_t)now_realtime_s();
        for (Desktop *d = b->desktops; d; d = d->next) {
                if (strcmp(d->pool, p->name) != 0 || d->stopping || d->session || d->state != DESKTOP_READY)
                        continue;
                if (current > 0 && d->version != current) {
                        char why[64];
                        snprintf(why, sizeof why, "image %s v%d is now current", p->image, current);
                        log_info("pool %s: replacing idle desktop %s (v%d): %s", p->name, d->id, d->version, why);
                        desktop_destroy(d, why);
                } else if (p->max_age && now - d->created > (int64_t)p->max_age) {
                        log_info("pool %s: replacing idle desktop %s: older than max age %u s", p->name, d->id,
                                 p->max_age);
                        desktop_destroy(d, "max age reached");
                }
        }
        pool_counts(b, p->name, &ready, &booting, &assigned, &total);
        if (ready > p->warm) {
                pool_trim(b, p, ready - p->warm);
                return;
        }
        if (p->retry_after_ms && now_ms() < p->retry_after_ms)
                return;
        while (ready + booting < p->warm && total < p->max && b->boots_in_flight < b->boot_parallel) {
                int r = desktop_create(b, p);
                if (r < 0) {
                        if (r == -ENOENT)
                                log_warn("pool %s: image %s has no current version", p->name, p->image);
                        pool_note_failure(b, p->name);
                        return;
                }
                booting++;
                total++;
        }
}

static void pool_tick(uv_timer_t *t)
{
        Broker *b = t->data;
        if (b->shutting_down)
                return;
        /* Desktops whose pool is gone drain too. */
        for (Desktop *d = b->desktops, *next; d; d = next) {
                next = d->next;
                if (!pool_find(b, d->pool) && !d->stopping)
                        desktop_destroy(d, "pool no longer exists");
        }
        for (Pool *p = b->pools, *next; p; p = next) {
                next = p->next;
                pool_evaluate(b, p);
        }
        session_idle_sweep(b);
}

void pool_manager_kick(Broker *b)
{
        if (!b->shutting_down)
                uv_timer_start(&b->kick, pool_tick, 10, 0);
}

void pool_manager_init(Broker *b)
{
        uv_timer_init(b->loop, &b->tick);
        uv_timer_init(b->loop, &b->kick);
        b->tick.data = b->kick.data = b;
}

void pool_manager_start(Broker *b)
{
        uv_timer_start(&b->tick, pool_tick, 0, TICK_MS);
}
