/* The block store, control side: profile.history, profile.restore, store.stats, store.check.
 * Every store access runs in the thread pool (opening a store reads its pack indexes); the host
 * key is read there and wiped after. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "broker/api.h"
#include "broker/backup.h"
#include "broker/control.h"
#include "broker/desktop.h"
#include "broker/fault.h"
#include "broker/progress.h"
#include "broker/session.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "common/username.h"
#include "common/util.h"
#include "streaming/profile.h"
#include "streaming/profile_read.h"
#include "streaming/sftp.h"
#include "streaming/store.h"

typedef struct StoreJob {
        uv_work_t work;
        Broker *b;
        ControlRequest *req;
        char *key_file, *store_dir, *user;
        bool from;              /* store_dir is a replica (profile.restore --from), not slated's store */
        int r;
        char *error;
        /* history */
        int *versions;
        size_t n;
        uint64_t *sizes, *created;
        /* restore */
        int version, generation;
        char *path, *qemu_img, *qemu_nbd, *sock_dir, *wrapped;
        uint64_t size, ms;
        uid_t owner;
        gid_t group;
        /* stats, check */
        bool read_data;
        StoreUsage usage;
        StoreCheck check;
        uint64_t users, all_versions;
        /* replicate, prune */
        char *dest, *sftp, *ssh_config;
        StoreReplicaStats rs;
        unsigned keep_daily, keep_weekly;
        StorePruneStats ps;
        ProgressRelay progress; /* backup, restore, replicate: how far, to the request */
        int last_pct;
        char last_op[16];
} StoreJob;

static StoreJob *job_new(Broker *b, ControlRequest *req, const char *user)
{
        StoreJob *j = xmalloc0(sizeof *j);
        j->work.data = j;
        j->b = b;
        j->req = req;
        j->key_file = xstrdup(b->cfg->profile_key_file);
        j->store_dir = xstrdup(b->cfg->store_dir);
        j->user = user ? xstrdup(user) : NULL;
        progress_relay_init(&j->progress, b->loop, req, j);
        return j;
}

static void job_free_now(uv_handle_t *h)
{
        StoreJob *j = h->data;
        progress_relay_fini(&j->progress);
        free(j->key_file);
        free(j->store_dir);
        free(j->user);
        free(j->error);
        free(j->versions);
        free(j->sizes);
        free(j->created);
        free(j->path);
        free(j->qemu_img);
        free(j->qemu_nbd);
        free(j->sock_dir);
        free(j->wrapped);
        free(j->dest);
        free(j->sftp);
        free(j->ssh_config);
        store_check_free(&j->check);
        free(j);
}

/* After the reply: the relay's handle closes, then the job goes. */
static void job_free(StoreJob *j) { progress_relay_close(&j->progress, job_free_now); }

/* Store progress as percent events on the job's request (only when the percent moves). */
static void job_progress(void *userdata, const char *op, uint64_t done, uint64_t total)
{
        StoreJob *j = userdata;
        int pct = total ? (int)(done * 100 / total) : 100;
        if (pct != j->last_pct || strcmp(op, j->last_op) != 0) {
                j->last_pct = pct;
                snprintf(j->last_op, sizeof j->last_op, "%s", op);
                progress_relay_post(&j->progress, op, pct);
        }
}

/* The store (slated's handle, for this job alone until job_store_done), opened with the host key
 * (made on first use only by a backup). */
static int job_store(StoreJob *j, Store **ret, uint8_t host[PROFILE_KEY_LEN])
{
        uint8_t k[PROFILE_KEY_LEN];
        uint8_t *h = host ? host : k;
        int r = profile_host_key_load(j->key_file, false, h, &j->error);
        if (r == 0 && j->from) {        /* a replica: a handle of its own */
                if (access(j->store_dir, F_OK) < 0) {
                        j->error = xasprintf("no block store at %s", j->store_dir);
                        r = -ENOENT;
                } else {
                        r = store_open(j->store_dir, h, false, ret, &j->error);
                }
        } else if (r == 0) {
                r = store_acquire(j->b, j->store_dir, h, false, ret, &j->error);
        }
        if (r == 0) {
                j->last_pct = -1;
                store_set_progress(*ret, job_progress, j);
        }
        secret_wipe(k, sizeof k);
        return r;
}

