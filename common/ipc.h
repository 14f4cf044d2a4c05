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
#define IPC_VERSION 2            /* 2: no private key in IPC_CONFIG; IPC_SIGN */
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
        /* slate-session → slated */
        IPC_AUTH = 2,         /* credentials from the RDP client info */
        IPC_FIRST_FRAME = 5,  /* the first real frame reached the client: the logon is done */
        IPC_LOGOUT = 7,       /* the client asked to log off (not merely disconnect) */
        IPC_PHASE = 8,        /* timing of a connection phase (tls, ...) for the logon record */
        IPC_ACTIVITY = 9,     /* the user typed or moved the pointer (at most every 10 s) */
        IPC_SIGN = 10,        /* the TLS handshake needs a signature with the server key (common/keysign.h) */
        _IPC_TYPE_MAX = 12,   /* one past the highest */
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

typedef struct IpcMsg {
        IpcType type;
        union {
                struct {
                        char *cert_pem;             /* owned */
                        uint16_t max_width, max_height;
                        uint32_t handshake_timeout_ms;
                } config;
                struct {
                        char user[IPC_NAME_MAX + 1];
                        char domain[IPC_NAME_MAX + 1];
                        char password[IPC_PASSWORD_MAX + 1]; /* wiped by ipc_msg_clear */
                        char client_host[IPC_NAME_MAX + 1];
                        uint16_t width, height;
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
/* Read what is available from sock (non-blocking friendly) into buf; returns bytes read,
 * 0 on EOF, -EAGAIN, or -errno. A received fd (at most one per call) goes to *ret_fd, else -1. */
ssize_t ipc_recv(int sock, uint8_t *buf, size_t len, int *ret_fd);
