/* App layers and profile disks at logon and logoff (userdisks.h). Slow work (hashing a layer
 * whose file changed, creating a profile disk, reading the host key) runs in the thread pool;
 * the disks go into the desktop's two slots (hv.h): all layers stacked as one disk, and the
 * profile; the agent is told where each lies. A late answer for a
 * session that moved on is recognised by its sequence number and dropped. Keys in clear live
 * only in a job's buffer and are wiped as soon as the attach command was sent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/backup.h"
#include "broker/desktop.h"
#include "broker/pool.h"
#include "broker/session.h"
#include "broker/userdisks.h"
#include "broker/workq.h"
#include "common/log.h"
#include "common/util.h"
#include "streaming/entitle.h"
#include "streaming/layer.h"
#include "streaming/profile.h"

#define LAYERS_MAX (AGENT_DISKS_MAX - 1)        /* one entry stays for the profile */
#define STACK_FILE "apps.vmdk"                  /* in the desktop's run dir */

/* A disk job's way back to its session: by id, and only while the step that started it runs. */
typedef struct DiskTicket {
        Broker *b;
        char session[24];
        unsigned seq;
        bool logoff;
} DiskTicket;

static DiskTicket ticket(Session *s, bool logoff)
{
        DiskTicket t = { .b = s->b, .seq = ++s->disk_seq, .logoff = logoff };
        snprintf(t.session, sizeof t.session, "%s", s->id);
        return t;
}

/* The session and its running step list, if the ticket is still the current one. */
static Session *ticket_session(const DiskTicket *t, StepRun **ret_run)
{
        Session *s = session_find(t->b, t->session);
        if (!s || s->disk_seq != t->seq)
                return NULL;
        StepRun *run = t->logoff ? &s->logoff : s->logon_run;
        if (!run || !run->running)
                return NULL;
        *ret_run = run;
        return s;
}

/* ---- app layers ---- */

typedef struct Layer {
        DbAppVersion v;         /* owned (strings) */
        LayerFingerprint known, fp;
        bool has_known, hashed;
        char *error;
} Layer;

typedef struct AppsJob {
        uv_work_t work;
        DiskTicket t;
        Layer layers[LAYERS_MAX];
        unsigned n;
        char *stack;            /* the stack's descriptor; NULL when no layer passed */
        char *stack_error;
} AppsJob;

static void take_version(Layer *l, DbAppVersion *v)
{
        l->v = *v;
        *v = (DbAppVersion){ 0 };
        l->has_known = l->v.fingerprint && layer_fingerprint_parse(l->v.fingerprint, &l->known) == 0;
}

static void apps_job_free(AppsJob *j)
{
        for (unsigned i = 0; i < j->n; i++) {
                db_app_version_free(&j->layers[i].v);
                free(j->layers[i].error);
        }
        free(j->stack);
        free(j->stack_error);
        free(j);
}

/* Verifies each layer, then stacks those that passed into one disk, in list order (the first
 * listed is the top-most layer and the first extent). */
static void apps_verify(uv_work_t *w)
{
        AppsJob *j = w->data;
        const char *images[LAYERS_MAX];
        uint64_t sizes[LAYERS_MAX];
        char *paths[LAYERS_MAX];
        unsigned n = 0;
        for (unsigned i = 0; i < j->n; i++) {
                Layer *l = &j->layers[i];
                if (layer_verify(l->v.path, l->v.sha256, l->v.size, l->has_known ? &l->known : NULL, &l->fp,
                                 &l->hashed, &l->error) < 0)
                        continue;
                if (l->fp.size == 0 || l->fp.size % LAYER_STACK_ALIGN) {
                        l->error = xasprintf("layer.img is %llu bytes, not a multiple of %d",
                                             (unsigned long long)l->fp.size, LAYER_STACK_ALIGN);
                        continue;
                }
                paths[n] = xasprintf("%s/" LAYER_IMAGE_FILE, l->v.path);
                images[n] = paths[n];
                sizes[n++] = l->fp.size;
        }
        if (n > 0 && layer_stack_write(j->stack, images, sizes, n, &j->stack_error) < 0) {
                free(j->stack);
                j->stack = NULL;
        }
        if (n == 0) {
                free(j->stack);
                j->stack = NULL;
        }
        for (unsigned i = 0; i < n; i++)
                free(paths[i]);
}

