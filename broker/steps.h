/* One runner for step lists (logon, reconnect, logoff): an ordered table of steps, each
 * {name, run, undo, timeout}, run one after another on the loop. A step finishes at once or
 * later (steps_done); on failure the steps already done are undone in reverse and the owner
 * hears which step failed. Every step's start and duration are kept for the timeline. Knows
 * nothing of sessions or desktops: the tables and their functions live with their owners. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define STEPS_MAX 16

/* What a step's run returns: done now, skipped (not applicable here), or finishes later
 * through steps_done. A negative errno fails the step. */
enum { STEP_DONE = 0, STEP_SKIP = 1, STEP_PENDING = 2 };

typedef struct StepRun StepRun;

typedef struct Step {
        const char *name;
        int (*run)(StepRun *r, void *ctx);
        void (*undo)(void *ctx);        /* NULL: nothing to undo */
        unsigned timeout_ms;            /* for a pending step; 0 = none */
        bool best_effort;               /* a failure is recorded and the list goes on (logoff) */
} Step;

typedef enum StepResult { STEP_NOT_RUN, STEP_RUNNING, STEP_OK, STEP_SKIPPED, STEP_FAILED, STEP_UNDONE } StepResult;

typedef struct StepRecord {
        uint64_t start_ms;              /* monotonic, now_ms() */
        uint32_t ms;                    /* duration (of the run; undo time is not added) */
        StepResult result;
} StepRecord;

/* Called once at the end: r == 0 when every step ran (or the run was stopped early with
 * steps_stop), else the failing step's error, after the undos. The StepRun's memory must stay
 * valid until steps_close's callback: free the owner there, not in this callback. */
typedef void (*StepFinished)(StepRun *run, int r, const char *failed_step, const char *why, void *ctx);
/* Told each time the list starts waiting on a step (its run returned STEP_PENDING): what the
 * owner may show someone waiting. run->cur is that step. */
typedef void (*StepWaiting)(StepRun *run, void *ctx);

struct StepRun {
        const Step *steps;
        size_t n, cur;
        void *ctx;
        StepFinished finished;
        StepWaiting waiting;            /* NULL: nobody is told */
        uv_timer_t timer;
        bool running, timer_open, in_run;
        int pending_r;                  /* a steps_done() from inside run() */
        bool pending_done;
        unsigned timeout_ms;            /* the current step's bound: its row's, or steps_set_timeout's */
        char why[160];
        StepRecord rec[STEPS_MAX];
};

void steps_init(StepRun *run, uv_loop_t *loop);
/* Start at the first step. The runner must not be running. */
void steps_start(StepRun *run, const Step *steps, size_t n, void *ctx, StepFinished finished);
/* Tell fn whenever a step goes pending (until the next steps_init). */
void steps_observe(StepRun *run, StepWaiting fn);
/* The current (pending) step finished: r = 0, or a negative errno with a reason. */
void steps_done(StepRun *run, int r, const char *why);
/* From inside a step's run: bound this pending step by ms instead of its row's timeout (a
 * setting, such as a pool's usable-timeout); 0 = none. */
void steps_set_timeout(StepRun *run, unsigned ms);
/* Fail the current step from outside (the client left, an administrator ended it). */
void steps_fail(StepRun *run, int r, const char *why);
/* End the run now without undoing anything: the remaining steps are not run. */
void steps_stop(StepRun *run);
/* Index of a step by name in the current table, or -1. */
int steps_index(const StepRun *run, const char *name);
const char *step_result_name(StepResult r);
/* Release the timer (async); the StepRun's memory must stay until close_cb. */
void steps_close(StepRun *run, uv_close_cb close_cb);
