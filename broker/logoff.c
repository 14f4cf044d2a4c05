/* The logoff step list (logoff.h) and the timers that end sessions. Every step is best effort
 * and idempotent: a guest that does not answer is not waited for past its bound, and a restart
 * re-runs the whole list for a session recorded as ending. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker/auth.h"
#include "broker/conn.h"
#include "broker/desktop.h"
#include "broker/logoff.h"
#include "broker/pool.h"
#include "broker/session.h"
#include "broker/userdisks.h"
#include "broker/workq.h"
#include "common/log.h"
#include "common/util.h"

#define AGENT_STOP_TIMEOUT_MS 5000
/* QEMU is asked to quit with a 3 s grace before SIGKILL; the erase follows at once. */
#define DESTROY_TIMEOUT_MS 15000
#define SWEEP_MS 1000
/* The driver bounds the unplug itself (the guest must answer); this is the step's own bound. */
#define PROFILE_DETACH_TIMEOUT_MS 20000
/* pam_close_session's modules are quick; a hung one is not waited for (its thread stays). */
#define PAM_CLOSE_TIMEOUT_MS 30000
/* A first (full) backup reads the whole disk; the step stops waiting past this, the job goes on. */
#define PROFILE_BACKUP_TIMEOUT_MS (10 * 60 * 1000)

/* The client is told the session ended and disconnected. */
static int step_detach(StepRun *run, void *ctx)
{
        Session *s = ctx;
        if (!s->conn)
                return STEP_SKIP;
        Conn *c = TAKE_PTR(s->conn);
        conn_end(c, s->end_reason);
        return STEP_DONE;
}

/* The guest flushes and ends the user's session (profiles will sync here). */
static int step_agent_stop(StepRun *run, void *ctx)
{
        Session *s = ctx;
        if (!s->desktop || !s->agent_started || !desktop_agent_ready(s->desktop))
                return STEP_SKIP;
        return desktop_session_stop(s->desktop, s->end_reason) < 0 ? STEP_SKIP : STEP_PENDING;
}

/* The profile disk leaves the VM after the guest unmounted it, and its lock is released. */
static int step_profile_detach(StepRun *run, void *ctx)
{
        Session *s = ctx;
        int i = steps_index(run, "agent-stop");
        return userdisks_detach(s, run, i >= 0 && run->rec[i].result == STEP_OK);
}

/* The desktop is never reused: its VM stops and its overlay is erased. */
static int step_destroy(StepRun *run, void *ctx)
{
        Session *s = ctx;
        if (!s->desktop)
                return STEP_SKIP;
        fault_point(&s->b->crash, "session-stopped");
        char why[300];
        snprintf(why, sizeof why, "session %s ended: %s", s->id, s->end_reason);
        desktop_destroy(s->desktop, why);
        return s->desktop ? STEP_PENDING : STEP_DONE;   /* gone at once when no VM was left */
}

/* A PAM handle ending on the logon threads. The job owns the handle: a session that ended (or a
 * step that timed out) meanwhile does not pull it away from under PAM. */
typedef struct PamEnd {
        uv_work_t work;
        Broker *b;
        AuthHandle *h;
        char sid[24];           /* the session whose logoff waits for it, or "" */
        int r;
} PamEnd;

static void pam_end_run(uv_work_t *w)
{
        PamEnd *pe = w->data;
        pe->r = auth_session_end(pe->h);
}

static void pam_end_done(uv_work_t *w, int status)
{
        PamEnd *pe = w->data;
        Session *s = pe->sid[0] ? session_find(pe->b, pe->sid) : NULL;
        if (s && s->logoff.running && steps_index(&s->logoff, "pam-close") == (int)s->logoff.cur)
                steps_done(&s->logoff, pe->r < 0 || status < 0 ? -EIO : 0, "pam_close_session failed (logged)");
        free(pe);
}

static void pam_end_queue(Broker *b, AuthHandle *h, const char *sid)
{
        PamEnd *pe = xmalloc0(sizeof *pe);
        pe->b = b;
        pe->h = h;
        snprintf(pe->sid, sizeof pe->sid, "%s", sid ? sid : "");
        pe->work.data = pe;
        workq_queue(b->logon_q, b->loop, &pe->work, pam_end_run, pam_end_done);
}

void logoff_pam_end(Broker *b, AuthHandle *h)
{
        if (h)
                pam_end_queue(b, h, NULL);
}

/* The user's login ends with the desktop: pam_close_session and pam_setcred(PAM_DELETE_CRED)
 * (wtmp's logout, a site's pam_exec hook). Before the backup, which may take minutes. */
static int step_pam_close(StepRun *run, void *ctx)
{
        Session *s = ctx;
        if (!s->pam)
                return STEP_SKIP;
        pam_end_queue(s->b, TAKE_PTR(s->pam), s->id);
        return STEP_PENDING;
}

