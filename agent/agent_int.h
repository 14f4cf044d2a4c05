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
/* virtio-serial returns EOF over and over while no host is connected: poll at this pace. */
#define RECONNECT_POLL_MS 200
/* A port that is not there yet (modules still loading) is looked for again at this pace. */
#define OPEN_RETRY_MS 100
/* --session-script (agent/session-script documents the contract): a start or stop that takes
 * longer than this is killed (its whole process group) and counts as failed. */
#define SCRIPT_TIMEOUT_MS 60000
/* Written by `SCRIPT start`: the pid of the session's leader, and the user it belongs to. When
 * that process exits the user has logged out inside the desktop. */
#define SESSION_PID_FILE "/run/slate/session.pid"
#define SESSION_USER_FILE "/run/slate/session.user"

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
} Agent;

#define log_agent(...) (fprintf(stderr, "slate-agent: " __VA_ARGS__), fputc('\n', stderr))

/* io.c */
uint64_t agent_uptime_ms(void);
int agent_read_line(const char *path, char *buf, size_t size);
/* Blocks while no host is connected (virtio-serial holds writers back): that is the point. */
int agent_send(Agent *a, const AgentMsg *m);
int agent_send_state(Agent *a, uint8_t state, const char *detail);

/* script.c: sessions run by the session script */
int script_session_start(Agent *a, const AgentMsg *m);
int script_session_stop(Agent *a);
void script_poll(Agent *a);
unsigned script_pollfds(const Agent *a, struct pollfd *pfd, int *timeout_ms);
void script_adopt(Agent *a);
