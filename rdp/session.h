/* The connection state machine of slate-session: IPC with slated, the RDP peer, the VNC bridge
 * and the frame pump, driven by one poll() loop. */
#pragma once
#include <stdint.h>

enum {
        SESSION_ALARM_HANDSHAKE = 0,
        SESSION_ALARM_SEND_STALL = 1,
        SESSION_ALARM_REFUSAL = 2,
};

/* Arm (ms > 0) or cancel (0) the process watchdog; when it fires the process exits 2. */
void session_alarm(int kind, uint32_t ms);
/* Run one connection to its end; returns the exit code. */
int session_run(int sock, int ipc);