/* One slot's attach: the disks the agent is told of once it is in. */
typedef struct SlotAttach {
        DiskTicket t;
        AgentDisk disks[AGENT_DISKS_MAX];
        unsigned n;
} SlotAttach;

static void attach_answered(HvVm *vm, int r, const char *error, void *userdata)
{
        SlotAttach *a = userdata;
        StepRun *run;
        Session *s = ticket_session(&a->t, &run);
        bool profile = a->disks[0].kind == AGENT_DISK_PROFILE;
        if (s) {
                if (r < 0) {
                        log_error("session %s: %s: attach failed: %s", s->id, profile ? "profile" : "app layers",
                                  error ? error : strerror(-r));
                        session_audit(s->b, profile ? "profile.attach-failed" : "app.attach-failed", s->user,
                                      "session %s: %s: %s", s->id, profile ? "profile" : "app layers",
                                      error ? error : strerror(-r));
                } else {
                        for (unsigned i = 0; i < a->n && s->n_disks < AGENT_DISKS_MAX; i++)
                                s->disks[s->n_disks++] = a->disks[i];
                }
                /* Layers that cannot be attached leave the user without those apps; a profile that
                 * cannot be attached fails the logon (the session would write into a throwaway home). */
                steps_done(run, r < 0 && profile ? -EIO : 0, r < 0 && profile ? "the profile disk could not be attached" : NULL);
        }
        free(a);
}

static void apps_verified(uv_work_t *w, int status)
{
        AppsJob *j = w->data;
        StepRun *run;
        Session *s = ticket_session(&j->t, &run);
        if (!s || !s->desktop) {
                apps_job_free(j);
                return;
        }
        Broker *b = s->b;
        SlotAttach *a = xmalloc0(sizeof *a);
        a->t = j->t;
        uint64_t offset = 0;
        for (unsigned i = 0; i < j->n; i++) {
                Layer *l = &j->layers[i];
                if (l->error) {
                        log_error("session %s: app %s v%d not attached: %s", s->id, l->v.name, l->v.version, l->error);
                        session_audit(b, "app.attach-refused", s->user, "app %s v%d: %s", l->v.name, l->v.version,
                                      l->error);
                        db_audit(b->db, "app.verify-failed", l->v.name, l->error);
                        continue;
                }
                if (l->hashed) {
                        _cleanup_free_ char *fp = layer_fingerprint_format(&l->fp);
                        db_app_version_set_fingerprint(b->db, l->v.name, l->v.version, fp);
                }
                AgentDisk *d = &a->disks[a->n++];
                d->kind = AGENT_DISK_LAYER;
                snprintf(d->serial, sizeof d->serial, "%s", hv_slot_serial(HV_SLOT_APPS));
                snprintf(d->name, sizeof d->name, "%s", l->v.name);
                d->offset = offset;
                d->length = l->fp.size;
                offset += l->fp.size;
        }
        if (a->n > 0 && !j->stack) {
                log_error("session %s: app layers: %s", s->id, j->stack_error);
                session_audit(b, "app.attach-failed", s->user, "session %s: app layers: %s", s->id, j->stack_error);
                a->n = 0;
        }
        int r = -ENOENT;
        if (a->n > 0) {
                HvDisk d = { .slot = HV_SLOT_APPS, .path = j->stack, .format = "vmdk" };
                r = desktop_disk_attach(s->desktop, &d, attach_answered, a);
                if (r < 0) {
                        log_error("session %s: app layers: attach: %s", s->id, strerror(-r));
                        session_audit(b, "app.attach-failed", s->user, "session %s: app layers: %s", s->id,
                                      strerror(-r));
                }
        }
        apps_job_free(j);
        if (r < 0) {
                free(a);
                steps_done(run, 0, NULL);
        }
}

/* Is this layer for the desktop's image? Another image: never. An older version of the same
 * image: by the pool's layer policy, with an audit line either way. */
