/* Logon and reconnect (logon.h): one Logon per connection that presents credentials, running
 * one step list from the client's handshake to a usable desktop (which comes after its first
 * frame). Each step is one function below; the runner (steps.c) times them, records them in
 * the session's timeline and the audit, and on failure undoes the steps done, newest first.
 * Adding a step (app layers, the profile disk) is one row and one function. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "broker/auth.h"
#include "broker/conn.h"
#include "broker/desktop.h"
#include "broker/logoff.h"
#include "broker/logon.h"
#include "broker/logon_progress.h"
#include "broker/userdisks.h"
#include "broker/pool.h"
#include "broker/prompter.h"
#include "broker/session.h"
#include "broker/workq.h"
#include "common/log.h"
#include "common/username.h"
#include "common/util.h"

/* The auth step has no timeout of its own: the connection bounds it (auth-timeout for PAM's
 * own time, logon-screen-timeout for a user at a logon screen), and ending the connection
 * fails the step and ends the conversation. */
#define AUTH_TIMEOUT_MS 0
/* A logon screen's conversation, per attempt: prompts beyond the password (a code, a new
 * password twice, ...) and how long the user may take over each. */
#define LOGON_PROMPTS_MAX 8
#define LOGON_PROMPT_TIMEOUT_MS 120000
#define AGENT_START_TIMEOUT_MS 30000
/* Verifying layers whose files changed since their last hash (GB/s) and hot-plugging them. */
#define APPS_TIMEOUT_MS 30000
/* A first logon creates the disk: qemu-img's LUKS benchmark alone takes ~3 s, more under load. */
#define PROFILE_TIMEOUT_MS 60000
/* pam_open_session's modules (lastlog, limits, a site's pam_exec hook) are quick; a hung one
 * fails this logon rather than holding it (its thread stays, as with auth). */
#define PAM_SESSION_TIMEOUT_MS 30000
/* Failed logons are answered no sooner than this after the request, so unknown users, locked
 * accounts and wrong passwords all look alike from outside. */
#define AUTH_FAIL_PAD_MS 700

typedef struct Logon {
        Broker *b;
        Conn *conn;             /* NULL once the client left */
        Session *s;             /* the session being logged on, or reconnected */
        bool reconnect;
        bool started;           /* the step list ran (a refusal before it has no timeline) */
        StepRun run;
        int refs;               /* the connection, the step list, the PAM job, the reply pad */
        int open_handles;
        uv_timer_t pad;
        uv_work_t work;
        char user[IPC_NAME_MAX + 1];
        char *password;         /* mlock'd, wiped right after PAM */
        bool interactive;       /* typed into a logon screen: the conversation is relayed, retries */
        bool prompted;          /* the user was asked more than the password */
        Prompter *prompter;     /* while the PAM check runs, for a logon screen */
        uint64_t end_ms;        /* when the step list finished */
        char addr[64];
        uint16_t width, height;
        char *mapped_user, *pam_error;
        int pam_r;
        AuthHandle *pam;        /* from authentication until the session takes it (or it ends) */
        bool pam_busy;          /* a PAM job on the logon threads uses it */
        uint64_t start_ms;      /* the request, or the user's last answer to a prompt: the pad's start */
        IpcAuthStatus status;   /* the answer a refusal gets; OK once the client was let in */
        uint32_t first_frame_ms; /* accept → first frame, as slate-session measured it */
        bool agent_wait;        /* the agent step waits for the desktop's agent link to be READY */
        bool usable_skipped;    /* the usable step had nothing to wait for (unlike a client leaving) */
        bool usable_unknown;    /* ...because the agent cannot say: the first frame counts as usable */
        char message[IPC_TEXT_MAX + 1];
} Logon;

static const DesktopEvents claim_events;

/* The user's name: PAM's (it may map the one given) once it answered. */
static const char *user_of(const Logon *lg) { return lg->mapped_user ? lg->mapped_user : lg->user; }

/* ---- lifetime ---- */

static void logon_closed(uv_handle_t *h)
{
        Logon *lg = h->data;
        if (--lg->open_handles > 0)
                return;
        free(lg->mapped_user);
        free(lg->pam_error);
        free(lg);       /* its PAM handle went to the session or to logoff_pam_end */
}

static void logon_unref(Logon *lg)
{
        if (--lg->refs > 0)
                return;
        if (lg->conn)
                conn_unref(TAKE_PTR(lg->conn));
        lg->open_handles = 2;
        uv_close((uv_handle_t *)&lg->pad, logon_closed);
        lg->run.timer.data = lg;
        steps_close(&lg->run, logon_closed);
}

static void password_wipe(Logon *lg)
{
        if (!lg->password)
                return;
        size_t plen = strlen(lg->password) + 1;
        secret_wipe(lg->password, plen);
        munlock(lg->password, plen);
        free(TAKE_PTR(lg->password));
}

static void refuse(Logon *lg, IpcAuthStatus st, const char *fmt, ...) _printf_(3, 4);
static void refuse(Logon *lg, IpcAuthStatus st, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(lg->message, sizeof lg->message, fmt, ap);
        va_end(ap);
        lg->status = st;
}

static void reply(Logon *lg)
{
        if (lg->conn && conn_alive(lg->conn)) {
                IpcMsg m = { .type = IPC_AUTH_RESULT };
                m.auth_result.status = (uint8_t)lg->status;
                snprintf(m.auth_result.message, sizeof m.auth_result.message, "%s", lg->message);
                conn_send(lg->conn, &m, -1);
        }
}