static void job_store_done(StoreJob *j, Store *s)
{
        store_set_progress(s, NULL, NULL);
        if (j->from)
                store_close(s);
        else
                store_release_handle(j->b);
}

/* Store jobs other than prune run together; a prune runs alone. */
static bool store_claim(Broker *b, ControlRequest *req, bool prune)
{
        if (b->store_pruning || (prune && b->store_jobs)) {
                control_reply_error(req, EBUSY, "the block store is busy (%s): try again when it is done",
                                    b->store_pruning ? "a prune runs" : "backups, restores or replications run");
                return false;
        }
        if (prune)
                b->store_pruning = true;
        else
                b->store_jobs++;
        return true;
}

static void store_release(Broker *b, bool prune)
{
        if (prune)
                b->store_pruning = false;
        else
                b->store_jobs--;
}

static void reply_done(StoreJob *j, json_object *o)
{
        progress_relay_flush(&j->progress);     /* events still queued go out before the reply */
        if (j->r < 0)
                control_reply_error(j->req, -j->r, "%s", j->error ? j->error : strerror(-j->r));
        else
                control_reply(j->req, o);
        if (j->r < 0)
                json_object_put(o);
}

/* ---- profile.history ---- */

static void history_run(uv_work_t *w)
{
        StoreJob *j = w->data;
        Store *s;
        if ((j->r = job_store(j, &s, NULL)) < 0)
                return;
        store_versions(s, j->user, &j->versions, &j->n);
        j->sizes = xmalloc0(sizeof *j->sizes * (j->n + 1));
        j->created = xmalloc0(sizeof *j->created * (j->n + 1));
        for (size_t i = 0; i < j->n; i++)
                if (store_version_info(s, j->user, j->versions[i], &j->sizes[i], &j->created[i]) < 0)
                        j->sizes[i] = 0;        /* damaged: listed with size 0, store check says more */
        job_store_done(j, s);
}

static void history_done(uv_work_t *w, int status)
{
        StoreJob *j = w->data;
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < j->n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "version", json_object_new_int(j->versions[i]));
                json_object_object_add(o, "size", json_object_new_int64((int64_t)j->sizes[i]));
                json_object_object_add(o, "created", json_object_new_int64((int64_t)j->created[i]));
                json_object_array_add(arr, o);
        }
        reply_done(j, arr);
        job_free(j);
}

static void h_history(Broker *b, ControlRequest *req, json_object *args)
{
        const char *user;
        if (jsonx_get_string(args, "user", &user) < 0 || !user_name_valid(user)) {
                control_reply_error(req, EINVAL, "user: " USER_NAME_RULE);
                return;
        }
        StoreJob *j = job_new(b, req, user);
        uv_queue_work(b->loop, &j->work, history_run, history_done);
}

/* ---- profile.restore ---- */