static bool layer_fits(Session *s, const DbAppVersion *v)
{
        Desktop *d = s->desktop;
        Broker *b = s->b;
        if (strcmp(v->image, d->image) != 0) {
                session_audit(b, "app.attach-refused", s->user,
                              "app %s v%d was made for image %s, the desktop runs %s:v%d: not attached", v->name,
                              v->version, v->image, d->image, d->version);
                return false;
        }
        if (v->image_version == d->version)
                return true;
        Pool *pool = pool_find(b, s->pool);
        bool refuse = (pool && pool->layer_refuse_older) || v->image_version > d->version;
        session_audit(b, refuse ? "app.attach-refused" : "app.attach-warning", s->user,
                      "app %s v%d was made for %s:v%d, the desktop runs v%d: %s", v->name, v->version, v->image,
                      v->image_version, d->version,
                      refuse ? "not attached" : "attached anyway (the pool's layer policy is warn)");
        return !refuse;
}

int userdisks_entitled_apps(Broker *b, const char *user, const gid_t *groups, int ngroups, char ***ret, size_t *ret_n)
{
        char **names = NULL;
        size_t nn = 0, n = 0;
        int r = db_app_names(b->db, &names, &nn);
        if (r < 0)
                return r;
        for (size_t i = 0; i < nn; i++) {
                char **ents = NULL;
                size_t ne = 0;
                db_app_entitlement_list(b->db, names[i], &ents, &ne);
                if (entitle_match(ents, ne, user, groups, ngroups))
                        names[n++] = TAKE_PTR(names[i]);
                else
                        free(names[i]);
                strv_free(ents, ne);
        }
        *ret = names;
        *ret_n = n;
        return 0;
}

int userdisks_apps(Session *s, StepRun *run)
{
        if (s->agent_started || !s->desktop)
                return STEP_SKIP;
        Broker *b = s->b;
        if (!(s->desktop->agent_caps & AGENT_CAP_DISK_SLOTS))
                return STEP_SKIP;
        gid_t groups[256];
        int ngroups = (int)ELEMENTSOF(groups);
        session_user_uid(s->user, groups, &ngroups);
        AppsJob *j = xmalloc0(sizeof *j);
        char **names = NULL;
        size_t nn = 0;
        userdisks_entitled_apps(b, s->user, groups, ngroups, &names, &nn);
        for (size_t i = 0; i < nn; i++) {
                DbAppVersion *vs = NULL;
                size_t vn = 0;
                if (db_app_versions(b->db, names[i], &vs, &vn) == 0)
                        for (size_t k = 0; k < vn; k++) {
                                if (!vs[k].current || strcmp(vs[k].state, "available") != 0 || !layer_fits(s, &vs[k]))
                                        continue;
                                if (j->n == LAYERS_MAX) {
                                        session_audit(b, "app.attach-refused", s->user,
                                                      "app %s: more than %d layers for one user; not attached",
                                                      names[i], LAYERS_MAX);
                                        continue;
                                }
                                take_version(&j->layers[j->n++], &vs[k]);
                        }
                db_app_version_free_array(vs, vn);
        }
        strv_free(names, nn);
        if (j->n == 0) {
                apps_job_free(j);
                return STEP_SKIP;
        }
        j->t = ticket(s, false);
        j->work.data = j;
        j->stack = xasprintf("%s/" STACK_FILE, s->desktop->run_dir);
        workq_queue(b->logon_q, b->loop, &j->work, apps_verify, apps_verified);
        return STEP_PENDING;
}

/* ---- profile ---- */

typedef struct ProfileJob {
        uv_work_t work;
        DiskTicket t;
        char *user, *path, *key_file, *qemu_img, *wrapped, *spare_dir;
        bool try_spare, from_spare;
        uint64_t size;
        uid_t owner;
        gid_t group;
        bool create;
        uint64_t grow_to;       /* the user's quota, when above the disk's size */
        int grow_r;
        char *grow_error;
        char pass[PROFILE_PASSPHRASE_LEN + 1];  /* wiped when done */
        char *error;
        int r;
        uint64_t ms;
} ProfileJob;

static void profile_job_free(ProfileJob *j)
{
        secret_wipe(j->pass, sizeof j->pass);
        free(j->user);
        free(j->path);
        free(j->key_file);
        free(j->qemu_img);
        free(j->wrapped);
        free(j->spare_dir);
        free(j->error);
        free(j->grow_error);
        free(j);
}

