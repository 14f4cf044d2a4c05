/* Typed IPC between slated and slate-session over a socketpair (after OpenBSD imsg and the
 * OpenSSH monitor): frames from common/frame.h, a payload limit checked before allocation
 * (tighter before authentication), one encoder/decoder per message, and SCM_RIGHTS for the
 * desktop console fd. slated permits each message only in the right phase (broker/session.c). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/frame.h"

#define IPC_MAGIC 0x5349            /* "SI" */
#define IPC_VERSION 4            /* 2: no private key in IPC_CONFIG; IPC_SIGN. 3: logon screen and
                                  * progress (IPC_PROGRESS, IPC_PROMPT, IPC_PROMPT_REPLY). 4: spare
                                  * sessions (IPC_CLIENT) */
#define IPC_FRAME_MAX (64u * 1024)  /* a TLS certificate chain fits; nothing else comes close */
#define IPC_PREAUTH_MAX 2048        /* what slate-session may send before authentication */
#define IPC_NAME_MAX 256            /* user, domain, host names */
#define IPC_PASSWORD_MAX 512
#define IPC_TEXT_MAX 1024
#define IPC_PEM_MAX (16u * 1024)
#define IPC_SIGN_MAX 1024           /* a signature request or answer: RSA-8192 (common/keysign.h) */

typedef enum IpcType {
        /* slated → slate-session */
        IPC_CONFIG = 1,       /* TLS certificate (PEM, no key), limits; first message */
        IPC_AUTH_RESULT = 3,  /* logon accepted or refused, with the reason the user sees */
        IPC_ATTACH = 4,       /* + fd: the desktop's VNC console */
        IPC_END = 6,          /* the session ended (logout, admin, VM died): disconnect the client */
        IPC_SIGNATURE = 11,   /* the answer to IPC_SIGN: the signature, or none (refused) */
        IPC_PROGRESS = 12,    /* what the logon is doing now; the desktop is usable; it failed */
        IPC_PROMPT = 13,      /* a PAM conversation message for the logon screen (a prompt waits
                               * for IPC_PROMPT_REPLY; an info or error line does not) */
        IPC_CLIENT = 15,      /* + fd: the accepted client socket, to a spare slate-session started
                               * ahead (slate-session --spare); IPC_CONFIG follows. No payload. */
        /* slate-session → slated */
        IPC_AUTH = 2,         /* credentials from the RDP client info */
        IPC_FIRST_FRAME = 5,  /* the first real frame reached the client: the logon is done */
        IPC_LOGOUT = 7,       /* the client asked to log off (not merely disconnect) */
        IPC_PHASE = 8,        /* timing of a connection phase (tls, ...) for the logon record */
        IPC_ACTIVITY = 9,     /* the user typed or moved the pointer (at most every 10 s) */
        IPC_SIGN = 10,        /* the TLS handshake needs a signature with the server key (common/keysign.h) */
        IPC_PROMPT_REPLY = 14, /* what the user typed at an IPC_PROMPT (wiped after use) */
        _IPC_TYPE_MAX = 16,   /* one past the highest */
} IpcType;

typedef enum IpcAuthStatus {
        IPC_AUTH_OK = 0,
        IPC_AUTH_BAD_CREDENTIALS = 1,
        IPC_AUTH_LOCKED_OUT = 2,      /* rate limit: too many failures, try later */
        IPC_AUTH_NOT_ENTITLED = 3,    /* valid user, no pool for them */
        IPC_AUTH_NO_DESKTOP = 4,      /* pool full and nothing could be booted */
        IPC_AUTH_INTERNAL = 5,
        /* The password was right, but: */
        IPC_AUTH_PASSWORD_EXPIRED = 6,        /* it must be changed (RDP here cannot change it) */
        IPC_AUTH_ACCOUNT_EXPIRED = 7,
        IPC_AUTH_ACCOUNT_DENIED = 8,          /* the account may not log on (PAM's account stack) */
        IPC_AUTH_STATUS_LAST = IPC_AUTH_ACCOUNT_DENIED,
} IpcAuthStatus;

/* IPC_AUTH flags. */
enum {
        IPC_AUTH_INTERACTIVE = 1u << 0, /* typed into slate-session's logon screen: slated may relay
                                         * further PAM prompts (IPC_PROMPT) and the user may retry */
};

/* IPC_PROGRESS kinds. */
typedef enum IpcProgressKind {
        IPC_PROGRESS_STEP = 1,        /* text says what happens now; step of steps for a bar */
        IPC_PROGRESS_USABLE = 2,      /* the desktop is usable: show the console from now on */
        IPC_PROGRESS_FAILED = 3,      /* the session did not come up; text says why; IPC_END follows */
        IPC_PROGRESS_KIND_LAST = IPC_PROGRESS_FAILED,
} IpcProgressKind;

