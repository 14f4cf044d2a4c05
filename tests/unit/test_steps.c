/* The step-list runner that logon and logoff use, driven with a logon-shaped table whose step
 * bodies are fakes (no PAM, no VM) but whose effects are real: a desktop claimed from a real
 * pool, a session row in a real SQLite file. A failure at each position in turn must undo the
 * steps done in reverse, give an untouched desktop back to the pool and destroy a touched
 * one, end the session with the failing step's name, and leave nothing in the database. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "broker/desktop.h"
#include "broker/pool.h"
#include "broker/session.h"
#include "broker/steps.h"
#include "common/cleanup.h"
#include "common/util.h"

typedef struct Fix {
        Broker b;
        SlateConfig cfg;
        Pool *pool;
        Desktop *desk;
        Session *s;
        int fail_at;            /* index of the failing step, -1: none */
        bool fail_pending;      /* fail later (steps_fail) instead of from run */
        char log[256];          /* "+claim +agent -agent ..." */
        bool finished;
        int result;
        char failed[32];
} Fix;

static char dir[] = "/tmp/slate-steps-XXXXXX";

static void note(Fix *f, char sign, const char *name)
{
        size_t n = strlen(f->log);
        snprintf(f->log + n, sizeof f->log - n, "%s%c%s", n ? " " : "", sign, name);
}

static Fix *cur;        /* the fixture of the running test (Criterion runs one test per process) */

static int fake_outcome(StepRun *run, const char *name)
{
        int idx = steps_index(run, name);
        if (idx != cur->fail_at)
                return STEP_DONE;
        if (cur->fail_pending)
                return STEP_PENDING;    /* failed below, from outside, as a timeout or a dead desktop */
        return -EIO;
}

static int run_claim(StepRun *run, void *ctx)
{
        Fix *f = ctx;
        note(f, '+', "desktop");
        f->s = session_new(&f->b, "alice", 1000, f->pool->name, "::1", 1024, 768);
        Desktop *d;
        bool booting;
        cr_assert_eq(pool_desktop_claim(&f->b, f->pool, f->s->id, NULL, f->s, &d, &booting), 0);
        cr_assert_not(booting);
        f->s->desktop = d;
        session_persist(f->s);
        int r = fake_outcome(run, "desktop");
        if (r < 0) {
                /* A step that fails from its own run cleans up after itself. */
                pool_desktop_release(TAKE_PTR(f->s->desktop), "logon failed");
                session_forget(TAKE_PTR(f->s));
        }
        return r;
}

static void undo_claim(void *ctx)
{
        Fix *f = ctx;
        note(f, '-', "desktop");
        if (f->s->desktop)
                pool_desktop_release(TAKE_PTR(f->s->desktop), "logon failed");
        session_forget(TAKE_PTR(f->s));
}

static int run_agent(StepRun *run, void *ctx)
{
        Fix *f = ctx;
        note(f, '+', "agent");
        f->s->desktop->touched = true;  /* what desktop_session_start records */
        return fake_outcome(run, "agent");
}

static void undo_agent(void *ctx) { note(ctx, '-', "agent"); }

static int run_plain(StepRun *run, void *ctx, const char *name)
{
        note(ctx, '+', name);
        return fake_outcome(run, name);
}
static int run_handshake(StepRun *run, void *ctx) { return run_plain(run, ctx, "handshake"); }
static int run_auth(StepRun *run, void *ctx) { return run_plain(run, ctx, "auth"); }
static int run_attach(StepRun *run, void *ctx) { return run_plain(run, ctx, "attach"); }
static int run_frame(StepRun *run, void *ctx) { return run_plain(run, ctx, "first-frame"); }
static void undo_attach(void *ctx) { note(ctx, '-', "attach"); }

static const Step table[] = {
        { "handshake", run_handshake, NULL, 0, false },
        { "auth", run_auth, NULL, 0, false },
        { "desktop", run_claim, undo_claim, 0, false },
        { "agent", run_agent, undo_agent, 0, false },
        { "attach", run_attach, undo_attach, 0, false },
        { "first-frame", run_frame, NULL, 0, false },
};