/* A host key rotation cut short after its database commit: the keys are wrapped by PATH.next. */
static bool unwrap_with_next(ProfileJob *j, uint8_t key[PROFILE_KEY_LEN])
{
        _cleanup_free_ char *next = xasprintf("%s" PROFILE_HOST_KEY_NEXT_SUFFIX, j->key_file);
        _cleanup_free_ char *err = NULL;
        uint8_t host[PROFILE_KEY_LEN];
        if (profile_host_key_load(next, false, host, &err) < 0)
                return false;
        bool ok = profile_key_unwrap(host, j->user, j->wrapped, key) == 0;
        secret_wipe(host, sizeof host);
        return ok;
}

static void profile_prepare(uv_work_t *w)
{
        ProfileJob *j = w->data;
        uint64_t t0 = now_ms();
        uint8_t host[PROFILE_KEY_LEN], key[PROFILE_KEY_LEN];
        j->r = profile_host_key_load(j->key_file, j->create, host, &j->error);
        if (j->r < 0)
                return;
        if (j->create) {
                _cleanup_free_ char *dir = xstrdup(j->path);
                *strrchr(dir, '/') = 0;
                mkdir_p(dir, 0711);
                j->from_spare = j->try_spare && profile_spare_claim(j->spare_dir, j->size, host, j->path, key) == 0;
                if (!j->from_spare) {
                        random_bytes(key, sizeof key);
                        j->r = profile_disk_create(j->qemu_img, NULL, j->path, j->size, key, j->owner, j->group,
                                                   &j->error);
                }
                if (j->r == 0)
                        j->wrapped = profile_key_wrap(host, j->user, key);
        } else if (profile_key_unwrap(host, j->user, j->wrapped, key) < 0 && !unwrap_with_next(j, key)) {
                j->r = -EBADMSG;
                j->error = xasprintf("the profile key does not open with the host key %s (a different host key, "
                                     "or a changed database)", j->key_file);
        }
        /* A raised quota grows the disk before it is opened; a failure only keeps the old size. */
        if (j->r == 0 && !j->create && j->grow_to > j->size)
                j->grow_r = profile_disk_grow(j->qemu_img, j->path, j->grow_to, key, &j->grow_error);
        if (j->r == 0)
                profile_passphrase(key, j->pass);
        secret_wipe(host, sizeof host);
        secret_wipe(key, sizeof key);
        j->ms = now_ms() - t0;
}