/* A logon screen's user may try again (the connection allows three tries): the connection goes
 * back to waiting for credentials, and the next IPC_AUTH starts a Logon of its own. After the
 * third the connection ends. */
static void retry_or_end(Logon *lg)
{
        Conn *c = lg->conn;
        if (!lg->interactive || !c || !conn_alive(c) || conn_owner(c) != lg)
                return;
        if (!conn_set_state_retry(c)) {
                log_info("connection %s: %d failed logons at the logon screen; closing it", lg->addr,
                         conn_auth_attempts(c));
                conn_end(c, "too many failed logons");
                return;
        }
        conn_set_owner(c, NULL);
        logon_unref(lg);        /* the connection's reference: it is no longer ours */
}

static void pad_cb(uv_timer_t *t)
{
        Logon *lg = t->data;
        reply(lg);
        retry_or_end(lg);
        logon_unref(lg);
}

/* A refusal is answered after the pad, never sooner. */
static void reply_refusal_padded(Logon *lg)
{
        uint64_t elapsed = now_ms() - lg->start_ms;
        lg->refs++;
        uv_timer_start(&lg->pad, pad_cb, elapsed < AUTH_FAIL_PAD_MS ? AUTH_FAIL_PAD_MS - elapsed : 0, 0);
}

static void reply_ok(Logon *lg, const char *fmt, ...) _printf_(2, 3);
static void reply_ok(Logon *lg, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(lg->message, sizeof lg->message, fmt, ap);
        va_end(ap);
        lg->status = IPC_AUTH_OK;
        reply(lg);
}

/* ---- the steps ---- */

/* slate-session's TLS and RDP handshake up to the credentials (it reports the time itself). */
static int step_handshake(StepRun *run, void *ctx) { return STEP_DONE; }

static void auth_run(uv_work_t *w)
{
        Logon *lg = w->data;
        AuthAsk ask = { prompter_ask, lg->prompter };
        lg->pam_r = auth_pam_check(lg->b->cfg->pam_service, lg->user, lg->password, lg->addr,
                                   lg->prompter ? &ask : NULL, &lg->pam, &lg->mapped_user, &lg->pam_error);
}

/* On the loop: a message of the PAM conversation for the logon screen. What the user types
 * comes back in on_conn_prompt_reply; neither is logged. */
static void prompt_show(void *ud, IpcPromptStyle style, const char *text)
{
        Logon *lg = ud;
        if (!lg->conn || !conn_alive(lg->conn) || !lg->run.running) {
                prompter_cancel(lg->prompter);
                return;
        }
        IpcMsg m = { .type = IPC_PROMPT };
        m.prompt.style = (uint8_t)style;
        snprintf(m.prompt.text, sizeof m.prompt.text, "%s", text);
        bool prompt = style == IPC_PROMPT_SECRET || style == IPC_PROMPT_TEXT;
        if (prompt) {
                lg->prompted = true;
                conn_set_prompting(lg->conn, true);
        }
        if (conn_send(lg->conn, &m, -1) < 0)
                prompter_cancel(lg->prompter);
}

/* The logon no longer needs its PAM handle: it ends on the logon threads (closing the PAM
 * session if one was opened). */
static void pam_discard(Logon *lg)
{
        if (lg->pam && !lg->pam_busy)
                logoff_pam_end(lg->b, TAKE_PTR(lg->pam));
}

/* A refusal after the password was shown right: said as it is, never as a bad password. */
static void refuse_account(Logon *lg, int r, const char *err)
{
        const char *why = r == -EKEYEXPIRED ? "password expired" : r == -EKEYREVOKED ? "account expired" : "account denied";
        session_audit(lg->b, "logon.refused", lg->user, "from %s: %s (%s)", lg->addr, why, err);
        log_info("logon of %s from %s refused: %s (%s)", lg->user, lg->addr, why, err);
        if (r == -EKEYEXPIRED && lg->interactive)
                refuse(lg, IPC_AUTH_PASSWORD_EXPIRED, "your password has expired and was not changed (%s); try again",
                       err);
        else if (r == -EKEYEXPIRED)
                refuse(lg, IPC_AUTH_PASSWORD_EXPIRED, "your password has expired; connect without a saved password "
                       "to change it at the logon screen");
        else if (r == -EKEYREVOKED)
                refuse(lg, IPC_AUTH_ACCOUNT_EXPIRED, "your account has expired; contact your administrator");
        else
                refuse(lg, IPC_AUTH_ACCOUNT_DENIED, "your account may not log on here now; contact your administrator");
}