static void restore_run(uv_work_t *w)
{
        StoreJob *j = w->data;
        uint64_t t0 = now_ms();
        Store *s = NULL;
        ProfileReader *wr = NULL;
        uint8_t host[PROFILE_KEY_LEN], key[PROFILE_KEY_LEN];
        if ((j->r = job_store(j, &s, host)) < 0)
                goto out;
        if (j->version == 0) {
                int *vs;
                size_t n;
                store_versions(s, j->user, &vs, &n);
                j->version = n ? vs[n - 1] : 0;
                free(vs);
        }
        if (j->version <= 0 || (j->r = store_version_info(s, j->user, j->version, &j->size, NULL)) < 0) {
                j->r = j->r < 0 ? j->r : -ENOENT;
                j->error = xasprintf("user %s: no version %d in the store", j->user, j->version);
                goto out;
        }
        /* A new disk under a new key, filled through qemu-nbd (never a file in clear). */
        random_bytes(key, sizeof key);
        if ((j->r = profile_disk_create_blank(j->qemu_img, j->path, j->size, key, j->owner, j->group, &j->error)) < 0)
                goto out;
        if ((j->r = mkdir_p(j->sock_dir, 0700)) < 0 ||
            (j->r = profile_writer_open(j->qemu_nbd, j->path, key, j->sock_dir, &wr, &j->error)) < 0)
                goto fail;
        StoreStats st;
        j->r = store_restore(s, j->user, j->version, profile_writer_write, wr, &st, &j->error);
        if (j->r == 0 && (j->r = profile_writer_flush(wr)) < 0)
                j->error = xstrdup("flushing the restored disk failed");
        profile_reader_close(wr);
        if (j->r < 0)
                goto fail;
        /* Its bitmap counts from the restored version: the next backup is incremental from it. */
        if ((j->r = profile_bitmap(j->qemu_img, j->path, key, PROFILE_BITMAP_ADD, &j->error)) < 0)
                goto fail;
        j->wrapped = profile_key_wrap(host, j->user, key);
        goto out;
fail:
        unlink(j->path);
out:
        if (s)
                job_store_done(j, s);
        secret_wipe(host, sizeof host);
        secret_wipe(key, sizeof key);
        j->ms = now_ms() - t0;
}

static void restore_done(uv_work_t *w, int status)
{
        StoreJob *j = w->data;
        Broker *b = j->b;
        store_release(b, false);
        json_object *o = NULL;
        if (j->r == 0) {
                DbProfile p = { .user = j->user, .generation = j->generation, .path = j->path, .size = j->size,
                                .wrapped_key = j->wrapped, .created = (int64_t)now_realtime_s() };
                if (db_profile_add(b->db, &p) < 0 || db_profile_set_backup(b->db, j->user, j->generation, j->version) < 0) {
                        unlink(j->path);
                        j->r = -EIO;
                        j->error = xstrdup("database error");
                } else {
                        char detail[160];
                        snprintf(detail, sizeof detail, "version %d as generation %d (%llu MiB) in %llu ms", j->version,
                                 j->generation, (unsigned long long)(j->size >> 20), (unsigned long long)j->ms);
                        db_audit(b->db, "profile.restore", j->user, detail);
                        log_info("profile %s: restored %s", j->user, detail);
                        o = json_object_new_object();
                        json_object_object_add(o, "version", json_object_new_int(j->version));
                        json_object_object_add(o, "generation", json_object_new_int(j->generation));
                        json_object_object_add(o, "size", json_object_new_int64((int64_t)j->size));
                        json_object_object_add(o, "ms", json_object_new_int64((int64_t)j->ms));
                }
        }
        reply_done(j, o);
        job_free(j);
}

/* ---- profile.backup: a backup now (as at logout), with progress ---- */

static void h_backup(Broker *b, ControlRequest *req, json_object *args)
{
        const char *user;
        if (jsonx_get_string(args, "user", &user) < 0 || !user_name_valid(user)) {
                control_reply_error(req, EINVAL, "user: " USER_NAME_RULE);
                return;
        }
        /* The disk is open in the desktop meanwhile: the logout backs it up. */
        if (session_find_user(b, user)) {
                control_reply_error(req, EBUSY, "user %s has a session: the logout backs the profile up", user);
                return;
        }
        int r = backup_start(b, user, req, NULL, NULL);
        if (r == -ENOENT)
                control_reply_error(req, ENOENT, "user %s has no profile disk", user);
        else if (r < 0)
                control_reply_error(req, -r, "user %s: %s", user,
                                    b->store_pruning ? "the store is being pruned: try again when it is done"
                                                     : "a backup runs already");
}

/* A version becomes the user's current profile as a new generation (the current one is kept
 * until pruned). Refused while the user has a session or a backup runs. */