static void profile_prepared(uv_work_t *w, int status)
{
        ProfileJob *j = w->data;
        StepRun *run;
        Session *s = ticket_session(&j->t, &run);
        if (!s || !s->desktop) {
                if (j->create && j->r == 0)
                        unlink(j->path);        /* nobody will record it: no orphan disk */
                profile_job_free(j);
                return;
        }
        Broker *b = s->b;
        if (j->r < 0) {
                log_error("session %s: profile of %s: %s", s->id, s->user, j->error);
                session_audit(b, "profile.attach-failed", s->user, "session %s: %s", s->id, j->error);
                steps_done(run, j->r, "the profile disk could not be prepared");
                profile_job_free(j);
                return;
        }
        DbProfile p = { 0 };
        int gen = 1;
        if (j->create) {
                DbProfile *all = NULL;
                size_t n = 0;
                if (db_profile_list(b->db, true, &all, &n) == 0)
                        for (size_t i = 0; i < n; i++)
                                if (strcmp(all[i].user, s->user) == 0)
                                        gen = MAX(gen, all[i].generation + 1);
                db_profile_free_array(all, n);
                _cleanup_free_ char *final = xasprintf("%s/%s/gen-%d.qcow2", b->profile_dir, s->user, gen);
                if (strcmp(final, j->path) != 0 && rename(j->path, final) < 0) {
                        steps_done(run, -errno, "the profile disk could not be stored");
                        profile_job_free(j);
                        return;
                }
                p = (DbProfile){ .user = s->user, .generation = gen, .path = final, .size = j->size,
                                 .wrapped_key = j->wrapped, .created = (int64_t)now_realtime_s() };
                if (db_profile_add(b->db, &p) < 0) {
                        unlink(final);
                        steps_done(run, -EIO, "the profile could not be recorded");
                        profile_job_free(j);
                        return;
                }
                session_audit(b, "profile.create", s->user, "generation %d, %llu MiB, encrypted, in %llu ms%s", gen,
                              (unsigned long long)(j->size >> 20), (unsigned long long)j->ms,
                              j->from_spare ? " (a spare disk)" : "");
                if (j->from_spare)
                        userdisks_spares_refill(b);
                free(j->path);
                j->path = xstrdup(final);
        }
        DbProfile cur;
        if (db_profile_get(b->db, s->user, &cur) < 0) {
                steps_done(run, -EIO, "the profile vanished");
                profile_job_free(j);
                return;
        }
        if (j->grow_to > cur.size) {
                if (j->grow_r == 0) {
                        session_audit(b, "profile.grow", s->user, "generation %d: %llu MiB -> %llu MiB (the quota)",
                                      cur.generation, (unsigned long long)(cur.size >> 20),
                                      (unsigned long long)(j->grow_to >> 20));
                        db_profile_set_size(b->db, s->user, cur.generation, j->grow_to);
                        cur.size = j->grow_to;
                } else {
                        session_audit(b, "profile.grow-failed", s->user, "generation %d stays %llu MiB: %s",
                                      cur.generation, (unsigned long long)(cur.size >> 20), j->grow_error);
                }
        }
        /* The lock: recorded before QEMU opens the file, so a crash between the two leaves a lock
         * that the next logon recovers (its desktop is gone) rather than a disk attached twice. */
        db_profile_set_attached(b->db, s->user, cur.generation, s->desktop->id, (int64_t)now_realtime_s());
        if (!cur.clean && !j->create)
                session_audit(b, "profile.recover", s->user,
                              "generation %d was not detached cleanly last time (its desktop died): the guest "
                              "replays the journal at this mount", cur.generation);
        SlotAttach *a = xmalloc0(sizeof *a);
        a->t = j->t;
        a->n = 1;
        a->disks[0].kind = AGENT_DISK_PROFILE;
        snprintf(a->disks[0].serial, sizeof a->disks[0].serial, "%s", hv_slot_serial(HV_SLOT_PROFILE));
        a->disks[0].length = cur.size;
        HvDisk d = { .slot = HV_SLOT_PROFILE, .path = cur.path, .format = "qcow2", .secret = j->pass };
        int r = desktop_disk_attach(s->desktop, &d, attach_answered, a);
        secret_wipe(j->pass, sizeof j->pass);
        db_profile_free(&cur);
        profile_job_free(j);
        if (r < 0) {
                free(a);
                steps_done(run, r, "the profile disk could not be attached");
        }
}

static void profile_resume(void *userdata)
{
        DiskTicket *t = userdata;
        StepRun *run;
        Session *s = ticket_session(t, &run);
        free(t);
        if (!s)
                return;
        int r = userdisks_profile(s, run);
        if (r != STEP_PENDING)
                steps_done(run, r < 0 ? r : 0, r < 0 ? "the profile disk is busy" : NULL);
}