static void auth_done(uv_work_t *w, int status)
{
        Logon *lg = w->data;
        Broker *b = lg->b;
        password_wipe(lg);
        if (lg->prompter) {
                if (lg->conn)
                        conn_set_prompting(lg->conn, false);    /* a prompt that timed out */
                prompter_free(TAKE_PTR(lg->prompter));
        }
        fault_point(&b->crash, "authenticated");
        if (status < 0)
                lg->pam_r = -ECANCELED;
        /* Counted as a failure when it began: a success is forgiven, even if the client left,
         * and a refusal after the right password (expired, denied) is taken back. */
        auth_limiter_end(b->limiter, lg->user, lg->mapped_user, lg->addr, lg->pam_r, now_ms());
        if (!lg->run.running) {
                log_info("logon of %s from %s: PAM ended %u ms after the logon was over (the client left)",
                         lg->user, lg->addr, (unsigned)(now_ms() - lg->end_ms));
                pam_discard(lg);
                logon_unref(lg);        /* failed meanwhile (the client left) */
                return;
        }
        if (lg->pam_r < 0 && !auth_result_is_guess(lg->pam_r)) {
                refuse_account(lg, lg->pam_r, lg->pam_error ? lg->pam_error : "");
                steps_done(&lg->run, -EACCES, lg->pam_error ? lg->pam_error : "account refused");
        } else if (lg->pam_r < 0) {
                const char *err = lg->pam_error ? lg->pam_error : "error";
                session_audit(b, "logon.failed", lg->user, "from %s: %s", lg->addr, err);
                log_info("logon of %s from %s refused: %s", lg->user, lg->addr, err);
                if (lg->pam_r == -EIO)
                        refuse(lg, IPC_AUTH_INTERNAL, "the logon service failed; contact your administrator");
                else if (lg->pam_r == -ENOMSG)
                        refuse(lg, IPC_AUTH_BAD_CREDENTIALS, "this logon asks for more than a password (a one-time "
                               "code): connect without a saved password to log on at the logon screen");
                else if (lg->prompted)
                        refuse(lg, IPC_AUTH_BAD_CREDENTIALS, "unknown user name, bad password or bad code");
                else
                        refuse(lg, IPC_AUTH_BAD_CREDENTIALS, "unknown user name or bad password");
                steps_done(&lg->run, -EACCES, err);
        } else {
                if (auth_password_changed(lg->pam)) {
                        session_audit(b, "password.changed", lg->mapped_user, "from %s: an expired password, at the logon screen",
                                      lg->addr);
                        log_info("logon of %s from %s: the expired password was changed", lg->mapped_user, lg->addr);
                }
                steps_done(&lg->run, 0, NULL);
        }
        logon_unref(lg);
}

/* PAM, in the thread pool, behind the rate limiter. */
static int step_auth(StepRun *run, void *ctx)
{
        Logon *lg = ctx;
        Broker *b = lg->b;
        bool locked;
        if (!user_name_valid(lg->user)) {
                refuse(lg, IPC_AUTH_BAD_CREDENTIALS, "unknown user name or bad password");
                password_wipe(lg);
                return -EACCES;
        }
        if (!lg->password[0]) {
                session_audit(b, "logon.failed", lg->user, "from %s: no password given", lg->addr);
                if (lg->interactive)
                        refuse(lg, IPC_AUTH_BAD_CREDENTIALS, "type your password");
                else
                        refuse(lg, IPC_AUTH_BAD_CREDENTIALS, "a password is required (e.g. xfreerdp /p:PASSWORD)");
                password_wipe(lg);
                return -EACCES;
        }
        /* Counted now, not when PAM answers: guesses in flight at once all count. */
        uint64_t wait = auth_limiter_begin(b->limiter, lg->user, lg->addr, now_ms(), &locked);
        if (wait > 0) {
                unsigned long long secs = (unsigned long long)(wait + 999) / 1000;
                session_audit(b, "logon.throttled", lg->user, "from %s: %s for %llu s", lg->addr,
                              locked ? "locked out" : "backoff", secs);
                refuse(lg, IPC_AUTH_LOCKED_OUT, "too many failed logons; try again in %llu s", secs);
                password_wipe(lg);
                return -EACCES;
        }
        if (lg->interactive)
                lg->prompter = prompter_new(b->loop, prompt_show, lg, LOGON_PROMPTS_MAX, LOGON_PROMPT_TIMEOUT_MS);
        lg->refs++;
        lg->work.data = lg;
        workq_queue(b->logon_q, b->loop, &lg->work, auth_run, auth_done);
        fault_point(&b->crash, "auth");
        return STEP_PENDING;
}

static void pam_open_run(uv_work_t *w)
{
        Logon *lg = w->data;
        free(TAKE_PTR(lg->pam_error));
        lg->pam_r = auth_session_open(lg->pam, &lg->pam_error);
}

static void pam_open_done(uv_work_t *w, int status)
{
        Logon *lg = w->data;
        lg->pam_busy = false;
        if (!lg->run.running) {
                pam_discard(lg);        /* failed meanwhile: what was opened is closed */
                logon_unref(lg);
                return;
        }
        if (lg->pam_r < 0 || status < 0) {
                const char *err = lg->pam_error ? lg->pam_error : "cancelled";
                session_audit(lg->b, "logon.failed", lg->mapped_user, "from %s: PAM session: %s", lg->addr, err);
                log_error("logon of %s from %s: the PAM session could not be opened: %s", lg->mapped_user, lg->addr,
                          err);
                steps_done(&lg->run, -EIO, err);
        } else {
                steps_done(&lg->run, 0, NULL);
        }
        logon_unref(lg);
}

/* A first logon is a login: the PAM session opens (setcred, open_session) on the logon threads
 * and lives as long as the Slate session. A reconnect to a running session authenticated
 * above and opens no second one. */
static int step_pam_session(StepRun *run, void *ctx)
{
        Logon *lg = ctx;
        if (session_find_user(lg->b, lg->mapped_user)) {
                pam_discard(lg);
                return STEP_SKIP;
        }
        /* The answer if it fails or times out; the desktop step says welcome otherwise. */
        refuse(lg, IPC_AUTH_INTERNAL, "your session could not be opened; contact your administrator");
        lg->pam_busy = true;
        lg->refs++;
        lg->work.data = lg;
        workq_queue(lg->b->logon_q, lg->b->loop, &lg->work, pam_open_run, pam_open_done);
        return STEP_PENDING;
}

