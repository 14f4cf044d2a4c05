/* The step-list runner (steps.h). A failing step's undo runs too when it failed while pending
 * (it may have done part of its work), so every undo must accept a half-done step. Reentrant
 * calls during an unwind or after the end are ignored: an undo that destroys a desktop may
 * well make its owner call steps_fail again. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "broker/steps.h"
#include "common/util.h"

static const char *const result_names[] = {
        [STEP_NOT_RUN] = "not run", [STEP_RUNNING] = "running", [STEP_OK] = "ok",
        [STEP_SKIPPED] = "skipped", [STEP_FAILED] = "failed",  [STEP_UNDONE] = "undone",
};

const char *step_result_name(StepResult r) { return r <= STEP_UNDONE ? result_names[r] : "?"; }

void steps_init(StepRun *run, uv_loop_t *loop)
{
        memset(run, 0, sizeof *run);
        uv_timer_init(loop, &run->timer);
        run->timer.data = run;
        run->timer_open = true;
}

int steps_index(const StepRun *run, const char *name)
{
        for (size_t i = 0; i < run->n; i++)
                if (strcmp(run->steps[i].name, name) == 0)
                        return (int)i;
        return -1;
}

static void record_end(StepRun *run, StepResult res)
{
        StepRecord *rec = &run->rec[run->cur];
        rec->ms = (uint32_t)(now_ms() - rec->start_ms);
        rec->result = res;
}

/* The current step failed: undo what was done, newest first, then tell the owner. The failed
 * step's own undo runs only when it failed while pending (it may have done part of its work);
 * a step whose run returned an error cleaned up after itself. */
static void advance(StepRun *run);

static void unwind(StepRun *run, int r, const char *why, bool undo_current)
{
        uv_timer_stop(&run->timer);
        if (run->steps[run->cur].best_effort) {
                record_end(run, STEP_FAILED);
                run->cur++;
                advance(run);
                return;
        }
        record_end(run, STEP_FAILED);
        run->running = false;
        const Step *st = &run->steps[run->cur];
        if (why)
                snprintf(run->why, sizeof run->why, "%s", why);
        else if (!run->why[0])
                snprintf(run->why, sizeof run->why, "%s: %s", st->name, strerror(-r));
        void *ctx = run->ctx;
        if (undo_current && st->undo)
                st->undo(ctx);
        for (size_t i = run->cur; i-- > 0;)
                if (run->rec[i].result == STEP_OK) {
                        if (run->steps[i].undo)
                                run->steps[i].undo(ctx);
                        run->rec[i].result = STEP_UNDONE;
                }
        run->finished(run, r, st->name, run->why, ctx);
}

static void on_timeout(uv_timer_t *t)
{
        StepRun *run = t->data;
        if (!run->running)
                return;
        char why[96];
        snprintf(why, sizeof why, "%s: no answer in %u ms", run->steps[run->cur].name, run->timeout_ms);
        unwind(run, -ETIMEDOUT, why, true);
}

static void advance(StepRun *run)
{
        while (run->cur < run->n) {
                const Step *st = &run->steps[run->cur];
                run->rec[run->cur].start_ms = now_ms();
                run->rec[run->cur].result = STEP_RUNNING;
                run->in_run = true;
                run->pending_done = false;
                run->timeout_ms = st->timeout_ms;
                int r = st->run(run, run->ctx);
                run->in_run = false;
                if (!run->running)
                        return;         /* stopped from inside run */
                if (r == STEP_PENDING && run->pending_done)
                        r = run->pending_r;     /* finished synchronously through steps_done */
                if (r == STEP_PENDING) {
                        if (run->timeout_ms)
                                uv_timer_start(&run->timer, on_timeout, run->timeout_ms, 0);
                        if (run->waiting)
                                run->waiting(run, run->ctx);
                        return;
                }
                if (r < 0) {
                        unwind(run, r, NULL, false);
                        return;
                }
                record_end(run, r == STEP_SKIP ? STEP_SKIPPED : STEP_OK);
                run->cur++;
        }
        run->running = false;
        run->finished(run, 0, NULL, NULL, run->ctx);
}

void steps_start(StepRun *run, const Step *steps, size_t n, void *ctx, StepFinished finished)
{
        if (n > STEPS_MAX)
                n = STEPS_MAX;
        run->steps = steps;
        run->n = n;
        run->cur = 0;
        run->ctx = ctx;
        run->finished = finished;
        run->running = true;
        run->why[0] = 0;
        memset(run->rec, 0, sizeof run->rec);
        advance(run);
}

void steps_done(StepRun *run, int r, const char *why)
{
        if (!run->running)
                return;
        if (run->in_run) {
                run->pending_done = true;
                run->pending_r = r < 0 ? r : STEP_DONE;
                if (r < 0 && why)
                        snprintf(run->why, sizeof run->why, "%s", why);
                /* An error reported from inside run is that step's own: it cleans up itself. */
                return;
        }
        uv_timer_stop(&run->timer);
        if (r < 0) {
                unwind(run, r, why, true);
                return;
        }
        record_end(run, STEP_OK);
        run->cur++;
        advance(run);
}

void steps_observe(StepRun *run, StepWaiting fn) { run->waiting = fn; }

void steps_set_timeout(StepRun *run, unsigned ms)
{
        if (run->running && run->in_run)
                run->timeout_ms = ms;
}

void steps_fail(StepRun *run, int r, const char *why)
{
        if (!run->running)
                return;
        if (run->in_run) {
                steps_done(run, r, why);
                return;
        }
        unwind(run, r, why, true);
}

void steps_stop(StepRun *run)
{
        if (!run->running)
                return;
        uv_timer_stop(&run->timer);
        if (run->rec[run->cur].result == STEP_RUNNING)
                record_end(run, STEP_SKIPPED);
        run->running = false;
        run->finished(run, 0, NULL, NULL, run->ctx);
}

void steps_close(StepRun *run, uv_close_cb close_cb)
{
        uv_timer_stop(&run->timer);
        run->running = false;
        if (run->timer_open) {
                run->timer_open = false;
                uv_close((uv_handle_t *)&run->timer, close_cb);
        }
}
