/* Progress of a job in the thread pool, relayed to its control request on the loop (control
 * progress events are not thread-safe). A full queue drops the event rather than block the worker:
 * steps are few and the reply follows anyway. Embedded in the job; the job frees itself in the
 * close callback, whose handle's data is the owner given at init. */
#pragma once
#include <uv.h>
#include "broker/control.h"

#define PROGRESS_EVENTS_MAX 16

typedef struct ProgressRelay {
        uv_async_t async;               /* first: the async callback finds the relay from it */
        uv_mutex_t lock;
        struct {
                char step[16];
                int percent;
        } events[PROGRESS_EVENTS_MAX];
        size_t n;
        ControlRequest *req;
} ProgressRelay;

void progress_relay_init(ProgressRelay *p, uv_loop_t *loop, ControlRequest *req, void *owner);
/* From the worker thread; the signature of the imaging progress callbacks (userdata = p). */
void progress_relay_post(void *p, const char *step, int percent);
/* On the loop, before the reply: events still queued go out first. */
void progress_relay_flush(ProgressRelay *p);
/* Close the handle; cb runs on the loop with handle->data == owner. Then progress_relay_fini. */
void progress_relay_close(ProgressRelay *p, uv_close_cb cb);
void progress_relay_fini(ProgressRelay *p);