static void undo_pam_session(void *ctx) { pam_discard(ctx); }

/* A new logon: the user's pool, a desktop claimed from it, the session record. A reconnect:
 * the session already there (waiting for its first logon to finish, if that still runs). */
static int step_desktop(StepRun *run, void *ctx)
{
        Logon *lg = ctx;
        Broker *b = lg->b;
        const char *user = lg->mapped_user;
        Session *s = session_find_user(b, user);
        if (s) {
                lg->reconnect = true;
                lg->s = s;
                if (lg->pam) {
                        /* Two first logons at once: the other one's session is the session. */
                        log_info("session %s (%s): a logon from %s joins it; its own PAM session is closed", s->id,
                                 s->user, lg->addr);
                        pam_discard(lg);
                }
                if (s->conn && s->conn != lg->conn) {
                        Conn *old = TAKE_PTR(s->conn);
                        conn_end(old, "logged on from another client");
                }
                uv_timer_stop(&s->timer);
                free(s->client);
                s->client = xstrdup(lg->addr);
                s->conn = lg->conn;
                conn_set_state_authed(lg->conn);
                session_audit(b, "reconnect", s->user, "session %s desktop %s from %s", s->id,
                              s->desktop ? s->desktop->id : "?", s->client);
                reply_ok(lg, "welcome back %s", s->user);
                if (s->logon_run && s->logon_run->running) {
                        s->waiter = lg;         /* its first logon is still starting the desktop */
                        return STEP_PENDING;
                }
                s->logon_run = &lg->run;
                return STEP_DONE;
        }
        if (!user_name_valid(user)) {
                /* PAM may map the name it was given to another one: that too must be creatable. */
                session_audit(b, "logon.refused", user, "the name PAM returned breaks the user-name rule (from %s)",
                              lg->addr);
                refuse(lg, IPC_AUTH_INTERNAL, "this user name cannot have a desktop; contact your administrator");
                return -EINVAL;
        }
        gid_t groups[256];
        int ngroups = (int)ELEMENTSOF(groups);
        uint32_t uid = session_user_uid(user, groups, &ngroups);
        Pool *p = pool_for_user(b, user, groups, ngroups);
        if (!p) {
                session_audit(b, "logon.refused", user, "not entitled to any pool (from %s)", lg->addr);
                refuse(lg, IPC_AUTH_NOT_ENTITLED, "%s is not entitled to a desktop", user);
                return -EPERM;
        }
        s = session_new(b, user, uid, p->name, lg->addr, lg->width, lg->height);
        Desktop *d;
        bool booting;
        if (pool_desktop_claim(b, p, s->id, &claim_events, s, &d, &booting) < 0) {
                session_forget(s);
                session_audit(b, "logon.refused", user, "pool %s has no free desktop (from %s)", p->name, lg->addr);
                refuse(lg, IPC_AUTH_NO_DESKTOP, "all desktops of pool %s are in use; try again later", p->name);
                return -EBUSY;
        }
        lg->s = s;
        s->desktop = d;
        s->conn = lg->conn;
        s->logon_run = &lg->run;
        conn_set_state_authed(lg->conn);
        session_persist(s);
        fault_point(&b->crash, "desktop-assigned");
        reply_ok(lg, "welcome %s", user);
        if (booting) {
                log_info("session %s (%s): no ready desktop in pool %s; waiting for %s to boot", s->id, user, p->name,
                         d->id);
                return STEP_PENDING;    /* claim_events.on_ready finishes it */
        }
        return STEP_DONE;
}

/* A failed new logon gives its desktop back (untouched: to the pool; else destroyed) and
 * forgets the session; a reconnect leaves its session as it was. */
static void undo_desktop(void *ctx)
{
        Logon *lg = ctx;
        Session *s = lg->s;
        if (!s || lg->reconnect)
                return;
        if (s->waiter) {
                Logon *w = s->waiter;
                s->waiter = NULL;
                steps_fail(&w->run, -ENOENT, "the session's first logon failed");
        }
        s->conn = NULL;
        s->logon_run = NULL;
        if (s->desktop) {
                Desktop *d = TAKE_PTR(s->desktop);
                char why[200];
                snprintf(why, sizeof why, "session %s: logon failed at %s", s->id,
                         lg->run.steps[lg->run.cur].name);
                pool_desktop_release(d, why);
        }
        session_forget(s);
        lg->s = NULL;
}

/* The user's entitled app layers and profile disk, hot-plugged before the session starts. */
static int step_apps(StepRun *run, void *ctx) { return userdisks_apps(((Logon *)ctx)->s, run); }
static int step_profile(StepRun *run, void *ctx) { return userdisks_profile(((Logon *)ctx)->s, run); }
static void undo_profile(void *ctx) { userdisks_profile_undo(((Logon *)ctx)->s); }

/* The user's session in the guest (the agent mounts the disks, then logs the user on at the
 * client's size). */
/* The user's session started in the session's desktop (the agent answers with SESSION_STATE). */
static int session_start(Session *s)
{
        return desktop_session_start(s->desktop, s->user, s->uid, s->width, s->height, s->disks, s->n_disks);
}

static int step_agent(StepRun *run, void *ctx)
{
        Logon *lg = ctx;
        Session *s = lg->s;
        if (s->agent_started)
                return STEP_SKIP;
        if (!s->desktop)
                return -ENOTCONN;
        int r = session_start(s);
        if (r == -ENOTCONN && desktop_agent_reconnecting(s->desktop)) {
                /* A desktop adopted at a slated restart moments ago: its agent says hello again
                 * within a second. on_agent_link_ready sends the start then (the step's timeout
                 * bounds the wait). */
                lg->agent_wait = true;
                return STEP_PENDING;
        }
        if (r < 0)
                return r;
        fault_point(&lg->b->crash, "agent-start");
        return STEP_PENDING;    /* claim_events.on_agent_session finishes it */
}