static void h_restore(Broker *b, ControlRequest *req, json_object *args)
{
        const char *user;
        if (jsonx_get_string(args, "user", &user) < 0 || !user_name_valid(user)) {
                control_reply_error(req, EINVAL, "user: " USER_NAME_RULE);
                return;
        }
        int64_t version = jsonx_int_or(args, "version", 0);
        if (session_find_user(b, user) || backup_running(b, user)) {
                control_reply_error(req, EBUSY, "user %s has a session or a backup running: try when it ended", user);
                return;
        }
        DbProfile *all = NULL;
        size_t n = 0;
        int gen = 1;
        if (db_profile_list(b->db, true, &all, &n) == 0)
                for (size_t i = 0; i < n; i++)
                        if (strcmp(all[i].user, user) == 0) {
                                gen = MAX(gen, all[i].generation + 1);
                                if (all[i].current && all[i].attached_to && desktop_find(b, all[i].attached_to)) {
                                        control_reply_error(req, EBUSY, "user %s: the profile is attached to %s",
                                                            user, all[i].attached_to);
                                        db_profile_free_array(all, n);
                                        return;
                                }
                        }
        db_profile_free_array(all, n);
        const char *from = jsonx_string_or(args, "from", NULL);
        if (from && from[0] != '/') {
                control_reply_error(req, EINVAL, "from: an absolute directory path (a replica made by store replicate)");
                return;
        }
        if (!store_claim(b, req, false))
                return;
        StoreJob *j = job_new(b, req, user);
        if (from) {
                free(j->store_dir);
                j->store_dir = xstrdup(from);
                j->from = true;
        }
        j->version = (int)version;
        j->generation = gen;
        _cleanup_free_ char *dir = xasprintf("%s/%s", b->profile_dir, user);
        mkdir_p(dir, 0711);
        j->path = xasprintf("%s/gen-%d.qcow2", dir, gen);
        j->qemu_img = xstrdup(b->cfg->qemu_img);
        j->qemu_nbd = xstrdup(b->cfg->qemu_nbd);
        j->sock_dir = xasprintf("%s/backup/%s", b->cfg->run_dir, user);
        j->owner = b->vm_uid;
        j->group = b->vm_gid;
        uv_queue_work(b->loop, &j->work, restore_run, restore_done);
}

/* ---- store.stats, store.check ---- */

static void count_versions(Store *s, uint64_t *users, uint64_t *versions)
{
        char **names;
        size_t nn;
        store_names(s, &names, &nn);
        for (size_t k = 0; k < nn; k++) {
                int *vs;
                size_t n;
                if (store_versions(s, names[k], &vs, &n) < 0)
                        continue;
                *users += n > 0;
                *versions += n;
                free(vs);
        }
        strv_free(names, nn);
}

static void stats_run(uv_work_t *w)
{
        StoreJob *j = w->data;
        Store *s;
        if ((j->r = job_store(j, &s, NULL)) < 0)
                return;
        store_usage(s, &j->usage);
        count_versions(s, &j->users, &j->all_versions);
        job_store_done(j, s);
}

static void stats_done(uv_work_t *w, int status)
{
        StoreJob *j = w->data;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "packs", json_object_new_int64((int64_t)j->usage.packs));
        json_object_object_add(o, "chunks", json_object_new_int64((int64_t)j->usage.chunks));
        json_object_object_add(o, "stored_bytes", json_object_new_int64((int64_t)j->usage.stored_bytes));
        json_object_object_add(o, "users", json_object_new_int64((int64_t)j->users));
        json_object_object_add(o, "versions", json_object_new_int64((int64_t)j->all_versions));
        reply_done(j, o);
        job_free(j);
}

static void h_stats(Broker *b, ControlRequest *req, json_object *args)
{
        StoreJob *j = job_new(b, req, NULL);
        uv_queue_work(b->loop, &j->work, stats_run, stats_done);
}

static void check_run(uv_work_t *w)
{
        StoreJob *j = w->data;
        Store *s;
        if ((j->r = job_store(j, &s, NULL)) < 0)
                return;
        store_check(s, j->read_data, &j->check);
        job_store_done(j, s);
}