int userdisks_profile(Session *s, StepRun *run)
{
        if (s->agent_started || !s->desktop)
                return STEP_SKIP;
        Broker *b = s->b;
        if (!(s->desktop->agent_caps & AGENT_CAP_DISK_SLOTS)) {
                session_audit(b, "profile.skipped", s->user, "the agent of image %s:v%d cannot mount disks "
                              "(republish the image): the session has no profile", s->desktop->image, s->desktop->version);
                return STEP_SKIP;
        }
        Pool *pool = pool_find(b, s->pool);
        if (pool && !pool->profiles)
                return STEP_SKIP;
        if (backup_running(b, s->user)) {
                /* The last logout's backup has the disk open: this logon takes it right after. */
                DiskTicket *t = xmalloc0(sizeof *t);
                *t = ticket(s, false);
                log_info("session %s: %s's profile is being backed up; the logon waits for it", s->id, s->user);
                backup_wait(b, s->user, profile_resume, t);
                return STEP_PENDING;
        }
        ProfileJob *j = xmalloc0(sizeof *j);
        DbProfile p;
        if (db_profile_get(b->db, s->user, &p) == 0) {
                Desktop *holder = p.attached_to ? desktop_find(b, p.attached_to) : NULL;
                if (holder && holder != s->desktop && holder->state != DESKTOP_DESTROYED) {
                        session_audit(b, "profile.busy", s->user, "profile attached to desktop %s (pool %s)",
                                      holder->id, holder->pool);
                        db_profile_free(&p);
                        free(j);
                        return -EBUSY;
                }
                if (p.attached_to && !holder)
                        session_audit(b, "profile.lock-recovered", s->user,
                                      "generation %d was still locked by desktop %s, which is gone", p.generation,
                                      p.attached_to);
                j->path = xstrdup(p.path);
                j->wrapped = xstrdup(p.wrapped_key);
                j->size = p.size;
                uint64_t quota;
                if (db_profile_quota_get(b->db, s->user, &quota) == 0 && quota > p.size)
                        j->grow_to = quota;
                db_profile_free(&p);
        } else {
                uint64_t quota;
                j->create = true;
                /* The user's quota, else the pool's size, else the setting. */
                j->size = db_profile_quota_get(b->db, s->user, &quota) == 0 ? quota
                          : pool && pool->profile_size                       ? pool->profile_size
                                                                             : b->cfg->profile_size;
                j->try_spare = j->size == b->cfg->profile_size;
                j->spare_dir = xasprintf("%s/.spare", b->profile_dir);
                j->path = xasprintf("%s/%s/new-%s.qcow2", b->profile_dir, s->user, s->id);
        }
        j->user = xstrdup(s->user);
        j->key_file = xstrdup(b->cfg->profile_key_file);
        j->qemu_img = xstrdup(b->cfg->qemu_img);
        j->owner = b->vm_uid;
        j->group = b->vm_gid;
        j->t = ticket(s, false);
        j->work.data = j;
        workq_queue(b->logon_q, b->loop, &j->work, profile_prepare, profile_prepared);
        return STEP_PENDING;
}

void userdisks_profile_undo(Session *s)
{
        if (!s)
                return;
        s->disk_seq++;          /* answers still on their way are for nobody now */
        DbProfile p;
        if (db_profile_get(s->b->db, s->user, &p) < 0)
                return;
        /* The agent never mounted it (the session did not start): nothing to replay. */
        if (p.attached_to && s->desktop && strcmp(p.attached_to, s->desktop->id) == 0)
                db_profile_set_detached(s->b->db, s->user, p.generation, true);
        db_profile_free(&p);
}

/* ---- spare disks ---- */

typedef struct SpareJob {
        uv_work_t work;
        Broker *b;
        char *dir, *key_file, *qemu_img, *error;
        uint64_t size;
        unsigned want;
        uid_t owner;
        gid_t group;
        bool made, more;
        uint64_t ms;
} SpareJob;

static void spare_make(uv_work_t *w)
{
        SpareJob *j = w->data;
        if (profile_spare_count(j->dir, j->size) >= j->want)
                return;
        uint8_t host[PROFILE_KEY_LEN];
        if (profile_host_key_load(j->key_file, true, host, &j->error) < 0)
                return;
        uint64_t t0 = now_ms();
        j->made = profile_spare_make(j->qemu_img, j->dir, j->size, host, j->owner, j->group, &j->error) == 0;
        secret_wipe(host, sizeof host);
        j->ms = now_ms() - t0;
        j->more = j->made && profile_spare_count(j->dir, j->size) < j->want;
}

static void spare_made(uv_work_t *w, int status)
{
        SpareJob *j = w->data;
        Broker *b = j->b;
        b->spare_job = false;
        if (j->error)
                log_warn("profiles: a spare disk could not be made: %s", j->error);
        else if (j->made)
                log_info("profiles: a spare %llu MiB disk made in %llu ms", (unsigned long long)(j->size >> 20),
                         (unsigned long long)j->ms);
        bool more = j->more && !b->shutting_down;
        free(j->dir);
        free(j->key_file);
        free(j->qemu_img);
        free(j->error);
        free(j);
        if (more)
                userdisks_spares_refill(b);
}

