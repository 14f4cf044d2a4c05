/* The QEMU driver's templates and clones (research: instant-clones.md): a template's device state
 * is saved with x-ignore-shared (its RAM is the shared memory-backend file) and a clone started
 * with -incoming defer loads it. The state goes over the monitor as an fd (getfd + "fd:"): QEMU's
 * sandbox kills it at exec:, and 7.2 has no file: URI. Never blocks the loop: query-migrate is
 * polled on a timer. Never resumes a template (its RAM file is every clone's). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "broker/hv_qemu.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

/* query-migrate's pace, and how long a state may take: 4.6 MB of the tiny guest's takes 16-80 ms
 * (research); a desktop's VGA memory and devices are a few MB more. */
#define MIG_POLL_MS 5
#define MIG_DEADLINE_MS 30000
#define MIG_FDNAME "slate-state"

typedef struct HvQemuMigrate {
        HvVm *vm;
        bool save;
        int fd;
        bool started;
        HvDone done;
        void *userdata;
        uv_timer_t timer;
        uint64_t deadline_ms;
} HvQemuMigrate;

static void mig_closed(uv_handle_t *h) { free(h->data); }

/* The operation leaves its VM: its state file closed, its timer closed (which frees it). */
static void mig_release(HvQemuMigrate *m)
{
        m->vm->mig = NULL;
        if (m->fd >= 0)
                close(m->fd);
        m->fd = -1;
        uv_timer_stop(&m->timer);
        uv_close((uv_handle_t *)&m->timer, mig_closed);
}

static void mig_end(HvQemuMigrate *m, int r, const char *error)
{
        HvVm *vm = m->vm;
        mig_release(m);
        if (r < 0)
                log_error("vm %s: %s: %s", vm->id, m->save ? "saving the template" : "loading the template",
                          error ? error : strerror(-r));
        else
                log_info("vm %s: %s in %llu ms after spawn", vm->id, m->save ? "template state saved" : "clone resumed",
                         (unsigned long long)(now_ms() - vm->started_ms));
        if (m->done)
                m->done(vm, r, error, m->userdata);
}

void hv_qemu_migrate_cancel(HvVm *vm)
{
        HvQemuMigrate *m = vm->mig;
        if (!m)
                return;
        m->done = NULL;
        mig_release(m);
}

/* A step's failure: QEMU's own words, or that it is gone (its stderr, logged, says why). */
static const char *step_error(int r, const char *desc, const char *what)
{
        return r == -EPIPE ? "QEMU exited (its last stderr lines say why)" : desc ? desc : what;
}

/* Each QMP step's reply carries the operation; vm->mig == m says it is still ours. */
#define MIG_ALIVE(m) ((m)->vm->mig == (m))

/* The common head of each step's reply: false when the operation is over (cancelled, replaced,
 * or this step failed: then ended with what failed). */
static bool step_ok(HvQemuMigrate *m, int r, const char *desc, const char *what)
{
        if (r == -ECANCELED || !MIG_ALIVE(m))
                return false;
        if (r < 0) {
                mig_end(m, -EIO, step_error(r, desc, what));
                return false;
        }
        return true;
}

static void mig_poll(uv_timer_t *t);

static void on_cont(Qmp *q, int r, json_object *ret, const char *cls, const char *desc, void *userdata)
{
        HvQemuMigrate *m = userdata;
        if (r == -ECANCELED || !MIG_ALIVE(m))
                return;
        mig_end(m, r < 0 ? -EIO : 0, r < 0 ? step_error(r, desc, "cont failed") : NULL);
}

static void on_query(Qmp *q, int r, json_object *ret, const char *cls, const char *desc, void *userdata)
{
        HvQemuMigrate *m = userdata;
        if (!step_ok(m, r, desc, "query-migrate failed"))
                return;
        json_object *st = NULL;
        const char *status = ret && json_object_object_get_ex(ret, "status", &st) ? json_object_get_string(st) : "";
        if (strcmp(status, "completed") == 0) {
                if (m->save) {
                        mig_end(m, 0, NULL);
                        return;
                }
                /* The template was paused when saved, so the clone comes up paused (pitfall 3). */
                if (qmp_command(m->vm->qmp, "cont", NULL, on_cont, m) < 0)
                        mig_end(m, -EPIPE, "monitor gone before cont");
                return;
        }
        if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
                json_object *e = NULL;
                const char *why = ret && json_object_object_get_ex(ret, "error-desc", &e) ? json_object_get_string(e)
                                                                                          : status;
                char msg[256];
                snprintf(msg, sizeof msg, "migration %s", why);
                mig_end(m, -EIO, msg);
                return;
        }
        if (now_ms() > m->deadline_ms) {
                mig_end(m, -ETIMEDOUT, "migration did not complete in time");
                return;
        }
        uv_timer_start(&m->timer, mig_poll, MIG_POLL_MS, 0);
}

