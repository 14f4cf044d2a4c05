/* Progress events from worker threads to control requests (progress.h). */
#include <stdio.h>
#include <string.h>
#include "broker/progress.h"

static void forward(uv_async_t *a) { progress_relay_flush((ProgressRelay *)a); }

void progress_relay_init(ProgressRelay *p, uv_loop_t *loop, ControlRequest *req, void *owner)
{
        p->n = 0;
        p->req = req;
        uv_mutex_init(&p->lock);
        uv_async_init(loop, &p->async, forward);
        p->async.data = owner;
}

void progress_relay_post(void *relay, const char *step, int percent)
{
        ProgressRelay *p = relay;
        uv_mutex_lock(&p->lock);
        if (p->n < PROGRESS_EVENTS_MAX) {
                snprintf(p->events[p->n].step, sizeof p->events[0].step, "%s", step);
                p->events[p->n].percent = percent;
                p->n++;
        }
        uv_mutex_unlock(&p->lock);
        uv_async_send(&p->async);
}

void progress_relay_flush(ProgressRelay *p)
{
        uv_mutex_lock(&p->lock);
        size_t n = p->n;
        __typeof__(p->events) ev;
        memcpy(ev, p->events, n * sizeof ev[0]);
        p->n = 0;
        uv_mutex_unlock(&p->lock);
        for (size_t i = 0; i < n; i++)
                control_progress(p->req, ev[i].step, ev[i].percent);
}

void progress_relay_close(ProgressRelay *p, uv_close_cb cb) { uv_close((uv_handle_t *)&p->async, cb); }

void progress_relay_fini(ProgressRelay *p) { uv_mutex_destroy(&p->lock); }
