/* Password authentication and PAM sessions (the only PAM user in Slate) and the logon rate
 * limiter. Every auth_pam_* and auth_session_* call blocks (PAM modules may) and runs on the
 * logon threads, never on the loop; the limiter is plain data used from the loop. Passwords are
 * never logged and are wiped after use. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "common/ipc.h"

/* One PAM handle, from authentication to the end of the PAM session it opens. */
typedef struct AuthHandle AuthHandle;

/* The rest of a PAM conversation, for a logon screen (an interactive logon): every message
 * after the first password prompt goes to ask, on the logon thread, which blocks until the user
 * answered (a prompt: *ret_reply, malloc'd, wiped and freed by PAM) or the message is shown
 * (IPC_PROMPT_ERROR, IPC_PROMPT_INFO: ret_reply is NULL). Non-zero ends the conversation (the
 * user left, too many prompts, no answer in time): PAM gets PAM_CONV_ERR. */
typedef struct AuthAsk {
        int (*ask)(void *ud, IpcPromptStyle style, const char *text, char **ret_reply);
        void *ud;
} AuthAsk;

/* Authenticate, then check the account. 0: both passed; *ret_user = the name PAM settled on
 * (caller frees); *ret_h (when ret_h is not NULL) the authenticated handle, for
 * auth_session_open or auth_session_end. Refusals (*ret_error says PAM's words, caller frees):
 *  -EACCES: wrong credentials or unknown user, or any refusal by the authentication stack;
 *  -EKEYEXPIRED: the password was right but has expired (PAM_NEW_AUTHTOK_REQD);
 *  -EKEYREVOKED: the password was right but the account has expired (PAM_ACCT_EXPIRED);
 *  -EPERM: the password was right but the account may not log on (PAM_PERM_DENIED);
 *  -ENOMSG: the stack asked more than the password (a one-time code) and ask is NULL;
 *  -EIO: PAM itself failed.
 * ask NULL (a client that sent its password): only the password prompt is answered. With ask
 * (a logon screen), the first secret prompt still gets password and everything else goes to
 * the user; an expired password (PAM_NEW_AUTHTOK_REQD) is changed on the spot through it
 * (pam_chauthtok with PAM_CHANGE_EXPIRED_AUTHTOK): a change that succeeds lets the logon go
 * on, one that fails is -EKEYEXPIRED with *ret_error saying why. */
int auth_pam_check(const char *service, const char *user, const char *password, const char *rhost,
                   const AuthAsk *ask, AuthHandle **ret_h, char **ret_user, char **ret_error);
/* The check changed an expired password (through ask) before it passed. */
bool auth_password_changed(const AuthHandle *h);
/* A logon is a login: pam_setcred(PAM_ESTABLISH_CRED), then pam_open_session (the service's
 * session stack: pam_limits, lastlog and wtmp, pam_exec hooks). -EIO with *ret_error on
 * failure; the handle still goes to auth_session_end, which undoes what did succeed. */
int auth_session_open(AuthHandle *h, char **ret_error);
/* A PAM session an earlier slated opened (a session adopted across a restart): no PAM call
 * now; auth_session_end starts a fresh handle for the user and closes the session with it
 * (modules that kept data in the original handle, e.g. pam_systemd, do not see it). */
AuthHandle *auth_session_adopted(const char *service, const char *user, const char *rhost);
/* The end of a handle: pam_close_session and pam_setcred(PAM_DELETE_CRED) for what was
 * opened, then pam_end; frees h (NULL is fine). Failures are logged; -EIO. */
int auth_session_end(AuthHandle *h);

/* Failed-logon limiter (docs/design.md "Logon limiter"). Records, each forgotten after lockout_s
 * without a failure:
 *  - per (user, source): after free_failures, each attempt waits a growing delay (1 s doubling to
 *    30 s); after lockout_failures that source is locked out for that user for lockout_s;
 *  - per user, all sources: after 2 x lockout_failures, attempts from sources that are not known
 *    good for the user wait the delay too, but the user is never locked out: an attacker can
 *    slow an account, not close it;
 *  - per source, all users (password spraying): after 4 x lockout_failures, locked for lockout_s;
 *  - known good: the last 4 sources a user logged on from (30 days); they skip the per-user delay.
 * A source is an IPv4 address (or its /ipv4_prefix) or an IPv6 /64. User names are compared
 * case-folded. An attempt counts when it starts (auth_limiter_begin), so guesses in flight at
 * once all count, and a client that leaves mid-check does not escape it. The records live in a
 * fixed table (65536); when a bucket is full, the record with the fewest failures goes, never
 * one that holds a lockout for a flood of fresh names. */
typedef struct AuthLimiter AuthLimiter;
AuthLimiter *auth_limiter_new(unsigned free_failures, unsigned lockout_failures, unsigned lockout_s);
void auth_limiter_free(AuthLimiter *l);
/* IPv4 addresses of one /bits (8-32, default 32) count as one source. */
void auth_limiter_set_ipv4_prefix(AuthLimiter *l, unsigned bits);
/* An attempt starts: 0 when it may go ahead (it is counted now, as a failure until
 * auth_limiter_end says otherwise), else the ms it must still wait (nothing counted); *locked
 * when that is a lockout rather than a delay. */
uint64_t auth_limiter_begin(AuthLimiter *l, const char *user, const char *addr, uint64_t now_ms, bool *locked);
/* auth_pam_check's result counts as a guess: anything but a success or a refusal after the
 * password was shown right (expired password or account, account denied). A stack that asked
 * for more than the password (-ENOMSG) counts: nothing says the password was right. */
bool auth_result_is_guess(int pam_r);
/* How a begun attempt ended, as auth_pam_check's result. A success (0) forgives it, clears
 * the user's records (also under canonical, PAM's name for the user, when given) and makes the
 * source known good for them. A refusal that is not a guess takes the attempt's count back and
 * nothing more. A guess stays counted. */
void auth_limiter_end(AuthLimiter *l, const char *user, const char *canonical, const char *addr, int pam_r,
                      uint64_t now_ms);
