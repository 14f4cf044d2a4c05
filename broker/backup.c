/* Profile backups (backup.h): the job runs in the thread pool; the main loop keeps who is being
 * backed up and who waits. Keys in clear live only in the job and are wiped when it ends. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker/backup.h"
#include "broker/control.h"
#include "broker/progress.h"
#include "broker/db.h"
#include "broker/fault.h"
#include "broker/session.h"
#include "common/log.h"
#include "common/util.h"
#include "streaming/profile.h"
#include "streaming/profile_read.h"
#include "streaming/store.h"

typedef struct Waiter {
        void (*fn)(void *userdata);
        void *userdata;
        struct Waiter *next;
} Waiter;

/* A backup in progress (main loop only): Broker.backups. */
typedef struct BackupRunning {
        char *user;
        Waiter *waiters;
        struct BackupRunning *next;
} Running;


typedef struct BackupJob {
        uv_work_t work;
        Broker *b;
        char *user, *path, *wrapped, *key_file, *qemu_img, *qemu_nbd, *store_dir, *sock_dir;
        int generation, parent;
        BackupDone done;
        void *userdata;
        /* results */
        int r, version;
        char *error;
        bool trusted, incremental, bitmap_ok;
        const char *why;        /* full or incremental, and why (static text) */
        StoreStats st;
        uint64_t ms, dirty_bytes;
        /* profile.backup: the request hears progress and the result */
        ControlRequest *req;
        ProgressRelay progress;
        int last_pct;
} BackupJob;

static Running *running_find(Broker *b, const char *user)
{
        for (Running *r = b->backups; r; r = r->next)
                if (strcmp(r->user, user) == 0)
                        return r;
        return NULL;
}

bool backup_running(Broker *b, const char *user) { return running_find(b, user) != NULL; }

void backup_wait(Broker *b, const char *user, void (*fn)(void *userdata), void *userdata)
{
        Running *r = running_find(b, user);
        if (!r) {
                fn(userdata);
                return;
        }
        Waiter *w = xmalloc0(sizeof *w);
        w->fn = fn;
        w->userdata = userdata;
        w->next = r->waiters;
        r->waiters = w;
}

static void job_free_now(BackupJob *j)
{
        free(j->user);
        free(j->path);
        free(j->wrapped);
        free(j->key_file);
        free(j->qemu_img);
        free(j->qemu_nbd);
        free(j->store_dir);
        free(j->sock_dir);
        free(j->error);
        free(j);
}

static void job_closed(uv_handle_t *h)
{
        BackupJob *j = h->data;
        progress_relay_fini(&j->progress);
        job_free_now(j);
}

static void job_free(BackupJob *j)
{
        if (j->req)
                progress_relay_close(&j->progress, job_closed);
        else
                job_free_now(j);
}

static void job_progress(void *userdata, const char *op, uint64_t done, uint64_t total)
{
        BackupJob *j = userdata;
        int pct = total ? (int)(done * 100 / total) : 100;
        if (pct != j->last_pct) {
                j->last_pct = pct;
                progress_relay_post(&j->progress, op, pct);
        }
}

/* The disk's reads, with the crash point the fault tests use to stop slated mid-backup. */
typedef struct ReadCtx {
        ProfileReader *rd;
        Fault *crash;
} ReadCtx;

int store_acquire(Broker *b, const char *dir, const uint8_t host[32], bool create, Store **ret, char **ret_error)
{
        *ret_error = NULL;
        uv_mutex_lock(&b->store_mu);
        if (b->store && strcmp(b->store_path, dir) != 0) {      /* store-dir changed (a reload) */
                store_close(b->store);
                b->store = NULL;
        }
        if (!b->store) {
                int r = 0;
                if (!create && access(dir, F_OK) < 0) {
                        *ret_error = xasprintf("no block store at %s yet (no profile was backed up)", dir);
                        r = -ENOENT;
                }
                if (r == 0)
                        r = store_open(dir, host, create, &b->store, ret_error);
                if (r < 0) {
                        b->store = NULL;
                        uv_mutex_unlock(&b->store_mu);
                        return r;
                }
                free(b->store_path);
                b->store_path = xstrdup(dir);
        }
        *ret = b->store;
        return 0;
}

