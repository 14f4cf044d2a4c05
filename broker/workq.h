/* A thread pool of slated's own for the work a logon waits on (PAM, a desktop's overlay, the
 * user's disks), apart from libuv's pool, which administrative and background jobs share
 * (publish, diff, verify, capture, backups, the block store): two publishes and a diff no
 * longer stall every logon. The same contract as uv_queue_work: work runs on a pool thread,
 * done on the loop (status 0). */
#pragma once
#include <uv.h>

typedef struct WorkQ WorkQ;

WorkQ *workq_new(uv_loop_t *loop, unsigned threads);
/* At exit: queued work is dropped; threads still in a work function are left to finish. */
void workq_free(WorkQ *q);
void workq_submit(WorkQ *q, uv_work_t *req, uv_work_cb work, uv_after_work_cb done);
/* On q, or on libuv's pool when there is none (tests that build a Broker by hand). */
void workq_queue(WorkQ *q, uv_loop_t *loop, uv_work_t *req, uv_work_cb work, uv_after_work_cb done);