/* The desktop's console, as an fd, to the client's slate-session. */
static int step_attach(StepRun *run, void *ctx)
{
        Logon *lg = ctx;
        Session *s = lg->s;
        if (!lg->conn || !conn_alive(lg->conn) || s->conn != lg->conn) {
                steps_stop(run);        /* the client left: the session waits, disconnected */
                return STEP_DONE;
        }
        int fd;
        if (!s->desktop || desktop_console_open(s->desktop, &fd) < 0)
                return -ENOTCONN;
        IpcMsg m = { .type = IPC_ATTACH };
        snprintf(m.attach.desktop_id, sizeof m.attach.desktop_id, "%s", s->desktop->id);
        snprintf(m.attach.session_id, sizeof m.attach.session_id, "%s", s->id);
        m.attach.reconnect = lg->reconnect;
        int r = conn_send(lg->conn, &m, fd);
        close(fd);
        if (r < 0) {
                steps_stop(run);        /* the connection just closed: disconnected */
                return STEP_DONE;
        }
        /* A reconnect to a desktop already usable goes straight to it: no progress screen. */
        if (lg->reconnect && s->usable)
                logon_progress_usable(lg->conn, user_of(lg));
        conn_set_state_attached(lg->conn);
        uv_timer_stop(&s->timer);       /* no disconnect timeout while a client is attached */
        s->state = SESSION_ACTIVE;
        s->last_activity_ms = now_ms();
        session_persist(s);
        fault_point(&lg->b->crash, "attach");
        log_info("session %s (%s): desktop %s attached for %s%s", s->id, s->user, s->desktop->id, lg->addr,
                 lg->reconnect ? " (reconnect)" : "");
        return STEP_DONE;
}

/* The client drew its first frame of the desktop (slate-session reports it). */
static int step_first_frame(StepRun *run, void *ctx) { return STEP_PENDING; }

/* The user's desktop is usable: the agent says so (the test desktop drew it; a session
 * script's ready hook ran: the Xfce panel and desktop are mapped). Bounded by the pool's
 * usable-timeout; past it the logon is recorded failed here and logon_finished ends the
 * session (best effort: nothing is undone, the logoff list takes the desktop down). An agent
 * without AGENT_CAP_USABLE (older images) cannot tell: its first frame is taken as usable. */
static int step_usable(StepRun *run, void *ctx)
{
        Logon *lg = ctx;
        Session *s = lg->s;
        if (lg->reconnect && s->usable) {
                lg->usable_skipped = true;
                return STEP_SKIP;
        }
        if (s->usable)
                return STEP_DONE;       /* said before the first frame */
        if (!s->desktop || !(s->desktop->agent_caps & AGENT_CAP_USABLE)) {
                lg->usable_skipped = lg->usable_unknown = true;
                if (s->desktop)
                        pool_desktop_usable(s->desktop);
                return STEP_SKIP;
        }
        Pool *p = pool_find(lg->b, s->pool);
        steps_set_timeout(run, (p ? p->usable_timeout : POOL_USABLE_TIMEOUT_DEFAULT) * 1000u);
        return STEP_PENDING;    /* claim_events.on_agent_session finishes it */
}

static const Step logon_steps[] = {
        { "handshake", step_handshake, NULL, 0, false },
        { "auth", step_auth, NULL, AUTH_TIMEOUT_MS, false },
        { "pam-session", step_pam_session, undo_pam_session, PAM_SESSION_TIMEOUT_MS, false },
        { "desktop", step_desktop, undo_desktop, 0, false },    /* bounded by the desktop's boot timeout */
        { "apps", step_apps, NULL, APPS_TIMEOUT_MS, false },
        { "profile", step_profile, undo_profile, PROFILE_TIMEOUT_MS, false },
        { "agent", step_agent, NULL, AGENT_START_TIMEOUT_MS, false },
        { "attach", step_attach, NULL, 0, false },
        { "first-frame", step_first_frame, NULL, 0, false },
        { "usable", step_usable, NULL, 0, true },       /* bounded by the pool's usable-timeout */
};

/* What the user is told meanwhile: slate-session's progress screen (logon_progress.c). */
static void progress_step(StepRun *run, void *ctx)
{
        Logon *lg = ctx;
        logon_progress_step(lg->conn, user_of(lg), run);
}

/* ---- the end of a logon ---- */

static void record_timeline(Logon *lg)
{
        Session *s = lg->s;
        StepRun *run = &lg->run;
        s->n_last = 0;
        for (size_t i = 0; i < run->n; i++) {
                uint32_t ms = run->rec[i].ms;
                if (i == 0)
                        ms = lg->conn ? conn_phase_ms(lg->conn, "rdp-handshake") : 0;
                s->last[s->n_last++] = (SessionStep){ run->steps[i].name, ms, step_result_name(run->rec[i].result) };
        }
        s->attempts++;
        session_timeline_add(s, s->attempts, lg->reconnect ? "reconnect" : "logon", s->last, s->n_last);
}

static void wake_waiter(Session *s, int r)
{
        if (!s->waiter)
                return;
        Logon *w = s->waiter;
        s->waiter = NULL;
        s->logon_run = &w->run;
        if (r < 0)
                steps_fail(&w->run, r, "the session did not start");
        else
                steps_done(&w->run, 0, NULL);
}