static void check_done(uv_work_t *w, int status)
{
        StoreJob *j = w->data;
        store_release(j->b, false);
        StoreCheck *c = &j->check;
        json_object *o = json_object_new_object();
        bool ok = !c->bad_packs && !c->bad_chunks && !c->bad_versions && !c->damaged_versions;
        json_object_object_add(o, "ok", json_object_new_boolean(ok));
        json_object_object_add(o, "packs", json_object_new_int64((int64_t)c->packs));
        json_object_object_add(o, "chunks", json_object_new_int64((int64_t)c->chunks));
        json_object_object_add(o, "versions", json_object_new_int64((int64_t)c->versions));
        json_object_object_add(o, "bad_packs", json_object_new_int64((int64_t)c->bad_packs));
        json_object_object_add(o, "bad_chunks", json_object_new_int64((int64_t)c->bad_chunks));
        json_object_object_add(o, "bad_versions", json_object_new_int64((int64_t)c->bad_versions));
        json_object_object_add(o, "damaged_versions", json_object_new_int64((int64_t)c->damaged_versions));
        json_object_object_add(o, "read_data", json_object_new_boolean(j->read_data));
        if (c->report)
                json_object_object_add(o, "report", json_object_new_string(c->report));
        if (j->r == 0 && !ok)
                db_audit(j->b->db, "store.check-failed", "store", c->report ? c->report : "");
        reply_done(j, o);
        job_free(j);
}

static void h_check(Broker *b, ControlRequest *req, json_object *args)
{
        if (!store_claim(b, req, false))
                return;
        StoreJob *j = job_new(b, req, NULL);
        jsonx_get_bool(args, "read_data", &j->read_data);
        uv_queue_work(b->loop, &j->work, check_run, check_done);
}

/* ---- store.replicate ---- */

static void replicate_run(uv_work_t *w)
{
        StoreJob *j = w->data;
        uint64_t t0 = now_ms();
        uint8_t host[PROFILE_KEY_LEN];
        Store *s;
        if ((j->r = job_store(j, &s, host)) == 0) {
                store_set_sftp(s, j->sftp, j->ssh_config);
                j->r = store_replicate(s, host, j->dest, &j->rs, &j->error);
                job_store_done(j, s);
        }
        secret_wipe(host, sizeof host);
        j->ms = now_ms() - t0;
}

static void replicate_done(uv_work_t *w, int status)
{
        StoreJob *j = w->data;
        store_release(j->b, false);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "dest", json_object_new_string(j->dest));
        json_object_object_add(o, "chunks_sent", json_object_new_int64((int64_t)j->rs.chunks_sent));
        json_object_object_add(o, "bytes_sent", json_object_new_int64((int64_t)j->rs.bytes_sent));
        json_object_object_add(o, "chunks_present", json_object_new_int64((int64_t)j->rs.chunks_present));
        json_object_object_add(o, "versions_sent", json_object_new_int64((int64_t)j->rs.versions_sent));
        json_object_object_add(o, "ms", json_object_new_int64((int64_t)j->ms));
        if (j->r == 0) {
                char detail[256];
                snprintf(detail, sizeof detail, "%llu chunks (%llu KiB) and %llu versions sent, %llu chunks there already, "
                         "in %llu ms", (unsigned long long)j->rs.chunks_sent, (unsigned long long)(j->rs.bytes_sent >> 10),
                         (unsigned long long)j->rs.versions_sent, (unsigned long long)j->rs.chunks_present,
                         (unsigned long long)j->ms);
                db_audit(j->b->db, "store.replicate", j->dest, detail);
        }
        reply_done(j, o);
        job_free(j);
}

static void h_replicate(Broker *b, ControlRequest *req, json_object *args)
{
        const char *dest;
        Sftp probe;
        int remote = jsonx_get_string(args, "dest", &dest) < 0 ? -EINVAL : sftp_parse(dest, "sftp", NULL, &probe);
        if (remote < 0) {
                control_reply_error(req, EINVAL, "dest: an absolute directory path, or HOST:/PATH on another host "
                                    "(reached with sftp)");
                return;
        }
        if (remote > 0)
                sftp_free(&probe);
        if (!store_claim(b, req, false))
                return;
        StoreJob *j = job_new(b, req, NULL);
        j->dest = xstrdup(dest);
        j->sftp = xstrdup(b->cfg->sftp);
        j->ssh_config = b->cfg->replica_ssh_config ? xstrdup(b->cfg->replica_ssh_config) : NULL;
        uv_queue_work(b->loop, &j->work, replicate_run, replicate_done);
}