/* IPC_PROMPT styles: PAM's four message styles. */
typedef enum IpcPromptStyle {
        IPC_PROMPT_SECRET = 1,        /* PAM_PROMPT_ECHO_OFF: typed text is not shown */
        IPC_PROMPT_TEXT = 2,          /* PAM_PROMPT_ECHO_ON */
        IPC_PROMPT_ERROR = 3,         /* PAM_ERROR_MSG: no reply */
        IPC_PROMPT_INFO = 4,          /* PAM_TEXT_INFO: no reply */
        IPC_PROMPT_STYLE_LAST = IPC_PROMPT_INFO,
} IpcPromptStyle;

typedef struct IpcMsg {
        IpcType type;
        union {
                struct {
                        char *cert_pem;             /* owned */
                        uint16_t max_width, max_height;
                        uint32_t handshake_timeout_ms;
                        char banner[IPC_TEXT_MAX + 1]; /* the logon screen's message ("" none) */
                } config;
                struct {
                        char user[IPC_NAME_MAX + 1];
                        char domain[IPC_NAME_MAX + 1];
                        char password[IPC_PASSWORD_MAX + 1]; /* wiped by ipc_msg_clear */
                        char client_host[IPC_NAME_MAX + 1];
                        uint16_t width, height;
                        uint8_t flags;              /* IPC_AUTH_* */
                } auth;
                struct {
                        uint8_t status;             /* IpcAuthStatus */
                        char message[IPC_TEXT_MAX + 1];
                } auth_result;
                struct {
                        char desktop_id[IPC_NAME_MAX + 1];
                        char session_id[IPC_NAME_MAX + 1];
                        uint16_t width, height;     /* the guest console size when known, else 0 */
                        bool reconnect;
                } attach;
                struct {
                        uint32_t ms_since_accept;
                        uint32_t width, height;
                } first_frame;
                struct {
                        char reason[IPC_TEXT_MAX + 1];
                } end;
                struct {
                        char name[64];
                        uint32_t ms;
                } phase;
                struct {
                        uint8_t alg;                /* KeySignAlg; in IPC_SIGNATURE 0 = refused */
                        uint16_t len;
                        uint8_t data[IPC_SIGN_MAX];
                } sign;                             /* IPC_SIGN and IPC_SIGNATURE */
                struct {
                        uint8_t kind;               /* IpcProgressKind */
                        uint8_t step, steps;        /* step of steps (0 of 0: no bar) */
                        char title[IPC_NAME_MAX + 1]; /* "Welcome, alice" */
                        char text[IPC_TEXT_MAX + 1];
                } progress;
                struct {
                        uint8_t style;              /* IpcPromptStyle */
                        char text[IPC_TEXT_MAX + 1];
                } prompt;
                struct {
                        char text[IPC_PASSWORD_MAX + 1]; /* wiped by ipc_msg_clear */
                } prompt_reply;
        };
} IpcMsg;

/* Parser with the IPC magic/version and the given payload limit. */
void ipc_parser_init(FrameParser *p, uint32_t max);
/* Decode a frame; -EBADMSG on a malformed payload or unknown type. Call ipc_msg_clear after. */
int ipc_msg_decode(const Frame *f, IpcMsg *ret);
/* Encode as one complete frame appended to w. */
int ipc_msg_encode(const IpcMsg *m, Writer *w);
/* Wipe secrets and free owned strings. */
void ipc_msg_clear(IpcMsg *m);
const char *ipc_type_name(uint8_t type);

/* Blocking send of one message on a socket, with an optional fd (SCM_RIGHTS; -1 = none).
 * The fd may arrive with the bytes of an earlier message in the same read: receivers keep a
 * received fd until the message that carries it (IPC_ATTACH) is complete. */
int ipc_send(int sock, const IpcMsg *m, int fd);
/* Blocking read of exactly one message from sock, no byte beyond it, within timeout_ms:
 * for a request answered at once (IPC_SIGN) while nothing else may be in flight. -ETIMEDOUT,
 * -EPIPE on EOF, -EBADMSG. */
int ipc_recv_one(int sock, uint32_t max, int timeout_ms, IpcMsg *ret);
/* The same, with the fd that came with the message (or -1) in *ret_fd, and timeout_ms < 0 for no
 * limit: a spare slate-session waiting for IPC_CLIENT, the first thing slated sends it. */
int ipc_recv_one_fd(int sock, uint32_t max, int timeout_ms, IpcMsg *ret, int *ret_fd);
/* Read what is available from sock (non-blocking friendly) into buf; returns bytes read,
 * 0 on EOF, -EAGAIN, or -errno. A received fd (at most one per call) goes to *ret_fd, else -1. */
ssize_t ipc_recv(int sock, uint8_t *buf, size_t len, int *ret_fd);