void userdisks_spares_refill(Broker *b)
{
        if (b->spare_job || b->cfg->profile_spares == 0 || b->shutting_down)
                return;
        SpareJob *j = xmalloc0(sizeof *j);
        j->work.data = j;
        j->b = b;
        j->dir = xasprintf("%s/.spare", b->profile_dir);
        j->key_file = xstrdup(b->cfg->profile_key_file);
        j->qemu_img = xstrdup(b->cfg->qemu_img);
        j->size = b->cfg->profile_size;
        j->want = b->cfg->profile_spares;
        j->owner = b->vm_uid;
        j->group = b->vm_gid;
        b->spare_job = true;
        uv_queue_work(b->loop, &j->work, spare_make, spare_made);
}

/* ---- logoff ---- */

typedef struct DetachJob {
        DiskTicket t;
        char *user;
        int generation;
        bool clean;
} DetachJob;

static void detached(HvVm *vm, int r, const char *error, void *userdata)
{
        DetachJob *j = userdata;
        StepRun *run;
        Session *s = ticket_session(&j->t, &run);
        /* The lock goes whether or not this session still waits: the disk is out of the VM, or the
         * VM is about to be destroyed. Clean only when the guest unmounted it and let go. */
        db_profile_set_detached(j->t.b->db, j->user, j->generation, j->clean && r == 0);
        if (r < 0)
                log_warn("profile of %s: detach: %s", j->user, error ? error : strerror(-r));
        if (s)
                steps_done(run, 0, NULL);
        free(j->user);
        free(j);
}

int userdisks_detach(Session *s, StepRun *run, bool agent_stopped)
{
        Broker *b = s->b;
        DbProfile p;
        if (db_profile_get(b->db, s->user, &p) < 0)
                return STEP_SKIP;
        /* Only this session's own lock: its desktop's, or that of a desktop that is gone. */
        bool mine = p.attached_to && (s->desktop ? strcmp(p.attached_to, s->desktop->id) == 0
                                                 : desktop_find(b, p.attached_to) == NULL);
        if (!mine) {
                db_profile_free(&p);
                return STEP_SKIP;
        }
        if (!s->desktop) {
                /* The desktop died with the disk in it: the next attach replays the journal. */
                db_profile_set_detached(b->db, s->user, p.generation, false);
                db_profile_free(&p);
                return STEP_DONE;
        }
        DetachJob *j = xmalloc0(sizeof *j);
        j->t = ticket(s, true);
        j->user = xstrdup(s->user);
        j->generation = p.generation;
        j->clean = agent_stopped;
        db_profile_free(&p);
        int r = desktop_disk_detach(s->desktop, HV_SLOT_PROFILE, detached, j);
        if (r < 0) {
                /* The VM is going (or gone): the destroy that follows closes the disk; QEMU
                 * flushes on quit. */
                db_profile_set_detached(b->db, s->user, j->generation, agent_stopped);
                free(j->user);
                free(j);
                return STEP_DONE;
        }
        return STEP_PENDING;
}

/* ---- backup ---- */

static void backed_up(Broker *b, const char *user, int r, void *userdata)
{
        DiskTicket *t = userdata;
        StepRun *run;
        Session *s = ticket_session(t, &run);
        free(t);
        /* A failed backup is audited (backup.c) and does not fail the logout. */
        if (s)
                steps_done(run, 0, NULL);
}

int userdisks_backup(Session *s, StepRun *run)
{
        Broker *b = s->b;
        Pool *pool = pool_find(b, s->pool);
        if (!b->cfg->profile_backup || (pool && !pool->profiles))
                return STEP_SKIP;
        DbProfile p;
        if (db_profile_get(b->db, s->user, &p) < 0)
                return STEP_SKIP;
        /* Still open in a running VM (its detach failed and it still runs): not now. A VM that
         * died let go of it (its bitmap is then untrusted: a full read). */
        Desktop *holder = p.attached_to ? desktop_find(b, p.attached_to) : NULL;
        db_profile_free(&p);
        if (holder && holder->vm && holder->state != DESKTOP_DESTROYED && holder->state != DESKTOP_FAILED)
                return STEP_SKIP;
        DiskTicket *t = xmalloc0(sizeof *t);
        *t = ticket(s, true);
        if (backup_start(b, s->user, NULL, backed_up, t) < 0) {
                free(t);
                return STEP_SKIP;
        }
        return STEP_PENDING;
}
