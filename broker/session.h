/* Sessions: a user bound to a desktop, as a record: identity, state, persistence, the timeline
 * of each logon, reconnect and logoff, lookups and JSON. What happens to a session (logon,
 * reconnect, logoff) is decided by the step lists in logon.c and logoff.c, not here. */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include "agent/proto.h"
#include "broker/broker.h"
#include "broker/steps.h"

/* Timeline: one attempt (logon, reconnect or logoff) with its steps, persisted in order. */
typedef struct SessionStep {
        const char *name;
        uint32_t ms;
        const char *result;     /* ok, skipped, failed, undone, not run */
} SessionStep;

typedef enum SessionState { SESSION_STARTING, SESSION_ACTIVE, SESSION_DISCONNECTED, SESSION_ENDING } SessionState;

struct Session {
        Session *next;
        Broker *b;
        char id[24];
        char *user;
        uint32_t uid;
        char *pool;
        Desktop *desktop;
        SessionState state;
        char *client;
        int64_t since;
        Conn *conn;             /* the client's connection while one is attached or logging on */
        uint16_t width, height;
        bool agent_started;     /* the user's session runs in the guest */
        char *end_reason;
        uint64_t last_activity_ms;
        unsigned attempts;      /* logons and reconnects so far (timeline numbering) */
        StepRun *logon_run;     /* the logon or reconnect in progress, if any (owned by logon.c) */
        void *waiter;           /* a reconnect waiting for that logon to finish (logon.c) */
        SessionStep last[STEPS_MAX];    /* the latest logon or reconnect, for session list */
        size_t n_last;
        uint32_t logon_ms;      /* its accept → usable (the first frame, for an agent that cannot tell) */
        uint32_t first_frame_ms; /* its accept → first frame */
        bool usable;            /* the guest said the user's desktop is usable (or a restart kept it) */
        uv_timer_t timer;       /* disconnect timeout */
        StepRun logoff;         /* the logoff step list (logoff.c) */
        AgentDisk disks[AGENT_DISKS_MAX];       /* attached for the user, told to the agent */
        unsigned n_disks;
        unsigned disk_seq;      /* bumped by each disk step: a late answer of an older one is ignored */
        int handles;
        AuthHandle *pam;        /* the PAM session its first logon opened, closed at its end */
};

const char *session_state_name(SessionState s);
/* A new record (state starting), first in b->sessions. Not persisted yet. */
Session *session_new(Broker *b, const char *user, uint32_t uid, const char *pool, const char *client, uint16_t w,
                     uint16_t h);
/* A record as an earlier slated left it (restart); desktop and timers are the caller's. */
Session *session_from_row(Broker *b, const DbSession *row);
Session *session_find(Broker *b, const char *id);
/* The user's session that is not ending, if any. */
Session *session_find_user(Broker *b, const char *user);
void session_persist(Session *s);
/* Forget: unlink, delete the row and its timeline, free once the handles have closed. */
void session_forget(Session *s);
/* On slated's shutdown: free without touching the database (the next start adopts it). */
void session_release(Session *s);

void session_timeline_add(Session *s, unsigned attempt, const char *kind, const SessionStep *steps, size_t n);
/* "handshake 412, auth 35, ..." for logs and the audit. */
void session_timeline_format(const SessionStep *steps, size_t n, char *buf, size_t size);
json_object *session_json(const Session *s);
/* session_json plus "timeline": every attempt's steps from the database. */
json_object *session_json_full(const Session *s);

void session_audit(Broker *b, const char *kind, const char *user, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* A user's uid in the guest: the host account's, or a stable one from the name. */
uint32_t session_user_uid(const char *user, gid_t *groups, int *ngroups);
