/* slate-agent's insides, shared by its core (slate-agent.c), its session-script backend
 * (script.c) and its I/O (io.c). Never included outside agent/: the rest of the world knows only agent.h. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <poll.h>
#include <sys/types.h>
#include "agent/agent.h"
#include "agent/proto.h"
#include "common/linebuf.h"
#include "common/username.h"

#define PORTS_DIR "/dev/virtio-ports"
#define DEFAULT_PORT PORTS_DIR "/" AGENT_PORT_NAME
/* virtio-serial returns EOF over and over while no host is connected: poll at this pace. A host
 * is connected but for slated's restarts and a template's frozen guest, whose clones wait this
 * long at most for their agent after the resume. */
#define RECONNECT_POLL_MS 50
/* A port that is not there yet (modules still loading) is looked for again at this pace. */
#define OPEN_RETRY_MS 100
/* --session-script (agent/session-script documents the contract): a start or stop that takes
 * longer than this is killed (its whole process group) and counts as failed. */
#define SCRIPT_TIMEOUT_MS 60000
/* Written by `SCRIPT start`: the pid of the session's leader, and the user it belongs to. When
 * that process exits the user has logged out inside the desktop. */
#define SESSION_PID_FILE "/run/slate/session.pid"
#define SESSION_USER_FILE "/run/slate/session.user"
/* The ready hook (agent/session-ready, installed next to the session script): the user's session
 * runs it when its desktop is usable, and it writes to this file, which the agent makes for each
 * session after `start` (empty, 0600, owned by the user) and watches with inotify. The agent
 * never reads what was written: that the file grew is the whole message. */
#define SESSION_READY_FILE "/run/slate/session-ready"
#define SESSION_READY_HOOK "session-ready"
/* Session disks (disks.c): the slot disks are there from boot, but one hot-plugged just before
 * SESSION_START (the tests do) shows up later, so each is looked for at this pace, this long. */
#define DISKS_POLL_MS 10
#define DISKS_WAIT_MS 10000
/* `modprobe loop` when the guest's init did not load the loop driver: past this it is killed. */
#define DISKS_MODPROBE_TIMEOUT_MS 10000
/* While mounting or unmounting holds the loop, a HEARTBEAT of our own this often. */
#define DISKS_KEEPALIVE_MS 1000
/* e2fsck -p of a profile that was not cleanly unmounted: past this it is killed, the start fails. */
#define DISKS_FSCK_TIMEOUT_MS (5 * 60 * 1000)
/* A busy profile at stop: SIGTERM to what holds it, SIGKILL after this. */
#define DISKS_KILL_GRACE_MS 2000
#define LAYERS_DIR "/run/slate/layers"
/* /etc's overlay writes here (the root fs: slated erases it at logout). */
#define ETC_UPPER_DIR "/var/lib/slate-agent"

/* What disks_mount mounted, so that exactly that is taken down. */
typedef struct AgentMounts {
        unsigned n_layers;
        char layers[AGENT_DISKS_MAX][AGENT_DISK_NAME_MAX + 1];     /* under LAYERS_DIR, message order */
        unsigned overlays;          /* bit k: an overlay on /usr, /opt, /etc (k = 0, 1, 2) */
        bool profile;
        char home[sizeof "/home/" + USER_NAME_MAX];
        uid_t uid;
        char summary[AGENT_STRING_MAX + 1];     /* "profile /home/alice; layers hello,calc" */
        uint64_t keepalive_ms;
} AgentMounts;

typedef enum ScriptJobKind {
        SCRIPT_JOB_NONE,
        SCRIPT_JOB_START,           /* answered STARTED / FAILED */
        SCRIPT_JOB_CLEANUP,         /* `stop` after a failed start: answered by nobody */
        SCRIPT_JOB_STOP,            /* answered STOPPED */
        SCRIPT_JOB_LOGOUT,          /* `stop` after the session ended by itself: LOGOUT */
} ScriptJobKind;

/* One run of the session script at a time, watched from the main loop. */
typedef struct ScriptJob {
        ScriptJobKind kind;
        pid_t pid;
        int pidfd;                  /* readable when the script exited */
        int err_fd;                 /* its stderr: logged, last line kept for FAILED */
        uint64_t deadline_ms;
        char user[USER_NAME_MAX + 1];
        LineBuf err_lines;          /* capped at AGENT_STRING_MAX: a line becomes a detail string */
        char last[AGENT_STRING_MAX + 1];
} ScriptJob;

typedef struct Agent {
        const char *port;
        uint32_t capabilities;
        char boot_id[AGENT_STRING_MAX + 1];
        int fd;
        AgentParser parser;
        const AgentDesk *desk;      /* --test-desktop: sessions are this backend's (test guest only) */
        /* A LOGOUT that happened while no host was connected, told to the next one after READY. */
        bool logout_pending;
        bool connected;             /* a host answered our HELLO on the port */
        const char *session_script; /* --session-script: sessions are the script's */
        ScriptJob job;
        bool script_active;         /* the script's session runs, for script_user */
        char script_user[USER_NAME_MAX + 1];
        int session_pidfd;          /* the session leader from SESSION_PID_FILE, or -1 */
        unsigned stops_waiting;     /* SESSION_STOPs to answer when the running job ends */
        AgentMounts mounts;         /* the running session's disks */
        /* USABLE: the test desktop's is due at usable_due_ms (0: none); the script's comes through
         * ready_fd (inotify on SESSION_READY_FILE; -1: not watched). usable_unsent: usable while
         * no host was connected, told to the next one after READY. */
        uint64_t usable_due_ms;
        int ready_fd;
        bool usable_unsent;
        /* IDENTITY (identity.c): the token the host gave this desktop, in memory only. */
        bool identified;
        uint8_t token[AGENT_TOKEN_SIZE];
} Agent;

#define log_agent(...) (fprintf(stderr, "slate-agent: " __VA_ARGS__), fputc('\n', stderr))

/* io.c */
uint64_t agent_uptime_ms(void);
void agent_sleep_ms(unsigned ms);
int agent_read_line(const char *path, char *buf, size_t size);
/* Blocks while no host is connected (virtio-serial holds writers back): that is the point. */
int agent_send(Agent *a, const AgentMsg *m);
int agent_send_state(Agent *a, uint8_t state, const char *detail);
/* The running session is usable: USABLE now, or to the next host. */
void agent_usable(Agent *a, const char *detail);

/* script.c: sessions run by the session script */
int script_session_start(Agent *a, const AgentMsg *m);
int script_session_stop(Agent *a);
void script_poll(Agent *a);
unsigned script_pollfds(const Agent *a, struct pollfd *pfd, int *timeout_ms);
void script_adopt(Agent *a);
/* The ready hook is installed next to the script: the agent can say USABLE (AGENT_CAP_USABLE). */
bool script_ready_hook_present(const char *script);

/* identity.c: apply the host's IDENTITY and answer IDENTIFIED. */
int identity_apply(Agent *a, const AgentMsg *m);

/* disks.c: the session's disks (SESSION_START's list). Mounting blocks the loop (keeping the
 * host's link alive) and undoes itself on failure; err says why for the host. */
int disks_mount(Agent *a, const AgentMsg *m, char *err, size_t size);
/* Best-effort, after the session's processes ended; a no-op without mounted disks. */
void disks_unmount(Agent *a);
bool disks_active(const Agent *a);
/* STARTED's detail: the disks' summary, then the backend's own detail. */
void disks_detail(const Agent *a, const char *backend, char *out, size_t size);
