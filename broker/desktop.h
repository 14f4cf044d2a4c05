/* Desktops: one VM (through the hypervisor driver) plus its overlay, from boot to erase.
 * A desktop never calls up into pools or sessions: it reports through two event tables, its
 * owner's (the pool manager, Broker.desktop_events) and its claimant's (a logon), registered
 * downwards. A desktop is never reused: destroying it always erases its overlay. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "agent/proto.h"
#include "broker/agentlink.h"
#include "broker/broker.h"
#include "broker/template.h"
#include "imaging/overlay.h"

typedef enum DesktopState {
        DESKTOP_BOOTING,
        DESKTOP_READY,
        DESKTOP_ASSIGNED,
        DESKTOP_DRAINING,
        DESKTOP_DESTROYED,
        DESKTOP_FAILED,
} DesktopState;

struct DesktopEvents {
        /* The agent is up after a boot (not after an adoption). */
        void (*on_ready)(Desktop *d, void *data);
        /* The boot failed (QEMU, overlay, agent or timeout); a destroy follows. */
        void (*on_boot_failed)(Desktop *d, void *data);
        /* The desktop is gone for good (erased); d is freed right after. */
        void (*on_gone)(Desktop *d, void *data);
        /* SESSION_STATE from the guest's agent. */
        void (*on_agent_session)(Desktop *d, uint8_t state, const char *detail, void *data);
        /* The agent's link is READY again after a reconnect (slated restarted and adopted the
         * desktop, or the agent restarted): what could not be sent meanwhile can be now. */
        void (*on_agent_link_ready)(Desktop *d, void *data);
};

/* What a new desktop is made of (the pool and the image version it boots). */
typedef struct DesktopSpec {
        const char *pool;
        const DbImageVersion *version;
        uint64_t memory;
        unsigned vcpus;
        OverlayMode overlay;
        bool clone;             /* from the version's template when there is a ready one */
} DesktopSpec;

/* A clone that is not READY this long after its spawn failed to resume (it normally takes well
 * under a second, a few on a loaded TCG host): destroyed, its template dropped. */
#define DESKTOP_CLONE_TIMEOUT_MS 30000
/* A clone's agent silent this long after its port was connected: connect again (agentlink). */
#define DESKTOP_CLONE_HELLO_NUDGE_MS 5000

struct Desktop {
        Desktop *next;
        Broker *b;
        char id[24];
        char *pool;             /* pool name (the pool may be gone: then the desktop drains) */
        char *image;
        int version;
        char *golden, *kernel, *initrd, *cmdline;
        uint64_t memory;
        unsigned vcpus;
        DesktopState state;
        bool stopping;          /* destroy requested; waiting for QEMU to go */
        bool creating_overlay;  /* overlay job in the thread pool */
        bool adopted;
        bool touched;           /* a user session was started in it: never released, only destroyed */
        char *destroy_reason;
        OverlayMode overlay_mode;
        Overlay *overlay;
        char *overlay_path;
        char *run_dir;
        /* Its QEMU's uid and gid: its own from the vm-uid range, or vm-user's, or (uid_t)-1 when
         * slated is not root. The run dir's owner says which after a restart. */
        uid_t uid;
        gid_t gid;
        char *lent[_HV_SLOT_MAX];       /* a user's disk lent to uid while attached, given back at destroy */
        HvVm *vm;
        pid_t pid;
        AgentLink *agent;
        /* The claimant (a session being logged on or using the desktop), or none. */
        char claim_id[24];
        const DesktopEvents *claim_ev;
        void *claim_data;
        char *agent_version, *boot_id;
        uint32_t agent_caps;    /* AGENT_CAP_* from the agent's hello */
        int64_t created;        /* unix seconds */
        uint64_t boot_start_ms, ready_ms;
        uint64_t spawn_ms;      /* its QEMU was started (0: adopted) */
        /* Claimed by a logon not yet usable: spare boots wait until this (now_ms), or until the
         * logon says usable (pool.c: the refill hold); 0 = holds nothing. */
        uint64_t hold_until_ms, claim_ms;
        uv_timer_t boot_timer;
        /* Instant clones: started from this template (its name, files and checks), else cold.
         * cloned: its QEMU was started from a template (kept in the database, so an adopted
         * desktop still says so; clone is this slated's own, with tmpl). */
        bool clone, cloned;
        TemplateUse tmpl;
        int state_fd;           /* the template's state, opened by the overlay job for the restore */
        /* Its identity (IDENTITY to the agent, IDENTIFIED back): none before the agent is ready.
         * The token itself never leaves memory; token_id (a hash prefix) is what is shown. */
        bool identifying;
        uint8_t token[AGENT_TOKEN_SIZE];
        char sent_boot_id[AGENT_BOOT_ID_MAX + 1];
        char machine_id[AGENT_MACHINE_ID_LEN + 1], hostname[AGENT_HOSTNAME_MAX + 1];
        char token_id[17], rng_sample[2 * AGENT_RNG_SAMPLE_SIZE + 1];
        uint8_t identity_flags;
};

