/* Pool manager: keeps each pool's warm desktops ready, within max, boots with bounded
 * parallelism (a boot storm must not starve the host), backs off a pool whose desktops keep
 * failing, and drains pools being deleted; hands desktops to logons (claims). Never touches an
 * assigned desktop except to destroy it when its claimant lets go. */
#include <errno.h>
#include <stdio.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include "broker/pool.h"
#include "broker/template.h"
#include "streaming/entitle.h"
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

void pool_counts(Broker *b, const char *pool, unsigned *ready, unsigned *booting, unsigned *assigned,
                 unsigned *total)
{
        unsigned r = 0, bo = 0, a = 0, t = 0;
        for (Desktop *d = b->desktops; d; d = d->next) {
                if (strcmp(d->pool, pool) != 0)
                        continue;
                t++;
                if (d->stopping)
                        continue;
                if (desktop_claimed(d) || d->state == DESKTOP_ASSIGNED)
                        a++;
                else if (d->state == DESKTOP_READY)
                        r++;
                else if (d->state == DESKTOP_BOOTING)
                        bo++;
        }
        if (ready)
                *ready = r;
        if (booting)
                *booting = bo;
        if (assigned)
                *assigned = a;
        if (total)
                *total = t;
}

Pool *pool_for_user(Broker *b, const char *user, gid_t *groups, int ngroups)
{
        Pool *best = NULL;
        for (Pool *p = b->pools; p; p = p->next)
                if (!p->deleting && pool_entitles(p, user, groups, ngroups) && (!best || strcmp(p->name, best->name) < 0))
                        best = p;
        return best;
}

static int pool_desktop_create(Broker *b, Pool *p, Desktop **ret)
{
        DbImageVersion *cur, *all;
        size_t n;
        int r = db_image_current(b->db, p->image, &cur, &all, &n);
        if (r < 0)
                return r;
        DesktopSpec spec = { .pool = p->name, .version = cur, .memory = p->memory, .vcpus = p->vcpus,
                             .overlay = p->overlay, .clone = p->clone };
        r = desktop_create(b, &spec, ret);
        db_image_version_free_array(all, n);
        return r;
}

int pool_desktop_claim(Broker *b, Pool *p, const char *claim_id, const DesktopEvents *ev, void *data,
                       Desktop **ret, bool *ret_booting)
{
        Desktop *d = NULL;
        /* The longest-ready desktop first: it has settled the most. */
        for (Desktop *x = b->desktops; x; x = x->next)
                if (strcmp(x->pool, p->name) == 0 && x->state == DESKTOP_READY && !x->stopping &&
                    !desktop_claimed(x) && (!d || x->ready_ms < d->ready_ms))
                        d = x;
        bool booting = false;
        if (!d) {
                /* A desktop already booting for the pool's warm spares can be claimed. */
                for (Desktop *x = b->desktops; x && !d; x = x->next)
                        if (strcmp(x->pool, p->name) == 0 && x->state == DESKTOP_BOOTING && !desktop_claimed(x) &&
                            !x->stopping)
                                d = x;
                unsigned total;
                pool_counts(b, p->name, NULL, NULL, NULL, &total);
                if (!d && (total >= p->max || pool_desktop_create(b, p, &d) < 0))
                        return -EBUSY;
                booting = true;
        }
        desktop_claim(d, claim_id, ev, data);
        d->claim_ms = now_ms();
        uint64_t hold = pool_refill_hold_s(b->cfg->refill_hold, p->usable_timeout);
        if (hold)
                d->hold_until_ms = d->claim_ms + hold * 1000;
        if (!booting) {
                /* Marked taken before the claimant records anything: whatever a crash leaves
                 * between the two, a restart never hands this desktop to anyone else. */
                d->state = DESKTOP_ASSIGNED;
                desktop_persist(d);
        }
        pool_manager_kick(b);
        *ret = d;
        *ret_booting = booting;
        return 0;
}

void pool_desktop_usable(Desktop *d)
{
        if (!d->hold_until_ms)
                return;
        d->hold_until_ms = 0;
        if (d->b->refill_held)
                log_info("desktop %s (pool %s): usable %llu ms after its claim; spare boots may go ahead", d->id,
                         d->pool, (unsigned long long)(now_ms() - d->claim_ms));
        pool_manager_kick(d->b);
}

void pool_desktop_release(Desktop *d, const char *reason)
{
        d->hold_until_ms = 0;
        desktop_unclaim(d);
        if (d->stopping)
                return;
        /* Assigned from ready and never given a user session: as good as a spare. (An agent that
         * died meanwhile is noticed by supervision, which replaces the desktop.) */
        if (d->state == DESKTOP_ASSIGNED && !d->touched) {
                d->state = DESKTOP_READY;
                desktop_persist(d);
                log_info("desktop %s (pool %s): back to the pool unused (%s)", d->id, d->pool, reason);
                pool_manager_kick(d->b);
                return;
        }
        if (d->state == DESKTOP_BOOTING && !d->touched) {
                pool_manager_kick(d->b);        /* keeps booting as a spare */
                return;
        }
        desktop_destroy(d, reason);
}

