/* Connections: one slate-session child per accepted RDP socket, and the typed IPC with it.
 * The connection owns the IPC and its permit table (a child that asks for anything its phase
 * does not permit is killed) and reports what the child says through the ConnEvents its owner
 * registered (Broker.conn_events). Never decides anything about users or desktops. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "broker/broker.h"
#include "common/ipc.h"

struct ConnEvents {
        void (*on_auth)(Conn *c, IpcMsg *auth);         /* credentials; the password is wiped after */
        void (*on_prompt_reply)(Conn *c, const char *text); /* the user's answer (wiped after) */
        void (*on_first_frame)(Conn *c, uint32_t ms_since_accept);
        void (*on_logout)(Conn *c);
        void (*on_activity)(Conn *c);
        void (*on_closed)(Conn *c);                     /* once; the Conn stays valid while referenced */
};

/* Keep session-spares slate-sessions started ahead (after listener_start; conn_stop_all ends
 * them). */
void conn_spares_start(Broker *b);
/* An accepted socket (taken): to a spare slate-session when one waits, else to a new one. */
void conn_spawn(Broker *b, int sock, const char *addr);
int conn_send(Conn *c, const IpcMsg *m, int fd);
/* IPC_END, then the child disconnects its client. */
void conn_end(Conn *c, const char *reason);
/* Past authentication (tighter pre-auth limits no longer apply), and bridging a desktop. */
void conn_set_state_authed(Conn *c);
void conn_set_state_attached(Conn *c);
/* A prompt of the PAM conversation waits for the user (IPC_PROMPT sent): IPC_PROMPT_REPLY is
 * permitted, once, and auth-timeout stops while the user types; off again when answered. */
void conn_set_prompting(Conn *c, bool on);
/* A refused logon at a logon screen may try again: IPC_AUTH is permitted once more, unless
 * this was the connection's third (false: the caller ends it). */
bool conn_set_state_retry(Conn *c);
/* IPC_AUTH messages the connection sent (the attempt now running included). */
int conn_auth_attempts(const Conn *c);
const char *conn_addr(const Conn *c);
Broker *conn_broker(const Conn *c);
uint64_t conn_accept_ms(const Conn *c);
/* What slate-session reported for a named phase (IPC_PHASE), in ms; 0 when not reported. */
uint32_t conn_phase_ms(const Conn *c, const char *name);
/* The owner's per-connection state (the logon module's). */
void conn_set_owner(Conn *c, void *owner);
void *conn_owner(const Conn *c);
void conn_ref(Conn *c);
void conn_unref(Conn *c);
bool conn_alive(const Conn *c);
/* Connections from addr that have not authenticated yet. */
unsigned conn_count_preauth(Broker *b, const char *addr);
/* slated stops: every child is told to go (they lose the IPC anyway). */
void conn_stop_all(Broker *b);
