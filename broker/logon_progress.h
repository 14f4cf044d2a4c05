/* What a running logon tells the user's slate-session for its progress screen (rdp/screens.h):
 * the step under way in the user's words, that the desktop is usable, or why it did not come up.
 * Words for the user only: the log and the audit say the details. */
#pragma once
#include "broker/broker.h"
#include "broker/steps.h"

/* run waits on its current step: its words, with its place in the list. A step without words
 * (the handshake, the first frame) changes nothing on the screen and sends nothing. */
void logon_progress_step(Conn *c, const char *user, const StepRun *run);
/* The desktop is usable: the client shows it. */
void logon_progress_usable(Conn *c, const char *user);
/* The session did not come up: why (an IPC_END follows). */
void logon_progress_failed(Conn *c, const char *user, const char *why);