bool pool_entitles(const Pool *p, const char *user, gid_t *groups, int ngroups)
{
        return entitle_match(p->entitlements, p->n_entitlements, user, groups, ngroups);
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
                p->profiles = rows[i].profiles;
                p->layer_refuse_older = rows[i].layer_refuse_older;
                p->profile_size = rows[i].profile_size;
                p->usable_timeout = rows[i].usable_timeout;
                p->clone = rows[i].clone;
                pool_load_entitlements(b, p);
                p->next = b->pools;
                b->pools = p;
        }
        db_pool_free_array(rows, n);
        return 0;
}

static void pool_note_failure(Broker *b, const char *name)
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

static void pool_note_success(Broker *b, const char *name)
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
                            !desktop_claimed(d) && (!oldest || d->created < oldest->created))
                                oldest = d;
                if (!oldest)
                        return;
                desktop_destroy(oldest, "pool shrunk");
                excess--;
        }
}

unsigned pool_refill_hold_s(unsigned cap, unsigned usable_timeout)
{
        /* Until usable: the logon's steps before the usable step (a booting desktop, the agent's
         * session start) plus the pool's usable-timeout, which then ends the logon anyway. */
        unsigned hold = usable_timeout + POOL_REFILL_HOLD_START_S;
        return hold < cap ? hold : cap;
}

Desktop *pool_refill_holder(Desktop *list, uint64_t now)
{
        for (Desktop *d = list; d; d = d->next)
                if (d->hold_until_ms > now && desktop_claimed(d) && !d->stopping)
                        return d;
        return NULL;
}

/* The refill hold: on a small host a spare's boot (even at idle priority: memory bandwidth,
 * caches, the disk) slows the desktop a user is waiting for. While a logon anywhere on the host
 * is between its claim and usable, no pool boots or replaces spares, for at most refill-hold s
 * per logon. Host-wide rather than per pool: the CPU is shared by all of them. */
static bool refill_hold_check(Broker *b)
{
        uint64_t now = now_ms();
        Desktop *h = pool_refill_holder(b->desktops, now);
        if (h && !b->refill_held)
                log_info("pool manager: spare boots wait until desktop %s (pool %s) is usable, at most %llu s more",
                         h->id, h->pool, (unsigned long long)(h->hold_until_ms - now + 999) / 1000);
        else if (!h && b->refill_held)
                log_info("pool manager: spare boots resume");
        b->refill_held = h != NULL;
        return b->refill_held;
}

static void pool_evaluate(Broker *b, Pool *p, bool held)
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
        if (held)
                return;
        /* Rolling refresh and max age: idle desktops of an outdated version, or too old, are
         * replaced at once; desktops in use finish their sessions first (they are never reused). */
        int current = db_image_current_version(b->db, p->image);
        int64_t now = (int64_t)now_realtime_s();
        for (Desktop *d = b->desktops; d; d = d->next) {
                if (strcmp(d->pool, p->name) != 0 || d->stopping || desktop_claimed(d) || d->state != DESKTOP_READY)
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
        bool building = false;
        if (p->clone && !held) {
                DbImageVersion *cur, *all;
                size_t n;
                if (db_image_current(b->db, p->image, &cur, &all, &n) == 0) {
                        building = template_ensure(b, cur, p->memory, p->vcpus);
                        db_image_version_free_array(all, n);
                }
        }
        pool_counts(b, p->name, &ready, &booting, &assigned, &total);
        if (ready > p->warm) {
                pool_trim(b, p, ready - p->warm);
                return;
        }
        if (p->retry_after_ms && now_ms() < p->retry_after_ms)
                return;
        /* Spares wait for a template being built: a cold boot beside the build takes the CPU
         * both need, and a clone after it is ready in a second. A logon with no desktop does not
         * wait (logon.c makes one at once). A build that fails lets cold boots go ahead. */
        if (building)
                return;
        while (ready + booting < p->warm && total < p->max && b->boots_in_flight < b->boot_parallel) {
                int r = pool_desktop_create(b, p, NULL);
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
        template_gc(b);
        bool held = refill_hold_check(b);
        for (Pool *p = b->pools, *next; p; p = next) {
                next = p->next;
                pool_evaluate(b, p, held);
        }
}

void pool_manager_kick(Broker *b)
{
        if (!b->shutting_down)
                uv_timer_start(&b->kick, pool_tick, 10, 0);
}

/* The owner's view of every desktop: boot outcomes back the pool off or reset it, and any
 * change re-evaluates the pools. */
static void on_desktop_ready(Desktop *d, void *data)
{
        pool_note_success(d->b, d->pool);
        pool_manager_kick(d->b);
}

static void on_desktop_boot_failed(Desktop *d, void *data) { pool_note_failure(d->b, d->pool); }

static void on_desktop_gone(Desktop *d, void *data) { pool_manager_kick(d->b); }

static const DesktopEvents pool_desktop_events = {
        .on_ready = on_desktop_ready, .on_boot_failed = on_desktop_boot_failed, .on_gone = on_desktop_gone,
};

void pool_manager_init(Broker *b)
{
        b->desktop_events = &pool_desktop_events;
        uv_timer_init(b->loop, &b->tick);
        uv_timer_init(b->loop, &b->kick);
        b->tick.data = b->kick.data = b;
}

void pool_manager_start(Broker *b)
{
        uv_timer_start(&b->tick, pool_tick, 0, TICK_MS);
}

void pool_manager_stop(Broker *b)
{
        uv_timer_stop(&b->tick);
        uv_timer_stop(&b->kick);
}