/* The desktop did not become usable within the pool's usable-timeout: the user is told why,
 * and the session ends (the logoff list tells the client, stops the guest's session, detaches
 * the profile and destroys the desktop: never reused). */
static void usable_failed(Logon *lg, uint32_t waited_ms)
{
        Session *s = lg->s;
        Pool *p = pool_find(lg->b, s->pool);
        char why[200];
        snprintf(why, sizeof why, "your desktop did not become ready in %u s; it has been shut down, please log "
                 "on again", p ? p->usable_timeout : (waited_ms + 999) / 1000);
        session_audit(lg->b, "logon.failed", s->user, "session %s desktop %s from %s: not usable %u ms after the "
                      "first frame (usable-timeout)", s->id, s->desktop ? s->desktop->id : "?", lg->addr, waited_ms);
        log_warn("session %s (%s): desktop %s not usable %u ms after the first frame; ending the session", s->id,
                 s->user, s->desktop ? s->desktop->id : "?", waited_ms);
        logon_progress_failed(lg->conn, user_of(lg), why);
        if (s->desktop)
                pool_desktop_usable(s->desktop);
        logoff_start(s, why);
}

static void logon_finished(StepRun *run, int r, const char *failed_step, const char *why, void *ctx)
{
        Logon *lg = ctx;
        Broker *b = lg->b;
        Session *s = lg->s;
        prompter_cancel(lg->prompter);  /* a conversation still waiting has nobody to answer */
        lg->end_ms = now_ms();
        if (r < 0 && lg->status != IPC_AUTH_OK) {
                /* Refused before the client was let in: the padded refusal is the whole answer. */
                reply_refusal_padded(lg);
                logon_unref(lg);
                return;
        }
        if (r < 0) {
                session_audit(b, "logon.failed", user_of(lg), "%s from %s failed at %s: %s",
                              lg->reconnect ? "reconnect" : "logon", lg->addr, failed_step, why);
                log_warn("%s of %s from %s failed at %s: %s", lg->reconnect ? "reconnect" : "logon", user_of(lg),
                         lg->addr, failed_step, why);
                if (lg->conn && conn_alive(lg->conn)) {
                        char msg[256];
                        snprintf(msg, sizeof msg, "logon failed at %s", failed_step);
                        conn_end(lg->conn, msg);
                }
                if (s && lg->reconnect) {
                        /* The session itself is fine unless its desktop is unreachable. */
                        if (s->waiter == lg)
                                s->waiter = NULL;
                        if (s->logon_run == run)
                                s->logon_run = NULL;
                        if (s->conn == lg->conn)
                                s->conn = NULL;
                        if (strcmp(failed_step, "attach") == 0)
                                logoff_start(s, "desktop console unavailable");
                        else if (s->state != SESSION_ENDING && s->state != SESSION_STARTING && !s->logon_run)
                                logoff_disconnected(s);
                }
                lg->s = NULL;
                logon_unref(lg);
                return;
        }
        /* Done, or stopped early because the client left: the session is up either way, and
         * holds its PAM session until it ends (logoff.c). */
        s->logon_run = NULL;
        if (lg->pam && !s->pam)
                s->pam = TAKE_PTR(lg->pam);
        pam_discard(lg);
        s->agent_started = true;
        record_timeline(lg);
        char line[256];
        session_timeline_format(s->last, s->n_last, line, sizeof line);
        int ff = steps_index(run, "first-frame"), us = steps_index(run, "usable");
        StepResult usable = run->rec[us].result;
        /* Stopped early (the client left) leaves first-frame or usable skipped by the runner. */
        bool complete = run->rec[ff].result == STEP_OK &&
                        (usable == STEP_OK || usable == STEP_FAILED || (usable == STEP_SKIPPED && lg->usable_skipped));
        if (complete)
                s->first_frame_ms = lg->first_frame_ms;
        if (complete && usable == STEP_FAILED) {
                usable_failed(lg, run->rec[us].ms);
        } else if (complete) {
                s->logon_ms = lg->first_frame_ms + (usable == STEP_OK ? run->rec[us].ms : 0);
                char usable_says[64];
                if (usable == STEP_OK)
                        snprintf(usable_says, sizeof usable_says, "usable %u ms", s->logon_ms);
                else
                        snprintf(usable_says, sizeof usable_says, "%s", lg->usable_unknown ? "usable unknown to the "
                                 "agent: first frame taken" : "usable already");
                log_info("session %s (%s): %s done in %u ms (first frame %u ms, %s; %s) on desktop %s", s->id,
                         s->user, lg->reconnect ? "reconnect" : "logon", s->logon_ms, s->first_frame_ms, usable_says,
                         line, s->desktop ? s->desktop->id : "?");
                session_audit(b, lg->reconnect ? "reconnect.done" : "logon", s->user,
                              "session %s desktop %s pool %s from %s in %u ms (first frame %u ms, %s; %s)", s->id,
                              s->desktop ? s->desktop->id : "?", s->pool, lg->addr, s->logon_ms, s->first_frame_ms,
                              usable_says, line);
                logon_progress_usable(lg->conn, user_of(lg));
        } else {
                if (s->conn == lg->conn)
                        s->conn = NULL;
                log_info("session %s (%s): the client left during the %s (%s); the session waits", s->id, s->user,
                         lg->reconnect ? "reconnect" : "logon", line);
                if (s->state != SESSION_ENDING && !s->waiter)
                        logoff_disconnected(s);
        }
        wake_waiter(s, complete && usable == STEP_FAILED ? -EIO : 0);
        logon_unref(lg);        /* the step list's reference; the connection keeps its own */
}

