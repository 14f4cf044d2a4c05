/* slated's side of the guest agent channel: connects to the VM's virtio-serial socket, enforces
 * the per-state permit table, sends heartbeats and declares the agent lost when they stop.
 * The guest is hostile: a bad frame or an unpermitted message fails this one desktop only. */
#pragma once
#include <stdbool.h>
#include <uv.h>
#include "agent/proto.h"

typedef struct AgentLink AgentLink;

typedef enum AgentLinkState {
        AGENT_LINK_CONNECTING,
        AGENT_LINK_AWAIT_HELLO,
        AGENT_LINK_AWAIT_READY,
        AGENT_LINK_READY,
        AGENT_LINK_FAILED,
} AgentLinkState;

typedef struct AgentLinkCallbacks {
        void (*on_hello)(AgentLink *l, const AgentMsg *hello, void *userdata);
        void (*on_ready)(AgentLink *l, void *userdata);
        /* SESSION_STATE from the guest (started, usable, stopped, user logged out, failed). USABLE
         * comes only after STARTED (or an adopted session): otherwise the link fails. */
        void (*on_session_state)(AgentLink *l, const AgentMsg *m, void *userdata);
        /* IDENTIFIED: the answer to the IDENTITY the host sent (desktop.c checks it). */
        void (*on_identified)(AgentLink *l, const AgentMsg *m, void *userdata);
        /* Protocol violation or heartbeats lost: the desktop should be replaced. Called once. */
        void (*on_failure)(AgentLink *l, const char *reason, void *userdata);
} AgentLinkCallbacks;

/* Opens the channel to the guest (the hypervisor driver's agent_open): a connected fd, or a
 * negative errno while the VM is not listening yet (the link retries until it is). */
typedef int (*AgentLinkOpen)(void *data, int *ret_fd);

int agent_link_start(uv_loop_t *loop, AgentLinkOpen open, void *open_data, unsigned heartbeat_interval_s,
                     unsigned heartbeat_misses, const AgentLinkCallbacks *cb, void *userdata, AgentLink **ret);
/* Close and free (asynchronously, safe from within a callback). */
void agent_link_free(AgentLink *l);
AgentLinkState agent_link_state(const AgentLink *l);
/* Send a host → agent message (SESSION_START, SESSION_STOP). -ENOTCONN unless ready. */
int agent_link_send(AgentLink *l, const AgentMsg *m);
/* The desktop was adopted with a user's session running in it (a restart): the guest may say
 * USABLE for it without a STARTED on this link. */
void agent_link_session_adopt(AgentLink *l);
/* No HELLO ms after connecting: close and connect again (checked at each heartbeat tick). For a
 * clone, whose guest can miss the port's open event when it comes as the state loads. */
void agent_link_hello_nudge(AgentLink *l, unsigned ms);
/* Is the message type allowed from the guest in this state? (the permit table) */
bool agent_link_permits(AgentLinkState state, uint8_t type);
