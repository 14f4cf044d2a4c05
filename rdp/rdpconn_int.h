/* Private to slate-session's connection (rdpconn.c: the phases, IPC and the loop;
 * rdpconn_frames.c: what goes to the client, screen or console, and its acknowledgements). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "common/ipc.h"
#include "rdp/console.h"
#include "rdp/encoder.h"
#include "rdp/input.h"
#include "rdp/peer.h"
#include "rdp/screens.h"

#define SEND_STALL_MS 30000             /* one frame may take this long to reach the kernel */
#define BLACK_WAIT_MS 10000             /* without progress from slated: a black console waits this long */

/* PH_LOGON: the logon screen waits for the user (the first credentials, or a PAM prompt). */
typedef enum Phase { PH_CONFIG, PH_HANDSHAKE, PH_LOGON, PH_AUTH, PH_REFUSED, PH_ATTACH, PH_RUNNING, PH_END } Phase;

typedef struct RdpConn {
        uint64_t t0;
        int sock, ipc_fd, pending_fd;
        FrameParser parser;
        Phase phase;
        int exit_code;
        uint32_t end_errinfo;           /* error info for the client when we close */
        uint32_t max_w, max_h;
        uint32_t handshake_ms;
        Peer *peer;
        Console *console;
        Encoder *enc;
        uint32_t enc_w, enc_h;
        InputState in;
        const char *codec_pref;
        uint32_t refuse_logon, refuse_errinfo;
        bool reactivated, suppressed, ever_active;
        uint32_t resize_tried_w, resize_tried_h;
        bool cropped;                   /* the client cannot resize: it sees the top-left part */
        uint32_t first_frame_id;        /* the first frame of all (a screen's, most often) */
        bool first_sent, first_acked, first_reported;
        uint32_t first_acked_ms;        /* since accept: IPC_FIRST_FRAME waits for the attach */
        uint32_t first_w, first_h;      /* the first frame's size */
        uint64_t attached_at;
        uint32_t usable_frame_id;       /* the first whole console frame once usable */
        bool usable_sent, usable_reported;
        uint32_t bench_left;            /* extra full frames to measure the codec */
        EncoderStats full_stats;
        uint32_t full_frames;
        uint64_t last_activity_ms;      /* when slated last heard the user is active */

        /* Client Info, kept for a logon typed on the logon screen (no password here). */
        char user[IPC_NAME_MAX + 1], domain[IPC_NAME_MAX + 1], host[IPC_NAME_MAX + 1];
        uint32_t client_w, client_h;

        /* slate-session's own screens (rdp/screens.h), shown until the desktop is usable */
        Screens *screens;
        bool usable;                    /* slated said so (or, with no progress at all, the console's first frame) */
        uint64_t usable_at;             /* when slated said so */
        bool step_seen;                 /* slated reports progress: only IPC_PROGRESS USABLE switches */
        bool showing_console;
        bool failing;                   /* FAILED is on the screen until fail_until */
        uint64_t fail_until;
        bool ipc_closed, end_pending;
        uint32_t pending_errinfo;

        /* the logon screen */
        bool interactive;               /* credentials come from the logon screen */
        unsigned refusals;
        uint64_t logon_until;           /* per prompt: LOGON_WAIT_MS */
} RdpConn;

/* End the connection with exit code and the error info the client is told (once). */
void rdpconn_end(RdpConn *s, int code, uint32_t errinfo);
/* Tell slated a phase of the logon was reached (its timeline). */
void rdpconn_send_phase(RdpConn *s, const char *name);

/* ---- rdpconn_frames.c ---- */
/* IPC_FIRST_FRAME once the first frame was acknowledged and the session is attached. */
void rdpconn_report_first_frame(RdpConn *s);
/* The client acknowledged frame id (PeerCallbacks.frame_ack). */
void rdpconn_frame_ack(void *ud, uint32_t id);
/* Send what is due: slate-session's screen until the desktop is usable, then the console's
 * changes (and the encoder's lossless pass). < 0: the client is gone. */
int rdpconn_pump_frame(RdpConn *s);