void store_release_handle(Broker *b) { uv_mutex_unlock(&b->store_mu); }

void store_handle_close(Broker *b)
{
        uv_mutex_lock(&b->store_mu);
        store_close(b->store);
        b->store = NULL;
        free(b->store_path);
        b->store_path = NULL;
        uv_mutex_unlock(&b->store_mu);
}

static int backup_read(void *userdata, uint64_t offset, void *buf, size_t len)
{
        ReadCtx *c = userdata;
        fault_point(c->crash, "backup-read");
        return profile_reader_read(c->rd, offset, buf, len);
}

static void backup_run(uv_work_t *w)
{
        BackupJob *j = w->data;
        uint64_t t0 = now_ms();
        uint8_t host[PROFILE_KEY_LEN], key[PROFILE_KEY_LEN];
        Store *s = NULL;
        ProfileReader *rd = NULL;
        StoreExtent *dirty = NULL;
        size_t n_dirty = 0;
        j->r = profile_host_key_load(j->key_file, false, host, &j->error);
        if (j->r < 0)
                goto out;
        if (profile_key_unwrap(host, j->user, j->wrapped, key) < 0) {
                j->r = -EBADMSG;
                j->error = xasprintf("the profile key does not open with the host key");
                goto out;
        }
        if ((j->r = store_acquire(j->b, j->store_dir, host, true, &s, &j->error)) < 0)
                goto out;
        j->last_pct = -1;
        store_set_progress(s, j->req ? job_progress : NULL, j);
        if ((j->r = mkdir_p(j->sock_dir, 0700)) < 0) {
                j->error = xasprintf("%s: %s", j->sock_dir, strerror(-j->r));
                goto out;
        }
        if ((j->r = profile_reader_open(j->qemu_nbd, j->path, key, j->sock_dir, &rd, &j->trusted, &j->error)) < 0)
                goto out;
        /* Incremental only from the version the bitmap was cleared at, and only if it still exists. */
        uint64_t psize = 0;
        bool have_parent = j->parent > 0 && store_version_info(s, j->user, j->parent, &psize, NULL) == 0;
        j->incremental = j->trusted && have_parent && psize == profile_reader_size(rd) &&
                         profile_reader_dirty(rd, &dirty, &n_dirty) == 0;
        j->why = j->incremental   ? "incremental (the dirty bitmap)"
                 : !j->trusted    ? "full (no trusted dirty bitmap)"
                 : j->parent <= 0 ? "full (first backup of this disk)"
                 : !have_parent   ? "full (its last version is not in the store)"
                 : psize != profile_reader_size(rd) ? "full (the disk changed size)"
                                  : "full (the dirty bitmap could not be read)";
        for (size_t i = 0; j->incremental && i < n_dirty; i++)
                j->dirty_bytes += dirty[i].length;
        /* A full read skips what the image does not allocate (a fresh profile is mostly holes). */
        if (!j->incremental) {
                free(dirty);
                dirty = NULL;
                n_dirty = 0;
                if (profile_reader_allocated(rd, &dirty, &n_dirty) < 0) {
                        free(dirty);
                        dirty = NULL;
                        n_dirty = 0;
                }
        }
        ReadCtx rc = { rd, &j->b->crash };
        j->r = store_backup(s, j->user, profile_reader_size(rd), backup_read, &rc,
                            j->incremental ? j->parent : 0, dirty, n_dirty, &j->st, &j->version, &j->error);
        profile_reader_close(rd);
        rd = NULL;
        if (j->r < 0)
                goto out;
        /* Committed: now the bitmap may forget (or, untrusted, start over). */
        char *err = NULL;
        j->bitmap_ok = profile_bitmap(j->qemu_img, j->path, key, j->trusted ? PROFILE_BITMAP_CLEAR : PROFILE_BITMAP_RESET,
                                      &err) == 0;
        if (!j->bitmap_ok)
                log_warn("profile of %s: %s (the next backup reads the whole disk)", j->user, err);
        free(err);
out:
        profile_reader_close(rd);
        if (s)
                store_release_handle(j->b);
        free(dirty);
        secret_wipe(host, sizeof host);
        secret_wipe(key, sizeof key);
        j->ms = now_ms() - t0;
}

