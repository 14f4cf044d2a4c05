/* slated's context: the one Broker that owns the loop, the database, the pools, desktops,
 * sessions and connections. Only the fields; each module's functions live in its own header
 * (pool.h, desktop.h, session.h, conn.h, logon.h, ...). No module reaches past this struct into
 * another module's internals except through that module's header. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include "broker/db.h"
#include "broker/fault.h"
#include "broker/hv.h"
#include "common/config.h"
#include "common/idrange.h"

typedef struct Broker Broker;
typedef struct Pool Pool;
typedef struct Desktop Desktop;
typedef struct Control Control;
typedef struct Session Session;
typedef struct Conn Conn;
typedef struct AuthLimiter AuthLimiter;
typedef struct AuthHandle AuthHandle;
typedef struct DesktopEvents DesktopEvents;
typedef struct ConnEvents ConnEvents;

struct Broker {
        uv_loop_t *loop;
        SlateConfig *cfg;
        Db *db;
        const HvDriver *hv;
        HvAccel accel;
        char *accel_reason;
        uid_t vm_uid;           /* vm-user: owns profile disks at rest; (uid_t)-1 when not root */
        gid_t vm_gid, kvm_gid;
        IdRange vm_ids;         /* each desktop's own uid (= gid); empty when not root or vm-uid-count = 0 */
        Pool *pools;
        Desktop *desktops;
        /* Who hears about every desktop (the pool manager): set once by pool_manager_init. */
        const DesktopEvents *desktop_events;
        unsigned boots_in_flight;
        unsigned boot_parallel;
        unsigned boot_timeout_s;
        bool refill_held;       /* the pool manager holds spare boots for a logon (pool.c) */
        uv_timer_t tick;
        uv_timer_t kick;
        uv_timer_t sweep;       /* idle and disconnect sweeps of sessions (logoff.c) */
        Control *control;
        uint64_t start_ms;
        bool shutting_down;
        Session *sessions;
        Conn *conns;
        /* slate-sessions started ahead, waiting for a client (conn.c): not connections yet. */
        Conn *session_spares;
        uv_timer_t spare_timer; /* the next spare's start, after a back-off when they die young */
        bool spare_timer_open, spares_stopped;
        unsigned spare_fails;   /* spares in a row that died soon after their start */
        /* Who hears what a connection's slate-session says (the logon module). */
        const ConnEvents *conn_events;
        unsigned preauth;       /* connections not yet past authentication */
        double accept_tokens;   /* the accept-rate bucket (listener.c) */
        uint64_t accept_refill_ms;
        AuthLimiter *limiter;
        struct WorkQ *logon_q;  /* the work a logon waits on (workq.h), apart from admin jobs */
        char *tls_cert_pem;
        struct evp_pkey_st *tls_key;    /* never leaves slated: sessions ask it to sign (conn.c) */
        /* The uids (= gids) slate-sessions run as, one per connection; NULL when not root. */
        struct IdRange *session_ids;
        uv_tcp_t listeners[8];
        unsigned n_listeners;
        char *overlay_dir;      /* <state>/overlays */
        char *image_dir;        /* <state>/images */
        char *app_dir;          /* <state>/apps: app layer versions */
        char *profile_dir;      /* <state>/profiles: one dir per user, spares in .spare/ */
        bool spare_job;         /* a spare profile disk is being made (userdisks.c) */
        struct BackupRunning *backups;  /* profile backups in progress (backup.c) */
        unsigned store_jobs;    /* backups, restores, replications using the block store now */
        bool store_pruning;     /* a prune rewrites packs: no other store job meanwhile */
        /* slated's one handle on the block store (backup.c: store_acquire), opened on first use
         * and kept: opening reads every pack's index. Its jobs take turns on store_mu. */
        struct Store *store;
        char *store_path;       /* the directory it was opened at */
        uv_mutex_t store_mu;
        char *desktop_run_dir;  /* <run>/desktops */
        struct Template *templates;     /* instant-clone templates (template.c) */
        Fault crash;            /* SLATE_CRASH_AT (fault tests only) */
};