/* ---- events from the session's desktop (its claimant) ---- */

static Logon *running_logon(Session *s)
{
        return s->logon_run && s->logon_run->running ? s->logon_run->ctx : NULL;
}

static void on_desktop_ready(Desktop *d, void *data)
{
        Session *s = data;
        Logon *lg = running_logon(s);
        if (lg && lg->s == s && steps_index(&lg->run, "desktop") == (int)lg->run.cur)
                steps_done(&lg->run, 0, NULL);
}

static void on_desktop_gone(Desktop *d, void *data)
{
        Session *s = data;
        Logon *lg = running_logon(s);
        s->desktop = NULL;
        if (lg && s->state == SESSION_STARTING) {
                steps_fail(&lg->run, -EIO, "the desktop died");
                return;
        }
        logoff_desktop_gone(s);
}

static void on_agent_session(Desktop *d, uint8_t state, const char *detail, void *data)
{
        Session *s = data;
        Logon *lg = running_logon(s);
        switch (state) {
        case AGENT_SESSION_STARTED:
                if (!lg || s->agent_started || steps_index(&lg->run, "agent") != (int)lg->run.cur)
                        return;
                s->agent_started = true;
                session_audit(s->b, "session.started", s->user, "session %s on desktop %s: %s", s->id, d->id,
                              detail);
                s->state = SESSION_DISCONNECTED;        /* until attached: what a restart keeps */
                session_persist(s);
                fault_point(&s->b->crash, "agent-started");
                steps_done(&lg->run, 0, NULL);
                return;
        case AGENT_SESSION_USABLE:
                /* The link lets it through only after STARTED; said again, it changes nothing. */
                if (s->usable)
                        return;
                s->usable = true;
                pool_desktop_usable(d);
                log_info("session %s (%s): desktop %s usable: %s", s->id, s->user, d->id, detail);
                if (lg && steps_index(&lg->run, "usable") == (int)lg->run.cur)
                        steps_done(&lg->run, 0, NULL);
                return;
        case AGENT_SESSION_STOPPED:
                logoff_agent_stopped(s);
                return;
        case AGENT_SESSION_LOGOUT:
                log_info("session %s (%s): the user logged out", s->id, s->user);
                logoff_start(s, "user logged out");
                return;
        case AGENT_SESSION_FAILED:
                log_error("session %s: the desktop could not start the session: %s", s->id, detail);
                if (lg && steps_index(&lg->run, "agent") == (int)lg->run.cur)
                        steps_fail(&lg->run, -EIO, "session start failed in the desktop");
                else
                        logoff_start(s, "session start failed in the desktop");
                return;
        }
}

static void on_agent_link_ready(Desktop *d, void *data)
{
        Session *s = data;
        Logon *lg = running_logon(s);
        if (!lg || !lg->agent_wait || steps_index(&lg->run, "agent") != (int)lg->run.cur)
                return;
        lg->agent_wait = false;
        int r = session_start(s);
        if (r < 0)
                steps_fail(&lg->run, r, "the desktop's agent cannot be reached");
        else
                fault_point(&lg->b->crash, "agent-start");
}

static const DesktopEvents claim_events = {
        .on_ready = on_desktop_ready, .on_gone = on_desktop_gone, .on_agent_session = on_agent_session,
        .on_agent_link_ready = on_agent_link_ready,
};

/* ---- events from the connection ---- */

static void on_conn_auth(Conn *c, IpcMsg *m)
{
        Logon *lg = xmalloc0(sizeof *lg);
        lg->b = conn_broker(c);
        lg->conn = c;
        conn_ref(c);
        conn_set_owner(c, lg);
        lg->refs = 2;           /* the connection and the step list */
        lg->start_ms = now_ms();
        snprintf(lg->user, sizeof lg->user, "%s", m->auth.user);
        snprintf(lg->addr, sizeof lg->addr, "%s", conn_addr(c));
        lg->width = (uint16_t)MIN(MAX(m->auth.width, 320), 4096);
        lg->height = (uint16_t)MIN(MAX(m->auth.height, 200), 2160);
        lg->interactive = (m->auth.flags & IPC_AUTH_INTERACTIVE) != 0;
        size_t plen = strlen(m->auth.password) + 1;
        lg->password = xmalloc0(plen);
        mlock(lg->password, plen);
        memcpy(lg->password, m->auth.password, plen);
        secret_wipe(m->auth.password, sizeof m->auth.password);
        lg->status = IPC_AUTH_BAD_CREDENTIALS;
        uv_timer_init(lg->b->loop, &lg->pad);
        lg->pad.data = lg;
        steps_init(&lg->run, lg->b->loop);
        steps_observe(&lg->run, progress_step);
        steps_start(&lg->run, logon_steps, ELEMENTSOF(logon_steps), lg, logon_finished);
}

static void on_conn_first_frame(Conn *c, uint32_t ms)
{
        Logon *lg = conn_owner(c);
        if (!lg || !lg->run.running || steps_index(&lg->run, "first-frame") != (int)lg->run.cur)
                return;
        lg->first_frame_ms = ms;
        fault_point(&lg->b->crash, "first-frame");
        steps_done(&lg->run, 0, NULL);
}