const char *desktop_state_to_string(DesktopState s);
int desktop_state_from_string(const char *s, DesktopState *ret);
Desktop *desktop_find(Broker *b, const char *id);
/* Create a desktop and start booting it (overlay in the thread pool, then the VM). */
int desktop_create(Broker *b, const DesktopSpec *spec, Desktop **ret);
/* Destroy: stop the VM, erase the overlay, remove the run dir and the row. Idempotent. */
void desktop_destroy(Desktop *d, const char *reason);
/* Re-attach a desktop found in the database at start-up; destroys it when it cannot be adopted. */
void desktop_adopt(Broker *b, const DbDesktop *row);
/* On shutdown: let the VM run on (the next slated adopts it), free the in-memory state. */
void desktop_release(Desktop *d);
void desktop_persist(Desktop *d);
uint64_t desktop_overlay_bytes(const Desktop *d);
/* Desktops (not destroyed) booted from this image version. */
unsigned desktop_count_version(Broker *b, const char *image, int version);

/* Claims: a claimed desktop reports to its claimant too; release drops the claim. */
void desktop_claim(Desktop *d, const char *claim_id, const DesktopEvents *ev, void *data);
void desktop_unclaim(Desktop *d);
static inline bool desktop_claimed(const Desktop *d) { return d->claim_ev != NULL; }

/* The user's session inside the guest, through the agent. */
/* SESSION_START to the agent, with the disks attached for the user (profile, app layers). */
int desktop_session_start(Desktop *d, const char *user, uint32_t uid, uint16_t w, uint16_t h,
                          const AgentDisk *disks, unsigned n_disks);
/* Put a user's disk into a slot (marks the desktop touched: never released to another user), empty it. */
int desktop_disk_attach(Desktop *d, const HvDisk *disk, HvDone done, void *userdata);
int desktop_disk_detach(Desktop *d, HvSlot slot, HvDone done, void *userdata);
int desktop_session_stop(Desktop *d, const char *reason);
bool desktop_agent_ready(const Desktop *d);
/* Its agent link is being made again (not failed): it will be READY or fail soon. */
bool desktop_agent_reconnecting(const Desktop *d);
/* A booting desktop's boot timeout (limit_ms) was reached after waited_ms: 0 when it has
 * failed, else how much longer to wait. A spare boots at idle CPU priority, so on a busy host it
 * may be starved: it fails only once it had limit_ms of CPU (cpu_ms, or unknown: UINT64_MAX),
 * or after BOOT_WALL_FACTOR x limit_ms of wall time whatever it had. A desktop a user waits
 * for runs at normal priority and has limit_ms of wall time. */
#define BOOT_WALL_FACTOR 10
uint64_t desktop_boot_wait_ms(bool background, uint64_t cpu_ms, uint64_t waited_ms, uint64_t limit_ms);
/* The desktop's console, connected (for slate-session): an fd the caller owns. */
int desktop_console_open(Desktop *d, int *ret_fd);