/* ---- store.prune ---- */

/* slated's fault points in the store (SLATE_CRASH_AT=prune-pack-rewritten: the fault tests kill
 * slated mid-prune). */
static void store_crash(void *userdata, const char *point) { fault_point(userdata, point); }

static void prune_run(uv_work_t *w)
{
        StoreJob *j = w->data;
        uint64_t t0 = now_ms();
        Store *s;
        if ((j->r = job_store(j, &s, NULL)) == 0) {
                store_set_crash_hook(s, store_crash, &j->b->crash);
                j->r = store_prune(s, j->keep_daily, j->keep_weekly, &j->ps, &j->error);
                store_set_crash_hook(s, NULL, NULL);
                job_store_done(j, s);
        }
        j->ms = now_ms() - t0;
}

static void prune_done(uv_work_t *w, int status)
{
        StoreJob *j = w->data;
        store_release(j->b, true);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "versions_kept", json_object_new_int64((int64_t)j->ps.versions_kept));
        json_object_object_add(o, "versions_removed", json_object_new_int64((int64_t)j->ps.versions_removed));
        json_object_object_add(o, "chunks_removed", json_object_new_int64((int64_t)j->ps.chunks_removed));
        json_object_object_add(o, "packs_rewritten", json_object_new_int64((int64_t)j->ps.packs_rewritten));
        json_object_object_add(o, "bytes_freed", json_object_new_int64((int64_t)j->ps.bytes_freed));
        json_object_object_add(o, "ms", json_object_new_int64((int64_t)j->ms));
        if (j->r == 0) {
                char detail[200];
                snprintf(detail, sizeof detail, "keep %u daily, %u weekly: %llu versions kept, %llu removed, %llu KiB freed",
                         j->keep_daily, j->keep_weekly, (unsigned long long)j->ps.versions_kept,
                         (unsigned long long)j->ps.versions_removed, (unsigned long long)(j->ps.bytes_freed >> 10));
                db_audit(j->b->db, "store.prune", "store", detail);
        }
        reply_done(j, o);
        job_free(j);
}

static void h_prune(Broker *b, ControlRequest *req, json_object *args)
{
        int64_t daily = jsonx_int_or(args, "keep_daily", 7), weekly = jsonx_int_or(args, "keep_weekly", 4);
        if (!store_claim(b, req, true))
                return;
        StoreJob *j = job_new(b, req, NULL);
        j->keep_daily = (unsigned)daily;
        j->keep_weekly = (unsigned)weekly;
        uv_queue_work(b->loop, &j->work, prune_run, prune_done);
}

static const ControlCommand commands[] = {
        { "profile.history", h_history, false, { { "user", CONTROL_ARG_STRING, true, 1, 32 } } },
        { "profile.backup", h_backup, true, { { "user", CONTROL_ARG_STRING, true, 1, 32 } } },
        { "profile.restore", h_restore, true,
          { { "user", CONTROL_ARG_STRING, true, 1, 32 }, { "version", CONTROL_ARG_INT, false, 0, 99999999 },
            { "from", CONTROL_ARG_STRING, false, 1, 512 } } },
        { "store.stats", h_stats, false, { {} } },
        { "store.check", h_check, true, { { "read_data", CONTROL_ARG_BOOL, false, 0, 0 } } },
        { "store.replicate", h_replicate, true, { { "dest", CONTROL_ARG_STRING, true, 1, 512 } } },
        { "store.prune", h_prune, true,
          { { "keep_daily", CONTROL_ARG_INT, false, 0, 3650 }, { "keep_weekly", CONTROL_ARG_INT, false, 0, 520 } } },
        {},
};

void api_store_register(Control *c) { control_register(c, commands); }