static void on_conn_prompt_reply(Conn *c, const char *text)
{
        Logon *lg = conn_owner(c);
        /* No conversation waits (a late answer after its prompt timed out): dropped. A refusal
         * is padded from the user's last answer: a wrong code and a wrong password look alike. */
        if (lg && lg->prompter && prompter_reply(lg->prompter, text) == 0)
                lg->start_ms = now_ms();
}

static void on_conn_logout(Conn *c)
{
        Logon *lg = conn_owner(c);
        if (lg && lg->s && lg->s->conn == c)
                logoff_start(lg->s, "client logged off");
}

static void on_conn_activity(Conn *c)
{
        Logon *lg = conn_owner(c);
        if (lg && lg->s)
                lg->s->last_activity_ms = now_ms();
}

static void on_conn_closed(Conn *c)
{
        Logon *lg = conn_owner(c);
        if (!lg)
                return;
        conn_set_owner(c, NULL);
        prompter_cancel(lg->prompter);  /* PAM hears PAM_CONV_ERR at once */
        Session *s = lg->s;
        bool ours = s && s->conn == c;
        if (ours)
                s->conn = NULL;
        if (lg->run.running) {
                const char *step = lg->run.steps[lg->run.cur].name;
                if (s && s->waiter == lg) {
                        s->waiter = NULL;
                        steps_fail(&lg->run, -ECONNRESET, "the client left");
                } else if (strcmp(step, "auth") == 0 || strcmp(step, "handshake") == 0 ||
                           strcmp(step, "pam-session") == 0) {
                        steps_fail(&lg->run, -ECONNRESET, "the client left");
                } else if (strcmp(step, "attach") == 0 || strcmp(step, "first-frame") == 0 ||
                           strcmp(step, "usable") == 0) {
                        steps_stop(&lg->run);
                }
                /* desktop, agent: the session keeps starting and waits, disconnected. */
        } else if (ours && s->state == SESSION_ACTIVE) {
                session_audit(s->b, "disconnect", s->user, "session %s from %s", s->id, lg->addr);
                log_info("session %s (%s): client disconnected", s->id, s->user);
                logoff_disconnected(s);
        }
        logon_unref(lg);        /* the connection's reference */
}

static const ConnEvents conn_events = {
        .on_auth = on_conn_auth, .on_prompt_reply = on_conn_prompt_reply, .on_first_frame = on_conn_first_frame, .on_logout = on_conn_logout,
        .on_activity = on_conn_activity, .on_closed = on_conn_closed,
};

void logon_init(Broker *b) { b->conn_events = &conn_events; }

/* ---- restart ---- */

/* One session row left by an earlier slated: kept (as disconnected) only when its logon had
 * finished in the guest and its desktop was adopted; otherwise it goes through the logoff
 * list, which destroys its desktop and audits why. Any mix of rows a crash leaves ends here,
 * never in a refusal to start. */
static void restore_one(Broker *b, const DbSession *row)
{
        Desktop *d = row->desktop && *row->desktop ? desktop_find(b, row->desktop) : NULL;
        const char *st = row->state ? row->state : "active";
        Session *s = session_from_row(b, row);
        /* Every row was written after its logon opened the PAM session (pam-session runs before
         * desktop), and the earlier slated's handle is gone: the session's end closes it with a
         * fresh one. A row left ending by a crash after its pam-close step is closed twice. */
        s->pam = auth_session_adopted(b->cfg->pam_service, s->user, s->client);
        char reason[300] = "";
        if (strcmp(st, "ending") == 0)
                snprintf(reason, sizeof reason, "%s (finished after a broker restart)",
                         row->end_reason ? row->end_reason : "logoff");
        else if (strcmp(st, "starting") == 0)
                snprintf(reason, sizeof reason, "broker restart during logon");
        else if (!d || d->stopping)
                snprintf(reason, sizeof reason, "broker restart: desktop gone");
        else if (d->state != DESKTOP_ASSIGNED || desktop_claimed(d))
                snprintf(reason, sizeof reason, "broker restart: desktop not assigned to the session");
        if (d && !d->stopping && !desktop_claimed(d)) {
                desktop_claim(d, s->id, &claim_events, s);
                s->desktop = d;
        }
        if (reason[0]) {
                s->state = SESSION_DISCONNECTED;
                logoff_start(s, reason);
                return;
        }
        s->agent_started = true;
        s->usable = true;       /* unknown after a restart; a reconnect does not wait for it */
        s->last_activity_ms = now_ms();
        log_info("session %s (%s): kept across restart on desktop %s; waiting for the client to reconnect", s->id,
                 s->user, d->id);
        session_audit(b, "session.kept", s->user, "session %s desktop %s: kept across a broker restart", s->id, d->id);
        logoff_disconnected(s);
}

int logon_restore_all(Broker *b)
{
        DbSession *rows;
        size_t n;
        int r = db_session_list(b->db, &rows, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                restore_one(b, &rows[i]);
        db_session_free_array(rows, n);
        /* A desktop handed to a user is never reused: one whose session is gone is erased. */
        for (Desktop *d = b->desktops, *next; d; d = next) {
                next = d->next;
                if (d->state == DESKTOP_ASSIGNED && !desktop_claimed(d) && !d->stopping)
                        desktop_destroy(d, "its session did not survive the restart");
        }
        return 0;
}

/* PAM sessions stay open (no PAM call on the loop, and the session goes on): the next start
 * adopts each session and closes its PAM session when it ends. */
void logon_release_all(Broker *b)
{
        while (b->sessions)
                session_release(b->sessions);
}