static void finished(StepRun *run, int r, const char *failed_step, const char *why, void *ctx)
{
        Fix *f = ctx;
        f->finished = true;
        f->result = r;
        snprintf(f->failed, sizeof f->failed, "%s", failed_step ? failed_step : "");
}

static void fake_desktop(Fix *f)
{
        Desktop *d = xmalloc0(sizeof *d);
        d->b = &f->b;
        snprintf(d->id, sizeof d->id, "d-test");
        d->pool = xstrdup("p");
        d->image = xstrdup("tiny");
        d->version = 1;
        d->run_dir = xasprintf("%s/d-test", dir);     /* never created: nothing to remove */
        d->state = DESKTOP_READY;
        uv_timer_init(f->b.loop, &d->boot_timer);
        d->boot_timer.data = d;
        d->next = f->b.desktops;
        f->b.desktops = d;
        f->desk = d;
        desktop_persist(d);
}

static void setup(Fix *f, int fail_at, bool pending)
{
        cr_assert_not_null(mkdtemp(dir));
        memset(f, 0, sizeof *f);
        cur = f;
        config_init_defaults(&f->cfg);
        f->b.loop = uv_default_loop();
        f->b.cfg = &f->cfg;
        _cleanup_free_ char *path = xasprintf("%s/slate.db", dir);
        cr_assert_eq(db_open(path, &f->b.db), 0);
        pool_manager_init(&f->b);
        f->pool = xmalloc0(sizeof *f->pool);
        f->pool->name = xstrdup("p");
        f->pool->image = xstrdup("tiny");
        f->pool->warm = 1;
        f->pool->max = 1;
        f->b.pools = f->pool;
        fake_desktop(f);
        f->fail_at = fail_at;
        f->fail_pending = pending;
}

static size_t rows(Fix *f, const char *what)
{
        size_t n = 0;
        if (strcmp(what, "sessions") == 0) {
                DbSession *a;
                cr_assert_eq(db_session_list(f->b.db, &a, &n), 0);
                db_session_free_array(a, n);
        } else {
                DbDesktop *a;
                cr_assert_eq(db_desktop_list(f->b.db, &a, &n), 0);
                db_desktop_free_array(a, n);
        }
        return n;
}

