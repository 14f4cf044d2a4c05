/* Logon and reconnect as step lists: handshake, auth, desktop, agent, attach, first frame,
 * run by steps.c for each connection that presents credentials. The one place that drives a
 * session from credentials to a bridged desktop, and that hears its desktop's and its
 * connection's events (registered downwards at logon_init). */
#pragma once
#include "broker/broker.h"

/* Register the connection events; call before the listener starts. */
void logon_init(Broker *b);
/* Start-up: every session row left by an earlier slated is kept (disconnected, reconnectable)
 * or ended through the logoff list, saying why. Call after the desktops were adopted. */
int logon_restore_all(Broker *b);
/* slated stops: sessions are freed, their rows kept for the next start. */
void logon_release_all(Broker *b);
