/* The RDP side of slate-session: a FreeRDP 2 peer on the accepted socket, TLS only, with the
 * callbacks turned into plain events for the main loop. The only place (with encoder.c) that
 * talks to FreeRDP. Never keeps the password: it is handed over once and wiped here. */
#pragma once
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <freerdp/freerdp.h>
#include "rdp/gfx.h"

typedef struct PeerCallbacks {
        /* Client Info arrived. password is NULL when the client sent none; the callee may
         * read it but must not keep it: it is wiped right after the call. */
        void (*credentials)(void *ud, const char *user, const char *domain, char *password, const char *host,
                            uint32_t width, uint32_t height);
        /* Right after credentials (password already wiped), before the server's Demand Active:
         * may block (bounded) and call peer_preset_size. Optional. */
        void (*before_demand_active)(void *ud);
        /* The client (re)activated at width×height: frames may flow. */
        void (*activated)(void *ud, uint32_t width, uint32_t height);
        void (*key)(void *ud, uint16_t flags, uint16_t code);
        void (*unicode)(void *ud, uint16_t flags, uint16_t code);
        void (*pointer)(void *ud, bool extended, uint16_t flags, uint16_t x, uint16_t y);
        void (*refresh)(void *ud);
        void (*suppress)(void *ud, bool allow);
        void (*frame_ack)(void *ud, uint32_t frame_id);
        /* The graphics pipeline came up or went away (peer_gfx), or the client stopped or resumed
         * acknowledging its frames: frames need a new encoder. */
        void (*graphics_changed)(void *ud);
} PeerCallbacks;

typedef struct Peer Peer;

/* What FreeRDP and OpenSSL do once per process (peer_new calls it): a spare slate-session does
 * it before its client arrives. */
void peer_setup_once(void);
/* peer_setup_once, and the next peer_new's FreeRDP context made ahead, on a placeholder fd that
 * peer_new's socket replaces: a spare does it before its client comes. */
void peer_prepare(void);
/* Take ownership of fd. cert_pem is PEM text (FreeRDP copies it); the key is the process's keyless
 * key (rdp/keyless.h), which must be installed first. */
int peer_new(int fd, const char *cert_pem, const PeerCallbacks *cb, void *ud, Peer **ret);
/* Disconnect (if still connected) and free everything. */
Peer *peer_free(Peer *p);
/* Fill up to max pollfds with what FreeRDP waits on; returns the count. */
int peer_pollfds(Peer *p, struct pollfd *pfd, int max);
/* Let FreeRDP process input; 0, or -ECONNRESET when the client left or broke the protocol. */
int peer_check(Peer *p);
bool peer_is_active(const Peer *p);
rdpContext *peer_context(Peer *p);
/* The graphics pipeline when it is up with H.264 (the client offered it and confirmed), else NULL. */
Gfx *peer_gfx(Peer *p);
void peer_size(const Peer *p, uint32_t *ret_w, uint32_t *ret_h);
/* Make the client's desktop width×height (a reactivation: wait for activated again).
 * 0 when already that size or started, -ENOTSUP when the client cannot resize. */
int peer_resize(Peer *p, uint32_t width, uint32_t height);
/* Before the first activation (from the credentials callback, i.e. before Demand Active): make
 * width×height the desktop the client activates with, so no resize is needed later. A client
 * that turns out unable to resize gets its own size back at activation. */
int peer_preset_size(Peer *p, uint32_t width, uint32_t height);
/* The client's socket (for a bounded wait inside a callback), -1 once disconnected. */
int peer_socket(const Peer *p);
/* Tell the client why its logon failed (logon error info + error info), then close. */
void peer_refuse(Peer *p, uint32_t logon_error, uint32_t errinfo);
/* Close the connection with the given error info (0 = none). */
void peer_close(Peer *p, uint32_t errinfo);
