/* slated's in-memory model: pools and desktops, owned by one Broker on one libuv loop.
 * Shared by slated's own files only (desktop.c, pool.c, images.c, api.c, reconcile.c, slated.c). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>
#include "broker/agentlink.h"
#include "broker/db.h"
#include "broker/fault.h"
#include "broker/hv.h"
#include "common/config.h"
#include "imaging/overlay.h"

typedef struct Broker Broker;
typedef struct Pool Pool;
typedef struct Desktop Desktop;
typedef struct Control Control;
typedef struct Session Session;
typedef struct Conn Conn;
typedef struct AuthLimiter AuthLimiter;
struct IpcMsg;

typedef enum DesktopState {
        DESKTOP_BOOTING,
        DESKTOP_READY,
        DESKTOP_ASSIGNED,
        DESKTOP_DRAINING,
        DESKTOP_DESTROYED,
        DESKTOP_FAILED,
} DesktopState;

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
        char **entitlements;    /* "user:NAME", "group:NAME", "all" */
        size_t n_entitlements;
        unsigned failures;      /* consecutive boot failures */
        uint64_t retry_after_ms;
};

struct Desktop {
        Desktop *next;
        Broker *b;
        char id[24];
        char *pool;             /* pool name (the pool may be gone: then the desktop drains) */
        char *image;
        int version;
        char *golden, *kernel, *initrd, *cmdline;
        DesktopState state;
        bool stopping;          /* destroy requested; waiting for QEMU to go */
        bool creating_overlay;  /* overlay job in the thread pool */
        bool adopted;
        char *destroy_reason;
        OverlayMode overlay_mode;
        Overlay *overlay;
        char *overlay_path;
        char *run_dir;
        HvVm *vm;
        pid_t pid;
        AgentLink *agent;
        Session *session;       /* the session using (or waiting for) this desktop */
        char *agent_version, *boot_id;
        int64_t created;        /* unix seconds */
        uint64_t boot_start_ms, ready_ms;
        uv_timer_t boot_timer;
        bool boot_timer_active;
};

struct Broker {
        uv_loop_t *loop;
        SlateConfig *cfg;
        Db *db;
        const HvDriver *hv;
        HvAccel accel;
        char *accel_reason;
        uid_t vm_uid;           /* (uid_t)-1 when not running as root */
        gid_t vm_gid, kvm_gid;
        Pool *pools;
        Desktop *desktops;
        unsigned boots_in_flight;
        unsigned boot_parallel;
        unsigned boot_timeout_s;
        uv_timer_t tick;
        uv_timer_t kick;
        Control *control;
        uint64_t start_ms;
        bool shutting_down;
        Session *sessions;
        Conn *conns;
        unsigned preauth;       /* connections not yet past authentication */
        AuthLimiter *limiter;
        char *tls_cert_pem, *tls_key_pem;
        uid_t session_uid;      /* slate-session runs as this when slated is root */
        gid_t session_gid;
        uv_tcp_t listeners[8];
        unsigned n_listeners;
        char *overlay_dir;      /* <state>/overlays */
        char *image_dir;        /* <state>/images */
        char *desktop_run_dir;  /* <run>/desktops */
        Fault crash;            /* SLATE_CRASH_AT (fault tests only) */
};

/* desktop.c */
const char *desktop_state_to_string(DesktopState s);
int desktop_state_from_string(const char *s, DesktopState *ret);
Desktop *desktop_find(Broker *b, const char *id);
/* Create a desktop for pool p from the image's current version and start booting it. */
int desktop_create(Broker *b, Pool *p);
/* Destroy: stop QEMU, erase the overlay, remove the run dir and the database row. Idempotent. */
void desktop_destroy(Desktop *d, const char *reason);
/* Re-attach a desktop found in the database at start-up; destroys it when it cannot be adopted. */
void desktop_adopt(Broker *b, const DbDesktop *row);
/* On shutdown: let the VM run on (the next slated adopts it), free the in-memory state. */
void desktop_release(Desktop *d);
void desktop_persist(Desktop *d);
uint64_t desktop_overlay_bytes(const Desktop *d);
/* Count desktops of a pool by state (ready, booting); total excludes destroyed ones. */
void pool_counts(Broker *b, const char *pool, unsigned *ready, unsigned *booting, unsigned *assigned,
                 unsigned *total);

/* pool.c */
Pool *pool_find(Broker *b, const char *name);
int pool_load_all(Broker *b);
/* Timers exist from init (start-up reconciliation may kick); ticks run from start. */
void pool_manager_init(Broker *b);
void pool_manager_start(Broker *b);
void pool_manager_kick(Broker *b);   /* re-evaluate soon (after a change) */
void pool_free(Pool *p);
/* A desktop of the pool failed to boot / became ready: failures back the pool off. */
void pool_note_failure(Broker *b, const char *pool);
void pool_note_success(Broker *b, const char *pool);

/* images.c: the golden image catalogue (database + store on disk). */
int images_current(Broker *b, const char *name, DbImageVersion **ret_v, DbImageVersion **ret_all, size_t *ret_n);
unsigned images_version_use_count(Broker *b, const char *name, int version);
int images_current_version(Broker *b, const char *name);   /* 0 when none */

/* Take an idle ready desktop of the pool for a session, or NULL. */
Desktop *pool_desktop_take(Broker *b, Pool *p);
bool pool_entitles(const Pool *p, const char *user, gid_t *groups, int ngroups);
void pool_load_entitlements(Broker *b, Pool *p);
/* desktop.c: start/stop a session in the guest */
int desktop_session_start(Desktop *d, const char *user, uint32_t uid, uint16_t w, uint16_t h);
int desktop_session_stop(Desktop *d, const char *reason);
bool desktop_agent_ready(const Desktop *d);

/* listener.c: RDP listeners and slate-session children */
int listener_start(Broker *b);
void listener_stop(Broker *b);
int conn_send(Conn *c, const struct IpcMsg *m, int fd);
void conn_end(Conn *c, const char *reason);     /* IPC_END, then the child disconnects its client */
void conn_set_state_authed(Conn *c, Session *s);
void conn_set_state_attached(Conn *c);
const char *conn_addr(const Conn *c);
Broker *conn_broker(const Conn *c);
uint64_t conn_accept_ms(const Conn *c);
void conn_ref(Conn *c);
void conn_unref(Conn *c);
bool conn_alive(const Conn *c);

/* session.c */
void session_conn_auth(Conn *c, struct IpcMsg *auth);
void session_conn_first_frame(Conn *c, Session *s, uint32_t ms);
void session_conn_logout(Conn *c, Session *s);
void session_conn_closed(Conn *c, Session *s);
void session_conn_activity(Conn *c, Session *s);
void session_idle_sweep(Broker *b);
void session_on_desktop_ready(Session *s);
void session_on_desktop_gone(Session *s);
void session_on_agent_state(Session *s, uint8_t state, const char *detail);
void session_end(Session *s, const char *reason);
const char *session_id(const Session *s);
int session_load_all(Broker *b);
void session_release_all(Broker *b);
void session_register(Control *c);

/* reconcile.c */
int reconcile_startup(Broker *b);

/* api.c / images.c: control handlers registration */
void api_register(Control *c);
void images_register(Control *c);
void images_gc_register(Control *c);
