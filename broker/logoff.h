/* Logoff as a step list: detach the client, stop the user's session in the guest, destroy the
 * desktop (erasing its overlay), close the PAM session. Recorded in the session row as "ending" first, so a slated
 * killed half-way finishes it at the next start. Also the timers that end sessions: the
 * disconnect timeout and the idle sweep. */
#pragma once
#include <stdint.h>
#include "broker/broker.h"

/* End a session (administrator, idle or disconnect timeout, logout, desktop gone): the row
 * says ending, with the reason, then the logoff list runs. Idempotent. A first logon still in
 * progress is failed instead (its undo ends it); a reconnect in progress is failed first. */
void logoff_start(Session *s, const char *reason);
/* The client went away from an established session: keep it for the pool's disconnect timeout. */
void logoff_disconnected(Session *s);
/* Events the logoff waits for (from the session's desktop). */
void logoff_agent_stopped(Session *s);
void logoff_desktop_gone(Session *s);
/* End a PAM handle on the logon threads (closing the PAM session it opened), never on the loop;
 * for handles no session waits on (a failed logon's, a second one of a racing logon). */
void logoff_pam_end(Broker *b, AuthHandle *h);
/* The idle sweep (sessions without input for the pool's idle timeout end). */
void logoff_sweep_start(Broker *b);
void logoff_sweep_stop(Broker *b);