static void mig_poll(uv_timer_t *t)
{
        HvQemuMigrate *m = t->data;
        if (!m->vm->qmp || qmp_command(m->vm->qmp, "query-migrate", NULL, on_query, m) < 0)
                mig_end(m, -EPIPE, "monitor gone during the migration");
}

static void on_migrate(Qmp *q, int r, json_object *ret, const char *cls, const char *desc, void *userdata)
{
        HvQemuMigrate *m = userdata;
        if (!step_ok(m, r, desc, "migrate refused"))
                return;
        uv_timer_start(&m->timer, mig_poll, MIG_POLL_MS, 0);
}

static void on_getfd(Qmp *q, int r, json_object *ret, const char *cls, const char *desc, void *userdata)
{
        HvQemuMigrate *m = userdata;
        if (!step_ok(m, r, desc, "getfd refused"))
                return;
        /* QEMU has its own copy now. */
        close(m->fd);
        m->fd = -1;
        json_object *args = json_object_new_object();
        json_object_object_add(args, "uri", json_object_new_string("fd:" MIG_FDNAME));
        if (qmp_command(q, m->save ? "migrate" : "migrate-incoming", args, on_migrate, m) < 0)
                mig_end(m, -EPIPE, "monitor gone");
}

static void on_caps(Qmp *q, int r, json_object *ret, const char *cls, const char *desc, void *userdata)
{
        HvQemuMigrate *m = userdata;
        if (!step_ok(m, r, desc, "x-ignore-shared refused"))
                return;
        json_object *args = json_object_new_object();
        json_object_object_add(args, "fdname", json_object_new_string(MIG_FDNAME));
        r = qmp_command_fd(q, "getfd", args, m->fd, on_getfd, m);
        if (r < 0)
                mig_end(m, r, "cannot pass the state file to QEMU");
}

static void on_stopped(Qmp *q, int r, json_object *ret, const char *cls, const char *desc, void *userdata)
{
        HvQemuMigrate *m = userdata;
        if (!step_ok(m, r, desc, "stop failed"))
                return;
        /* Both sides need x-ignore-shared before the stream: without it the clone refuses the
         * state (pitfall 2), and the template would write its whole RAM into it. */
        json_object *cap = json_object_new_object();
        json_object_object_add(cap, "capability", json_object_new_string("x-ignore-shared"));
        json_object_object_add(cap, "state", json_object_new_boolean(1));
        json_object *caps = json_object_new_array();
        json_object_array_add(caps, cap);
        json_object *args = json_object_new_object();
        json_object_object_add(args, "capabilities", caps);
        if (qmp_command(q, "migrate-set-capabilities", args, on_caps, m) < 0)
                mig_end(m, -EPIPE, "monitor gone");
}

static void mig_begin(HvQemuMigrate *m)
{
        m->started = true;
        m->deadline_ms = now_ms() + MIG_DEADLINE_MS;
        if (m->save) {
                if (qmp_command(m->vm->qmp, "stop", NULL, on_stopped, m) < 0)
                        mig_end(m, -EPIPE, "monitor gone");
        } else {
                on_stopped(m->vm->qmp, 0, NULL, NULL, NULL, m);
        }
}

void hv_qemu_migrate_qmp_ready(HvVm *vm)
{
        if (vm->mig && !vm->mig->started)
                mig_begin(vm->mig);
}

static int mig_start(HvVm *vm, bool save, int fd, HvDone done, void *userdata)
{
        if (vm->exited || vm->stopping || vm->mig) {
                close(fd);
                return vm->mig ? -EBUSY : -ENOTCONN;
        }
        HvQemuMigrate *m = xmalloc0(sizeof *m);
        *m = (HvQemuMigrate){ .vm = vm, .save = save, .fd = fd, .done = done, .userdata = userdata };
        uv_timer_init(vm->loop, &m->timer);
        m->timer.data = m;
        vm->mig = m;
        if (vm->qmp && qmp_is_ready(vm->qmp))
                mig_begin(m);
        return 0;
}

int hv_qemu_vm_save(HvVm *vm, int fd, HvDone done, void *userdata) { return mig_start(vm, true, fd, done, userdata); }

int hv_qemu_vm_restore(HvVm *vm, int fd, HvDone done, void *userdata)
{
        return mig_start(vm, false, fd, done, userdata);
}
