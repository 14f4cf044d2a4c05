/* Pools: the desktops of one image for a set of users, kept warm by the pool manager. The pool
 * owns pool choice and desktop claims (pool_for_user, pool_desktop_claim): a logon asks for a
 * desktop here and hears about it through the events it registered. Calls down into desktop.h
 * only; never into sessions or connections. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "broker/broker.h"
#include "broker/desktop.h"

struct Pool {
        Pool *next;
        char *name;
        char *image;
        unsigned warm, max;
        uint64_t memory;
        unsigned vcpus;
        OverlayMode overlay;
        int64_t created;
        bool deleting;
        unsigned disconnect_timeout; /* seconds a disconnected session keeps its desktop */
        unsigned idle_timeout;  /* seconds without user input before the session ends; 0 = never */
        unsigned max_age;       /* idle desktops older than this are replaced (nightly re-image); 0 = never */
        bool profiles;          /* attach users' roaming profile disks (off: home is erased with the desktop) */
        bool layer_refuse_older; /* --layer-policy refuse: a layer made for an older image version is not attached */
        uint64_t profile_size;  /* --profile-size: new profile disks' size; 0 = the profile-size setting */
        unsigned usable_timeout; /* seconds a logon waits for the agent's USABLE; past it the session
                                  * ends and its desktop is destroyed */
        bool clone;             /* desktops cloned from a template (instant clones), else booted */
        char **entitlements;    /* "user:NAME", "group:NAME", "all" */
        size_t n_entitlements;
        unsigned failures;      /* consecutive boot failures */
        uint64_t retry_after_ms;
};

/* A new pool's usable-timeout: the Debian Xfce image under TCG on a 2-core host with a spare
 * booting draws its panel in 20-45 s; this leaves room for a slower host. */
#define POOL_USABLE_TIMEOUT_DEFAULT 180

Pool *pool_find(Broker *b, const char *name);
int pool_load_all(Broker *b);
void pool_free(Pool *p);
bool pool_entitles(const Pool *p, const char *user, gid_t *groups, int ngroups);
void pool_load_entitlements(Broker *b, Pool *p);
/* The pool a user logs on to: the first by name among those entitling them, or NULL. */
Pool *pool_for_user(Broker *b, const char *user, gid_t *groups, int ngroups);
/* Count a pool's desktops by state; total excludes destroyed ones. Any output may be NULL. */
void pool_counts(Broker *b, const char *pool, unsigned *ready, unsigned *booting, unsigned *assigned,
                 unsigned *total);

/* Claim a desktop of the pool for claim_id: the longest-ready idle one (marked assigned), else
 * one already booting, else a new boot within max. *ret_booting tells whether ev->on_ready is
 * still to come. -EBUSY when the pool is full. */
int pool_desktop_claim(Broker *b, Pool *p, const char *claim_id, const DesktopEvents *ev, void *data,
                       Desktop **ret, bool *ret_booting);
/* The logon that claimed d found its desktop usable (or gave up waiting): it no longer holds
 * spare boots. */
void pool_desktop_usable(Desktop *d);
/* The refill hold's decision: the first desktop in list whose logon still holds spare boots at
 * now (claimed, not usable yet, within refill-hold), or NULL. */
Desktop *pool_refill_holder(Desktop *list, uint64_t now);

/* Seconds a logon holds spare boots at most: until its desktop is usable, bounded by the pool's
 * usable-timeout plus the steps before it, and by slate.conf's refill-hold (cap; 0: no hold). */
#define POOL_REFILL_HOLD_START_S 120u
unsigned pool_refill_hold_s(unsigned cap, unsigned usable_timeout);
/* Give a claimed desktop back: an untouched ready desktop becomes a spare again; one a user
 * session ran in (or that is not ready) is destroyed, never reused. */
void pool_desktop_release(Desktop *d, const char *reason);

/* The manager: timers exist from init (start-up reconciliation may kick); ticks run from start. */
void pool_manager_init(Broker *b);
void pool_manager_start(Broker *b);
void pool_manager_kick(Broker *b);   /* re-evaluate soon (after a change) */
void pool_manager_stop(Broker *b);