static void backup_finished(uv_work_t *w, int status)
{
        BackupJob *j = w->data;
        Broker *b = j->b;
        if (j->r == 0) {
                db_profile_set_backup(b->db, j->user, j->generation, j->bitmap_ok ? j->version : 0);
                const StoreStats *st = &j->st;
                session_audit(b, "profile.backup", j->user,
                              "generation %d, version %d: %s, %llu blocks read (%llu zero, %llu already stored), "
                              "%llu chunks new, %llu KiB added, in %llu ms",
                              j->generation, j->version,
                              j->why,
                              (unsigned long long)st->blocks_read, (unsigned long long)st->zero_blocks,
                              (unsigned long long)st->dup_blocks, (unsigned long long)st->new_chunks,
                              (unsigned long long)(st->new_bytes >> 10), (unsigned long long)j->ms);
        } else {
                session_audit(b, "profile.backup-failed", j->user, "generation %d: %s (after %llu ms)", j->generation,
                              j->error ? j->error : strerror(-j->r), (unsigned long long)j->ms);
        }
        b->store_jobs--;
        Running **pp = &b->backups;
        while (*pp && strcmp((*pp)->user, j->user) != 0)
                pp = &(*pp)->next;
        Running *r = *pp;
        if (r)
                *pp = r->next;
        if (j->done)
                j->done(b, j->user, j->r, j->userdata);
        if (j->req) {
                progress_relay_flush(&j->progress);
                if (j->r < 0) {
                        control_reply_error(j->req, -j->r, "%s", j->error ? j->error : strerror(-j->r));
                } else {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "version", json_object_new_int(j->version));
                        json_object_object_add(o, "how", json_object_new_string(j->why));
                        json_object_object_add(o, "blocks_read", json_object_new_int64((int64_t)j->st.blocks_read));
                        json_object_object_add(o, "new_chunks", json_object_new_int64((int64_t)j->st.new_chunks));
                        json_object_object_add(o, "bytes_added", json_object_new_int64((int64_t)j->st.new_bytes));
                        json_object_object_add(o, "ms", json_object_new_int64((int64_t)j->ms));
                        control_reply(j->req, o);
                }
        }
        while (r && r->waiters) {
                Waiter *wt = r->waiters;
                r->waiters = wt->next;
                wt->fn(wt->userdata);
                free(wt);
        }
        if (r) {
                free(r->user);
                free(r);
        }
        job_free(j);
}

int backup_start(Broker *b, const char *user, ControlRequest *req, BackupDone done, void *userdata)
{
        if (running_find(b, user))
                return -EBUSY;
        /* A prune rewrites packs: this logout's changes go with the next backup (the bitmap keeps them). */
        if (b->store_pruning) {
                session_audit(b, "profile.backup-skipped", user, "the store is being pruned; the next backup takes "
                              "this logout's changes");
                return -EBUSY;
        }
        DbProfile p;
        if (db_profile_get(b->db, user, &p) < 0)
                return -ENOENT;
        BackupJob *j = xmalloc0(sizeof *j);
        j->b = b;
        j->user = xstrdup(user);
        j->path = xstrdup(p.path);
        j->wrapped = xstrdup(p.wrapped_key);
        j->generation = p.generation;
        j->parent = p.backup_version;
        db_profile_free(&p);
        j->key_file = xstrdup(b->cfg->profile_key_file);
        j->qemu_img = xstrdup(b->cfg->qemu_img);
        j->qemu_nbd = xstrdup(b->cfg->qemu_nbd);
        j->store_dir = xstrdup(b->cfg->store_dir);
        j->sock_dir = xasprintf("%s/backup/%s", b->cfg->run_dir, user);
        j->done = done;
        j->userdata = userdata;
        j->work.data = j;
        j->req = req;
        if (req)
                progress_relay_init(&j->progress, b->loop, req, j);
        Running *r = xmalloc0(sizeof *r);
        r->user = xstrdup(user);
        r->next = b->backups;
        b->backups = r;
        b->store_jobs++;
        uv_queue_work(b->loop, &j->work, backup_run, backup_finished);
        return 0;
}
