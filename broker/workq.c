/* slated's logon thread pool (workq.h). */
#include <stdbool.h>
#include <stdlib.h>
#include "broker/workq.h"
#include "common/util.h"

typedef struct Item {
        struct Item *next;
        uv_work_t *req;
        uv_work_cb work;
        uv_after_work_cb done;
} Item;

struct WorkQ {
        uv_async_t async;       /* first: the async callback finds the queue from it */
        uv_mutex_t mu;
        uv_cond_t cv;
        Item *todo, **todo_tail;
        Item *finished;         /* run, their done callbacks due on the loop */
        bool stop;
        unsigned n_threads;
        uv_thread_t *threads;
};

static void thread_main(void *arg)
{
        WorkQ *q = arg;
        uv_mutex_lock(&q->mu);
        for (;;) {
                while (!q->todo && !q->stop)
                        uv_cond_wait(&q->cv, &q->mu);
                if (q->stop)
                        break;
                Item *it = q->todo;
                q->todo = it->next;
                if (!q->todo)
                        q->todo_tail = &q->todo;
                uv_mutex_unlock(&q->mu);
                it->work(it->req);
                uv_mutex_lock(&q->mu);
                it->next = q->finished;
                q->finished = it;
                uv_async_send(&q->async);
        }
        uv_mutex_unlock(&q->mu);
}

static void on_finished(uv_async_t *a)
{
        WorkQ *q = (WorkQ *)a;
        uv_mutex_lock(&q->mu);
        Item *list = q->finished;
        q->finished = NULL;
        uv_mutex_unlock(&q->mu);
        /* In submission order as far as it matters: reversed back from the stack. */
        Item *rev = NULL;
        while (list) {
                Item *n = list->next;
                list->next = rev;
                rev = list;
                list = n;
        }
        while (rev) {
                Item *n = rev->next;
                rev->done(rev->req, 0);
                free(rev);
                rev = n;
        }
}

WorkQ *workq_new(uv_loop_t *loop, unsigned threads)
{
        WorkQ *q = xmalloc0(sizeof *q);
        q->todo_tail = &q->todo;
        uv_mutex_init(&q->mu);
        uv_cond_init(&q->cv);
        uv_async_init(loop, &q->async, on_finished);
        q->n_threads = threads ? threads : 1;
        q->threads = xmalloc0(sizeof *q->threads * q->n_threads);
        for (unsigned i = 0; i < q->n_threads; i++)
                if (uv_thread_create(&q->threads[i], thread_main, q) != 0)
                        abort();
        return q;
}

void workq_submit(WorkQ *q, uv_work_t *req, uv_work_cb work, uv_after_work_cb done)
{
        Item *it = xmalloc0(sizeof *it);
        it->req = req;
        it->work = work;
        it->done = done;
        uv_mutex_lock(&q->mu);
        *q->todo_tail = it;
        q->todo_tail = &it->next;
        uv_cond_signal(&q->cv);
        uv_mutex_unlock(&q->mu);
}

void workq_free(WorkQ *q)
{
        if (!q)
                return;
        uv_mutex_lock(&q->mu);
        q->stop = true;
        uv_cond_broadcast(&q->cv);
        uv_mutex_unlock(&q->mu);
        /* Not joined: a PAM module may hang; slated ends with _exit anyway. */
        uv_close((uv_handle_t *)&q->async, NULL);
}

void workq_queue(WorkQ *q, uv_loop_t *loop, uv_work_t *req, uv_work_cb work, uv_after_work_cb done)
{
        if (q)
                workq_submit(q, req, work, done);
        else
                uv_queue_work(loop, req, work, done);
}