static void check_failure_at(int at, bool pending)
{
        Fix f;
        setup(&f, at, pending);
        StepRun run;
        steps_init(&run, f.b.loop);
        steps_start(&run, table, ELEMENTSOF(table), &f, finished);
        if (pending) {
                cr_assert(run.running, "step %d should be pending", at);
                cr_assert_eq((int)run.cur, at);
                steps_fail(&run, -ETIMEDOUT, "fake timeout");
        }
        cr_assert(f.finished);
        cr_assert_lt(f.result, 0);
        cr_assert_str_eq(f.failed, table[at].name, "failed at %s, expected %s", f.failed, table[at].name);
        cr_assert_eq(run.rec[at].result, STEP_FAILED);
        for (int i = 0; i < at; i++)
                cr_assert_eq(run.rec[i].result, STEP_UNDONE, "step %d", i);
        for (int i = at + 1; i < (int)ELEMENTSOF(table); i++)
                cr_assert_eq(run.rec[i].result, STEP_NOT_RUN);

        /* Undos in reverse: the expected log is every "+step" up to the failure, then "-step"
         * for those with an undo, newest first (the failing step's own when it was pending). */
        char want[256] = "";
        for (int i = 0; i <= at; i++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s+%s", i ? " " : "", table[i].name);
        for (int i = at; i >= 0; i--)
                if (table[i].undo && (i < at || pending))
                        snprintf(want + strlen(want), sizeof want - strlen(want), " -%s", table[i].name);
        cr_assert_str_eq(f.log, want);

        /* Nothing of the session is left; the desktop is back (untouched) or erased (touched). */
        cr_assert_eq(rows(&f, "sessions"), 0);
        cr_assert_null(f.b.sessions);
        bool touched = at >= 3;    /* the agent step gave the desktop a user session */
        if (at < 2) {
                cr_assert_eq(f.desk->state, DESKTOP_READY);
        } else if (!touched) {
                cr_assert_eq(f.desk->state, DESKTOP_READY, "an untouched desktop goes back to the pool");
                cr_assert_not(desktop_claimed(f.desk));
                cr_assert_eq(rows(&f, "desktops"), 1);
        } else {
                cr_assert_null(f.b.desktops, "a desktop a user session ran in is destroyed");
                cr_assert_eq(rows(&f, "desktops"), 0);
        }
        steps_close(&run, NULL);
        /* The broker's timers live in this stack frame: closed (and the close run) before the
         * next iteration reuses the memory, or the loop's handle queue is corrupted. */
        pool_manager_stop(&f.b);
        uv_close((uv_handle_t *)&f.b.tick, NULL);
        uv_close((uv_handle_t *)&f.b.kick, NULL);
        uv_run(f.b.loop, UV_RUN_NOWAIT);
        db_close(f.b.db);
        rm_rf(dir);
}

Test(steps, failure_at_each_step_unwinds_in_reverse)
{
        for (int at = 0; at < (int)ELEMENTSOF(table); at++) {
                memcpy(dir, "/tmp/slate-steps-XXXXXX", sizeof dir);
                check_failure_at(at, false);
        }
}

Test(steps, failure_of_a_pending_step_undoes_it_too)
{
        for (int at = 0; at < (int)ELEMENTSOF(table); at++) {
                memcpy(dir, "/tmp/slate-steps-XXXXXX", sizeof dir);
                check_failure_at(at, true);
        }
}

static int skip_step(StepRun *run, void *ctx) { return STEP_SKIP; }
static int fail_step(StepRun *run, void *ctx) { return -EIO; }
static int ok_step(StepRun *run, void *ctx) { return STEP_DONE; }

Test(steps, best_effort_steps_go_on_after_a_failure)
{
        static const Step logoff[] = {
                { "detach", skip_step, NULL, 0, true },
                { "agent-stop", fail_step, NULL, 0, true },
                { "destroy", ok_step, NULL, 0, true },
        };
        Fix f = { 0 };
        StepRun run;
        steps_init(&run, uv_default_loop());
        steps_start(&run, logoff, ELEMENTSOF(logoff), &f, finished);
        cr_assert(f.finished);
        cr_assert_eq(f.result, 0);
        cr_assert_eq(run.rec[0].result, STEP_SKIPPED);
        cr_assert_eq(run.rec[1].result, STEP_FAILED);
        cr_assert_eq(run.rec[2].result, STEP_OK);
        steps_close(&run, NULL);
        uv_run(uv_default_loop(), UV_RUN_NOWAIT);
}

static int pending_step(StepRun *run, void *ctx) { return STEP_PENDING; }

Test(steps, a_pending_step_times_out_and_is_undone)
{
        static const Step slow[] = {
                { "auth", ok_step, NULL, 0, false },
                { "agent", pending_step, undo_agent, 30, false },
        };
        Fix f = { 0 };
        StepRun run;
        steps_init(&run, uv_default_loop());
        steps_start(&run, slow, ELEMENTSOF(slow), &f, finished);
        cr_assert_not(f.finished);
        uint64_t t0 = now_ms();
        while (!f.finished && now_ms() - t0 < 2000)
                uv_run(uv_default_loop(), UV_RUN_ONCE);
        cr_assert(f.finished);
        cr_assert_eq(f.result, -ETIMEDOUT);
        cr_assert_str_eq(f.failed, "agent");
        cr_assert_str_eq(f.log, "-agent");
        cr_assert_str_eq(run.why, "agent: no answer in 30 ms");
        steps_close(&run, NULL);
        uv_run(uv_default_loop(), UV_RUN_NOWAIT);
}

/* A step bounded by a setting (a pool's usable-timeout) sets its own timeout from its run; as a
 * best-effort last step its timeout is recorded failed and the list still finishes (logon.c then
 * ends the session). The owner hears each step the list waits on. */
static int usable_step(StepRun *run, void *ctx)
{
        steps_set_timeout(run, 40);
        return STEP_PENDING;
}

static void waiting(StepRun *run, void *ctx) { note(ctx, '?', run->steps[run->cur].name); }

Test(steps, a_step_bounded_by_a_setting_times_out_as_best_effort_and_waits_are_told)
{
        static const Step logon[] = {
                { "auth", ok_step, NULL, 0, false },
                { "first-frame", pending_step, NULL, 0, false },
                { "usable", usable_step, NULL, 0, true },
        };
        Fix f = { 0 };
        StepRun run;
        steps_init(&run, uv_default_loop());
        steps_observe(&run, waiting);
        steps_start(&run, logon, ELEMENTSOF(logon), &f, finished);
        cr_assert_str_eq(f.log, "?first-frame");
        steps_done(&run, 0, NULL);
        cr_assert_str_eq(f.log, "?first-frame ?usable");
        uint64_t t0 = now_ms();
        while (!f.finished && now_ms() - t0 < 2000)
                uv_run(uv_default_loop(), UV_RUN_ONCE);
        cr_assert(f.finished);
        cr_assert_eq(f.result, 0, "a best-effort step's timeout does not fail the list");
        cr_assert_eq(run.rec[2].result, STEP_FAILED);
        cr_assert_geq(run.rec[2].ms, 35);
        steps_close(&run, NULL);
        uv_run(uv_default_loop(), UV_RUN_NOWAIT);
}

/* The refill hold (pool.c): a claim holds spare boots on the whole host until its logon says
 * usable, until its bound passed (the pool's usable-timeout plus the steps before it, capped by
 * refill-hold), or until the desktop is given back. */
Test(steps, a_claim_holds_spare_boots_until_usable_or_the_bound)
{
        static const DesktopEvents logon_events = { 0 };
        Fix f;
        setup(&f, -1, false);
        f.cfg.refill_hold = 5;
        uint64_t t0 = now_ms();
        cr_assert_null(pool_refill_holder(f.b.desktops, t0), "a ready spare holds nothing");
        Desktop *d;
        bool booting;
        cr_assert_eq(pool_desktop_claim(&f.b, f.pool, "s-1", &logon_events, NULL, &d, &booting), 0);
        cr_assert_eq(pool_refill_holder(f.b.desktops, now_ms()), d, "a claimed desktop not yet usable holds");
        cr_assert_eq(pool_refill_holder(f.b.desktops, t0 + 4000), d);
        cr_assert_null(pool_refill_holder(f.b.desktops, now_ms() + 5001), "the hold is bounded by refill-hold");
        pool_desktop_usable(d);
        cr_assert_null(pool_refill_holder(f.b.desktops, now_ms()), "usable ends the hold");

        pool_desktop_release(d, "test");        /* untouched: a spare again */
        cr_assert_eq(pool_desktop_claim(&f.b, f.pool, "s-2", &logon_events, NULL, &d, &booting), 0);
        cr_assert_eq(pool_refill_holder(f.b.desktops, now_ms()), d);
        pool_desktop_release(d, "logon failed");
        cr_assert_null(pool_refill_holder(f.b.desktops, now_ms()), "a desktop given back holds nothing");

        f.cfg.refill_hold = 0;
        cr_assert_eq(pool_desktop_claim(&f.b, f.pool, "s-3", &logon_events, NULL, &d, &booting), 0);
        cr_assert_null(pool_refill_holder(f.b.desktops, now_ms()), "refill-hold 0: no hold");

        /* Below the cap, the hold follows the pool: its usable-timeout plus the steps before it. */
        cr_assert_eq(pool_refill_hold_s(600, 180), 180 + POOL_REFILL_HOLD_START_S);
        cr_assert_eq(pool_refill_hold_s(600, 3600), 600, "refill-hold caps it");
        cr_assert_eq(pool_refill_hold_s(0, 180), 0);
        pool_manager_stop(&f.b);
        uv_close((uv_handle_t *)&f.b.tick, NULL);
        uv_close((uv_handle_t *)&f.b.kick, NULL);
        uv_run(f.b.loop, UV_RUN_NOWAIT);
        db_close(f.b.db);
        rm_rf(dir);
}