/* The profile, closed now, becomes a new version in the block store. */
static int step_profile_backup(StepRun *run, void *ctx) { return userdisks_backup(ctx, run); }

static const Step logoff_steps[] = {
        { "detach", step_detach, NULL, 0, true },
        { "agent-stop", step_agent_stop, NULL, AGENT_STOP_TIMEOUT_MS, true },
        { "profile-detach", step_profile_detach, NULL, PROFILE_DETACH_TIMEOUT_MS, true },
        { "destroy", step_destroy, NULL, DESTROY_TIMEOUT_MS, true },
        { "pam-close", step_pam_close, NULL, PAM_CLOSE_TIMEOUT_MS, true },
        { "profile-backup", step_profile_backup, NULL, PROFILE_BACKUP_TIMEOUT_MS, true },
};

static void logoff_finished(StepRun *run, int r, const char *failed_step, const char *why, void *ctx)
{
        Session *s = ctx;
        Broker *b = s->b;
        SessionStep st[STEPS_MAX];
        size_t n = run->n;
        for (size_t i = 0; i < n; i++)
                st[i] = (SessionStep){ run->steps[i].name, run->rec[i].ms, step_result_name(run->rec[i].result) };
        char line[256];
        session_timeline_format(st, n, line, sizeof line);
        if (s->desktop) {
                /* Not gone within the bound: it stays draining; the pool manager's supervision
                 * finishes it, and this session no longer waits for it. */
                log_warn("session %s: desktop %s still stopping after the logoff", s->id, s->desktop->id);
                desktop_unclaim(s->desktop);
                s->desktop = NULL;
        }
        session_audit(b, "logout", s->user, "session %s: %s (%s)", s->id, s->end_reason, line);
        log_info("session %s (%s): ended: %s (%s)", s->id, s->user, s->end_reason, line);
        session_forget(s);
}

void logoff_start(Session *s, const char *reason)
{
        if (s->state == SESSION_ENDING)
                return;
        if (s->logon_run && s->logon_run->running) {
                bool first = s->state == SESSION_STARTING;
                steps_fail(s->logon_run, -ECANCELED, reason);
                if (first)
                        return;         /* the logon's undo ended the session */
        }
        s->state = SESSION_ENDING;
        free(s->end_reason);
        s->end_reason = xstrdup(reason);
        uv_timer_stop(&s->timer);
        /* Recorded first: a restart finishes this logoff with this reason. */
        session_persist(s);
        fault_point(&s->b->crash, "logoff");
        steps_start(&s->logoff, logoff_steps, ELEMENTSOF(logoff_steps), s, logoff_finished);
}

void logoff_agent_stopped(Session *s)
{
        if (s->logoff.running && steps_index(&s->logoff, "agent-stop") == (int)s->logoff.cur)
                steps_done(&s->logoff, 0, NULL);
}

void logoff_desktop_gone(Session *s)
{
        s->desktop = NULL;
        if (s->logoff.running && steps_index(&s->logoff, "destroy") == (int)s->logoff.cur) {
                steps_done(&s->logoff, 0, NULL);
                return;
        }
        if (s->state == SESSION_ENDING)
                return;         /* an earlier step is still running: destroy will be skipped */
        log_warn("session %s (%s): its desktop died", s->id, s->user);
        logoff_start(s, "desktop died");
}

static void disconnect_timeout_cb(uv_timer_t *t)
{
        Session *s = t->data;
        logoff_start(s, "disconnect timeout");
}

void logoff_disconnected(Session *s)
{
        Pool *p = pool_find(s->b, s->pool);
        unsigned secs = p ? p->disconnect_timeout : 0;
        s->state = SESSION_DISCONNECTED;
        session_persist(s);
        if (secs == 0) {
                logoff_start(s, "disconnected (pool keeps no disconnected sessions)");
                return;
        }
        uv_timer_start(&s->timer, disconnect_timeout_cb, (uint64_t)secs * 1000, 0);
}

static void sweep_cb(uv_timer_t *t)
{
        Broker *b = t->data;
        uint64_t now = now_ms();
        for (Session *s = b->sessions, *next; s; s = next) {
                next = s->next;
                Pool *p = pool_find(b, s->pool);
                if (!p || !p->idle_timeout || !s->last_activity_ms || s->state == SESSION_ENDING ||
                    s->state == SESSION_STARTING)
                        continue;
                if (now - s->last_activity_ms > (uint64_t)p->idle_timeout * 1000) {
                        log_info("session %s (%s): idle for %u s; ending it", s->id, s->user, p->idle_timeout);
                        logoff_start(s, "idle timeout");
                }
        }
}

void logoff_sweep_start(Broker *b)
{
        uv_timer_init(b->loop, &b->sweep);
        b->sweep.data = b;
        uv_timer_start(&b->sweep, sweep_cb, SWEEP_MS, SWEEP_MS);
}

void logoff_sweep_stop(Broker *b) { uv_timer_stop(&b->sweep); }
