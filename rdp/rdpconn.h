/* One RDP connection in slate-session, from accept to end: IPC with slated, the RDP peer, the
 * desktop console and the frame pump, driven by one poll() loop. (Not broker/session.c, which is
 * slated's record of a user's session.) Never acts on a slated message outside its phase. */
#pragma once
#include <stdint.h>
#include "rdp/screen.h"

enum {
        RDPCONN_ALARM_HANDSHAKE = 0,
        RDPCONN_ALARM_SEND_STALL = 1,
        RDPCONN_ALARM_REFUSAL = 2,
};

/* The process watchdog (rdpconn_alarm.c): install once, then arm (ms > 0) or cancel (0); when it
 * fires the process exits 2. */
void rdpconn_alarm_init(void);
void rdpconn_alarm(int kind, uint32_t ms);
/* Run one connection to its end; returns the exit code. screen (made before the sandbox) draws
 * the logon and progress screens; without text (no font) a client without a password is refused. */
int rdpconn_run(int sock, int ipc, Screen *screen);
