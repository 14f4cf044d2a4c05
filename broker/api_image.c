/* Golden image catalogue, control side: publish (staged in the thread pool, committed on the
 * loop), list/show, make current (rollback), retire, verify. The catalogue in SQLite is
 * changed only after the files are safely in place, so a failed publish leaves it untouched. */
#include <errno.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include "broker/api.h"
#include "broker/desktop.h"
#include "broker/pool.h"
#include "broker/control.h"
#include "broker/progress.h"
#include "common/jsonx.h"
#include "common/open_as.h"
#include "common/log.h"
#include "common/util.h"
#include "imaging/catalog.h"
#include "imaging/image_diff.h"
#include "imaging/publish.h"

#define IMAGE_NAME_MAX 64

/* What the publishing pipeline recorded (publish.json next to the disk): the OS, its init
 * system, how many files sealing removed and what was done with the agent. Versions published
 * before the pipeline have no such file and show none of these. */
static void version_add_publish_info(json_object *o, const DbImageVersion *v)
{
        static const char *const keys[] = { "os", "distro", "os_version", "product", "arch", "init", "bootloader" };
        _cleanup_free_ char *dir = xstrdup(v->path);
        char *slash = strrchr(dir, '/');
        if (!slash)
                return;
        *slash = 0;
        _cleanup_json_ json_object *info = NULL;
        if (publish_info_load(dir, &info) < 0)
                return;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const char *val = jsonx_string_or(info, keys[i], NULL);
                if (val)
                        json_object_object_add(o, keys[i], json_object_new_string(val));
        }
        json_object *seal, *agent;
        bool as_is = false;
        if (jsonx_get_bool(info, "as_is", &as_is) == 0 && as_is)
                json_object_object_add(o, "as_is", json_object_new_boolean(true));
        if (json_object_object_get_ex(info, "seal", &seal))
                json_object_object_add(o, "sealed", json_object_new_int64(jsonx_int_or(seal, "count", 0)));
        if (json_object_object_get_ex(info, "agent", &agent))
                json_object_object_add(o, "agent", json_object_new_string(jsonx_string_or(agent, "action", "")));
}

static json_object *version_json(Broker *b, const DbImageVersion *v)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(v->name));
        json_object_object_add(o, "version", json_object_new_int(v->version));
        json_object_object_add(o, "current", json_object_new_boolean(v->current));
        json_object_object_add(o, "state", json_object_new_string(v->state));
        json_object_object_add(o, "format", json_object_new_string(v->format));
        json_object_object_add(o, "size", json_object_new_int64((int64_t)v->size));
        json_object_object_add(o, "virtual_size", json_object_new_int64((int64_t)v->virtual_size));
        json_object_object_add(o, "sha256", json_object_new_string(v->sha256));
        json_object_object_add(o, "boot", json_object_new_string(v->kernel ? "kernel" : "disk"));
        json_object_object_add(o, "path", json_object_new_string(v->path));
        if (v->kernel)
                json_object_object_add(o, "kernel", json_object_new_string(v->kernel));
        if (v->initrd)
                json_object_object_add(o, "initrd", json_object_new_string(v->initrd));
        if (v->cmdline)
                json_object_object_add(o, "cmdline", json_object_new_string(v->cmdline));
        json_object_object_add(o, "created", json_object_new_int64(v->created));
        json_object_object_add(o, "desktops", json_object_new_int((int)desktop_count_version(b, v->name, v->version)));
        version_add_publish_info(o, v);
        return o;
}

/* Look up one version; replies with the error itself when it fails. */
static int find_version(Broker *b, ControlRequest *req, const char *name, int version, DbImageVersion **ret_all,
                        size_t *ret_n, DbImageVersion **ret_v)
{
        int r = db_image_versions(b->db, name, ret_all, ret_n);
        if (r < 0) {
                control_reply_error(req, r, "image %s: %s", name, r == -ENOENT ? "no such image" : strerror(-r));
                return r;
        }
        for (size_t i = 0; i < *ret_n; i++)
                if ((*ret_all)[i].version == version) {
                        *ret_v = &(*ret_all)[i];
                        return 0;
                }
        control_reply_error(req, ENOENT, "image %s: no version %d", name, version);
        db_image_version_free_array(*ret_all, *ret_n);
        return -ENOENT;
}

static int get_name_version(ControlRequest *req, json_object *args, const char **name, int *version)
{
        int64_t v;
        if (jsonx_get_string(args, "name", name) < 0) {
                control_reply_error(req, EINVAL, "missing image name");
                return -EINVAL;
        }
        if (version) {
                if (jsonx_get_int64(args, "version", &v) < 0 || v < 1 || v > 1000000) {
                        control_reply_error(req, EINVAL, "missing or invalid version");
                        return -EINVAL;
                }
                *version = (int)v;
        }
        return 0;
}

/* The name and version a request names, looked up; replies with the error itself when it fails. */
static int find_version_of_args(Broker *b, ControlRequest *req, json_object *args, const char **ret_name,
                                int *ret_version, DbImageVersion **ret_all, size_t *ret_n, DbImageVersion **ret_v)
{
        int r = get_name_version(req, args, ret_name, ret_version);
        if (r < 0)
                return r;
        return find_version(b, req, *ret_name, *ret_version, ret_all, ret_n, ret_v);
}

/* ---- publish ---- */

typedef struct PublishJob {
        uv_work_t work;
        ProgressRelay progress;
        Broker *b;
        ControlRequest *req;
        char *name, *src, *kernel, *initrd, *cmdline, *qemu_img, *image_dir;
        char *agent_binary, *session_script;
        ApplianceConfig appliance;
        bool current, as_is;
        CatalogStaged *staged;
        char *error;
        int r;
        int fds[3];             /* src, kernel, initrd opened with the requester's rights, or -1 */
} PublishJob;

static void publish_run(uv_work_t *w)
{
        PublishJob *j = w->data;
        PublishRequest p = {
                .qemu_img = j->qemu_img, .image_dir = j->image_dir, .src = j->src, .kernel = j->kernel,
                .initrd = j->initrd, .agent_binary = j->agent_binary, .session_script = j->session_script,
                .appliance = j->appliance, .progress = progress_relay_post, .userdata = &j->progress,
                .as_is = j->as_is,
        };
        j->r = publish_stage(&p, &j->staged, &j->error);
}

static void publish_free(uv_handle_t *h)
{
        PublishJob *j = h->data;
        for (int i = 0; i < 3; i++)
                if (j->fds[i] >= 0)
                        close(j->fds[i]);
        progress_relay_fini(&j->progress);
        free(j->name);
        free(j->src);
        free(j->kernel);
        free(j->initrd);
        free(j->cmdline);
        free(j->qemu_img);
        free(j->image_dir);
        free(j->agent_binary);
        free(j->session_script);
        free((char *)j->appliance.kernel);
        free((char *)j->appliance.modules);
        free(j->error);
        free(j);
}

static void publish_done(uv_work_t *w, int status)
{
        PublishJob *j = w->data;
        Broker *b = j->b;
        progress_relay_flush(&j->progress);     /* events still queued go out before the reply */
        if (j->r < 0 || status < 0) {
                log_warn("image %s: publish of %s refused: %s", j->name, j->src, j->error ? j->error : strerror(-j->r));
                db_audit(b->db, "image.publish-failed", j->name, j->error ? j->error : "");
                control_reply_error(j->req, j->r < 0 ? j->r : -EIO, "image %s: %s", j->name,
                                    j->error ? j->error : strerror(-j->r));
                goto out;
        }
        control_progress(j->req, "store", 90);
        DbImageVersion *all = NULL;
        size_t n = 0;
        int next = 1;
        if (db_image_versions(b->db, j->name, &all, &n) == 0)
                for (size_t i = 0; i < n; i++)
                        next = MAX(next, all[i].version + 1);
        db_image_version_free_array(all, n);
        DbImageVersion v = {
                .name = j->name, .state = "available", .format = j->staged->info.format, .size = j->staged->size,
                .virtual_size = j->staged->info.virtual_size, .sha256 = j->staged->sha256, .cmdline = j->cmdline,
                .created = (int64_t)now_realtime_s(),
        };
        int r = catalog_commit(j->staged, j->image_dir, j->name, next, &v.path, &v.kernel, &v.initrd);
        if (r < 0) {
                control_reply_error(j->req, r, "image %s: storing version %d failed: %s", j->name, next, strerror(-r));
                goto out;
        }
        r = db_image_version_add(b->db, &v, j->current);
        if (r < 0 || v.version != next) {
                catalog_remove(j->image_dir, j->name, next);
                control_reply_error(j->req, r < 0 ? r : -EIO, "image %s: recording version failed", j->name);
        } else {
                char detail[128];
                snprintf(detail, sizeof detail, "v%d sha256 %.12s from %s%s", next, v.sha256, j->src,
                         j->as_is ? " as is" : "");
                db_audit(b->db, "image.publish", j->name, detail);
                log_info("image %s: published v%d (%s, %llu bytes, sha256 %.12s)", j->name, next,
                         j->staged->info.format, (unsigned long long)v.size, v.sha256);
                DbImageVersion *vs, *cur = NULL;
                size_t vn;
                if (db_image_versions(b->db, j->name, &vs, &vn) == 0) {
                        for (size_t i = 0; i < vn; i++)
                                if (vs[i].version == next)
                                        cur = &vs[i];
                        json_object *res = cur ? version_json(b, cur) : NULL, *info = NULL;
                        /* The publish reply carries the whole record (seal list, timings). */
                        _cleanup_free_ char *dir = xstrdup(v.path);
                        char *slash = strrchr(dir, '/');
                        if (res && slash && (*slash = 0, publish_info_load(dir, &info) == 0))
                                json_object_object_add(res, "publish", info);
                        control_reply(j->req, res);
                        db_image_version_free_array(vs, vn);
                } else {
                        control_reply(j->req, NULL);
                }
                pool_manager_kick(b);
        }
        free(v.path);
        free(v.kernel);
        free(v.initrd);
out:
        catalog_staged_free(j->staged);
        j->staged = NULL;
        progress_relay_close(&j->progress, publish_free);
}

/* libguestfs' appliance settings from slate.conf and the accelerator slated chose. Sets the
 * SUPERMIN_* environment here, on the loop thread, before any worker can launch one. */
int api_appliance_config(Broker *b, ControlRequest *req, ApplianceConfig *ret)
{
        *ret = (ApplianceConfig){
                .kernel = b->cfg->guestfs_kernel ? xstrdup(b->cfg->guestfs_kernel) : NULL,
                .modules = b->cfg->guestfs_modules ? xstrdup(b->cfg->guestfs_modules) : NULL,
                .force_tcg = b->accel == HV_ACCEL_TCG,
        };
        _cleanup_free_ char *err = NULL;
        int r = appliance_env_apply(ret, &err);
        if (r < 0) {
                control_reply_error(req, r, "libguestfs: %s", err);
                free((char *)ret->kernel);
                free((char *)ret->modules);
        }
        return r;
}

static void h_publish(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name, *path;
        if (jsonx_get_string(args, "name", &name) < 0 || !string_is_name(name, IMAGE_NAME_MAX)) {
                control_reply_error(req, EINVAL, "image name must be 1-%d characters of [A-Za-z0-9._-], "
                                                 "starting with a letter or digit", IMAGE_NAME_MAX);
                return;
        }
        if (jsonx_get_string(args, "path", &path) < 0 || path[0] != '/') {
                control_reply_error(req, EINVAL, "image %s: the file must be given as an absolute path", name);
                return;
        }
        const char *kernel = jsonx_string_or(args, "kernel", NULL), *initrd = jsonx_string_or(args, "initrd", NULL);
        const char *cmdline = jsonx_string_or(args, "cmdline", NULL);
        if ((kernel && kernel[0] != '/') || (initrd && initrd[0] != '/')) {
                control_reply_error(req, EINVAL, "image %s: kernel and initrd must be absolute paths", name);
                return;
        }
        if (initrd && !kernel) {
                control_reply_error(req, EINVAL, "image %s: --initrd needs --kernel", name);
                return;
        }
        if (cmdline && strlen(cmdline) > 1024) {
                control_reply_error(req, EINVAL, "image %s: kernel command line longer than 1024 bytes", name);
                return;
        }
        bool current = false, as_is = false;
        jsonx_get_bool(args, "current", &current);
        jsonx_get_bool(args, "as_is", &as_is);
        /* An admin who is not root reads through slated only what they could read themselves:
         * each file is opened with their rights and used through that fd (/proc/PID/fd/N for
         * qemu-img and libguestfs, slated's children), so no path is looked up twice. */
        int fds[3] = { -1, -1, -1 };
        char *as[3] = { NULL, NULL, NULL };
        const char *given[3] = { path, kernel, initrd };
        uid_t uid;
        gid_t gid;
        control_request_peer(req, &uid, &gid);
        for (int i = 0; i < 3 && uid != 0 && uid != getuid(); i++) {
                if (!given[i])
                        continue;
                int r = open_as(given[i], uid, gid, 0, &fds[i]);
                struct stat st;
                if (r == 0 && fstat(fds[i], &st) == 0 && S_ISDIR(st.st_mode))
                        r = -EISDIR;
                if (r < 0) {
                        control_reply_error(req, r == -EISDIR ? EPERM : -r, "image %s: %s: %s", name, given[i],
                                            r == -EISDIR ? "a directory's files would be read as root: only root may "
                                                           "publish a directory"
                                                         : xasprintf("%s (opened with your rights, uid %u)",
                                                                     strerror(-r), (unsigned)uid));
                        for (int k = 0; k < 3; k++) {
                                if (fds[k] >= 0)
                                        close(fds[k]);
                                free(as[k]);
                        }
                        return;
                }
                as[i] = xasprintf("/proc/%d/fd/%d", (int)getpid(), fds[i]);
        }
        ApplianceConfig ac;
        if (api_appliance_config(b, req, &ac) < 0) {
                for (int k = 0; k < 3; k++) {
                        if (fds[k] >= 0)
                                close(fds[k]);
                        free(as[k]);
                }
                return;
        }
        PublishJob *j = xmalloc0(sizeof *j);
        memcpy(j->fds, fds, sizeof fds);
        j->work.data = j;
        j->b = b;
        j->req = req;
        j->name = xstrdup(name);
        j->src = as[0] ? as[0] : xstrdup(path);
        j->kernel = as[1] ? as[1] : kernel ? xstrdup(kernel) : NULL;
        j->initrd = as[2] ? as[2] : initrd ? xstrdup(initrd) : NULL;
        j->cmdline = cmdline ? xstrdup(cmdline) : NULL;
        j->current = current;
        j->as_is = as_is;
        j->qemu_img = xstrdup(b->cfg->qemu_img);
        j->image_dir = xstrdup(b->image_dir);
        j->agent_binary = xstrdup(b->cfg->agent_binary);
        j->session_script = b->cfg->agent_session_script ? xstrdup(b->cfg->agent_session_script) : NULL;
        j->appliance = ac;
        progress_relay_init(&j->progress, b->loop, req, j);
        uv_queue_work(b->loop, &j->work, publish_run, publish_done);
}

/* ---- diff ---- */

typedef struct DiffJob {
        uv_work_t work;
        ControlRequest *req;
        char *name, *path1, *path2;
        int v1, v2;
        ApplianceConfig appliance;
        json_object *result;
        char *error;
        int r;
} DiffJob;

static void diff_run(uv_work_t *w)
{
        DiffJob *j = w->data;
        j->r = image_diff(&j->appliance, j->path1, j->path2, &j->result, &j->error);
}

static void diff_done(uv_work_t *w, int status)
{
        DiffJob *j = w->data;
        if (j->r < 0 || status < 0) {
                log_warn("image %s: diff v%d v%d failed: %s", j->name, j->v1, j->v2, j->error ? j->error : strerror(-j->r));
                control_reply_error(j->req, j->r < 0 ? j->r : -EIO, "image %s: %s", j->name,
                                    j->error ? j->error : strerror(-j->r));
        } else {
                json_object_object_add(j->result, "name", json_object_new_string(j->name));
                json_object_object_add(j->result, "v1", json_object_new_int(j->v1));
                json_object_object_add(j->result, "v2", json_object_new_int(j->v2));
                control_reply(j->req, j->result);
        }
        free(j->name);
        free(j->path1);
        free(j->path2);
        free((char *)j->appliance.kernel);
        free((char *)j->appliance.modules);
        free(j->error);
        free(j);
}

static void h_diff(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name;
        int64_t v[2];
        if (jsonx_get_string(args, "name", &name) < 0) {
                control_reply_error(req, EINVAL, "missing image name");
                return;
        }
        if (jsonx_get_int64(args, "v1", &v[0]) < 0 || jsonx_get_int64(args, "v2", &v[1]) < 0 || v[0] < 1 ||
            v[1] < 1 || v[0] > 1000000 || v[1] > 1000000) {
                control_reply_error(req, EINVAL, "image %s: diff needs two versions (v1, v2)", name);
                return;
        }
        char *paths[2] = { NULL, NULL };
        for (int i = 0; i < 2; i++) {
                DbImageVersion *all, *ver;
                size_t n;
                if (find_version(b, req, name, (int)v[i], &all, &n, &ver) < 0) {
                        free(paths[0]);
                        return;
                }
                paths[i] = xstrdup(ver->path);
                db_image_version_free_array(all, n);
        }
        ApplianceConfig ac;
        if (api_appliance_config(b, req, &ac) < 0) {
                free(paths[0]);
                free(paths[1]);
                return;
        }
        DiffJob *j = xmalloc0(sizeof *j);
        j->work.data = j;
        j->req = req;
        j->name = xstrdup(name);
        j->path1 = paths[0];
        j->path2 = paths[1];
        j->v1 = (int)v[0];
        j->v2 = (int)v[1];
        j->appliance = ac;
        uv_queue_work(b->loop, &j->work, diff_run, diff_done);
}

/* ---- list / show / current / retire / verify ---- */

static void h_list(Broker *b, ControlRequest *req, json_object *args)
{
        char **names;
        size_t n;
        int r = db_image_names(b->db, &names, &n);
        if (r < 0) {
                control_reply_error(req, r, "listing images: %s", strerror(-r));
                return;
        }
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                DbImageVersion *vs;
                size_t vn;
                if (db_image_versions(b->db, names[i], &vs, &vn) == 0) {
                        json_object *o = json_object_new_object();
                        int current = 0, latest = 0, available = 0;
                        for (size_t k = 0; k < vn; k++) {
                                if (vs[k].current)
                                        current = vs[k].version;
                                latest = MAX(latest, vs[k].version);
                                available += strcmp(vs[k].state, "available") == 0;
                        }
                        json_object_object_add(o, "name", json_object_new_string(names[i]));
                        json_object_object_add(o, "current", json_object_new_int(current));
                        json_object_object_add(o, "latest", json_object_new_int(latest));
                        json_object_object_add(o, "versions", json_object_new_int(available));
                        json_object_array_add(arr, o);
                        db_image_version_free_array(vs, vn);
                }
                free(names[i]);
        }
        free(names);
        control_reply(req, arr);
}

static void h_show(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name;
        if (get_name_version(req, args, &name, NULL) < 0)
                return;
        DbImageVersion *vs;
        size_t n;
        int r = db_image_versions(b->db, name, &vs, &n);
        if (r < 0) {
                control_reply_error(req, r, "image %s: %s", name, r == -ENOENT ? "no such image" : strerror(-r));
                return;
        }
        json_object *o = json_object_new_object(), *arr = json_object_new_array();
        int current = 0;
        for (size_t i = 0; i < n; i++) {
                if (vs[i].current)
                        current = vs[i].version;
                json_object_array_add(arr, version_json(b, &vs[i]));
        }
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "current", json_object_new_int(current));
        json_object_object_add(o, "versions", arr);
        db_image_version_free_array(vs, n);
        control_reply(req, o);
}

static void h_current(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name;
        int version;
        DbImageVersion *all, *v;
        size_t n;
        if (find_version_of_args(b, req, args, &name, &version, &all, &n, &v) < 0)
                return;
        if (strcmp(v->state, "available") != 0) {
                control_reply_error(req, EINVAL, "image %s: version %d is retired", name, version);
        } else if (db_image_set_current(b->db, name, version) == 0) {
                char detail[32];
                snprintf(detail, sizeof detail, "v%d", version);
                db_audit(b->db, "image.current", name, detail);
                log_info("image %s: v%d is now current", name, version);
                v->current = true;
                for (size_t i = 0; i < n; i++)
                        if (&all[i] != v)
                                all[i].current = false;
                control_reply(req, version_json(b, v));
                pool_manager_kick(b);
        } else {
                control_reply_error(req, EIO, "image %s: database error", name);
        }
        db_image_version_free_array(all, n);
}

static void h_retire(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name;
        int version;
        DbImageVersion *all, *v;
        size_t n;
        if (find_version_of_args(b, req, args, &name, &version, &all, &n, &v) < 0)
                return;
        unsigned used = desktop_count_version(b, name, version);
        if (used > 0)
                control_reply_error(req, EBUSY, "image %s: version %d is in use by %u desktop%s; destroy them or "
                                    "wait for them to drain first", name, version, used, used == 1 ? "" : "s");
        else if (v->current)
                control_reply_error(req, EBUSY, "image %s: version %d is current; make another version current "
                                    "first (slatectl image current %s VERSION)", name, version, name);
        else if (db_image_version_set_state(b->db, name, version, "retired") < 0)
                control_reply_error(req, EIO, "image %s: database error", name);
        else {
                char detail[32];
                snprintf(detail, sizeof detail, "v%d", version);
                db_audit(b->db, "image.retire", name, detail);
                log_info("image %s: v%d retired", name, version);
                free(v->state);
                v->state = xstrdup("retired");
                control_reply(req, version_json(b, v));
        }
        db_image_version_free_array(all, n);
}

typedef struct VerifyJob {
        uv_work_t work;
        ControlRequest *req;
        DbImageVersion *all;
        size_t n;
        char (*actual)[IMAGE_SHA256_HEX + 1];
        int *errors;
} VerifyJob;

static void verify_run(uv_work_t *w)
{
        VerifyJob *j = w->data;
        for (size_t i = 0; i < j->n; i++)
                j->errors[i] = image_sha256(j->all[i].path, j->actual[i]);
}

static void verify_done(uv_work_t *w, int status)
{
        VerifyJob *j = w->data;
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < j->n; i++) {
                json_object *o = json_object_new_object();
                bool ok = j->errors[i] == 0 && strcmp(j->actual[i], j->all[i].sha256) == 0;
                json_object_object_add(o, "version", json_object_new_int(j->all[i].version));
                json_object_object_add(o, "sha256", json_object_new_string(j->all[i].sha256));
                json_object_object_add(o, "actual",
                                       json_object_new_string(j->errors[i] == 0 ? j->actual[i] : strerror(-j->errors[i])));
                json_object_object_add(o, "ok", json_object_new_boolean(ok));
                if (!ok)
                        log_error("image %s: v%d does not match its recorded sha256", j->all[i].name, j->all[i].version);
                json_object_array_add(arr, o);
        }
        control_reply(j->req, arr);
        db_image_version_free_array(j->all, j->n);
        free(j->actual);
        free(j->errors);
        free(j);
}

static void h_verify(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name;
        if (get_name_version(req, args, &name, NULL) < 0)
                return;
        VerifyJob *j = xmalloc0(sizeof *j);
        int r = db_image_versions(b->db, name, &j->all, &j->n);
        if (r < 0) {
                control_reply_error(req, r, "image %s: %s", name, r == -ENOENT ? "no such image" : strerror(-r));
                free(j);
                return;
        }
        j->work.data = j;
        j->req = req;
        j->actual = xmalloc0(j->n * sizeof *j->actual);
        j->errors = xmalloc0(j->n * sizeof *j->errors);
        uv_queue_work(b->loop, &j->work, verify_run, verify_done);
}

#define IMAGE_NAME { "name", CONTROL_ARG_STRING, true, 1, IMAGE_NAME_MAX }
#define IMAGE_VERSION(n) { n, CONTROL_ARG_INT, true, 1, 1000000 }

static const ControlCommand commands[] = {
        { "image.publish", h_publish, true,
          { IMAGE_NAME, { "path", CONTROL_ARG_STRING, true, 1, 0 }, { "kernel", CONTROL_ARG_STRING, false, 1, 0 },
            { "initrd", CONTROL_ARG_STRING, false, 1, 0 }, { "cmdline", CONTROL_ARG_STRING, false, 0, 0 },
            { "current", CONTROL_ARG_BOOL, false, 0, 0 }, { "as_is", CONTROL_ARG_BOOL, false, 0, 0 } } },
        { "image.list", h_list, false, { {} } },
        { "image.show", h_show, false, { IMAGE_NAME } },
        { "image.current", h_current, true, { IMAGE_NAME, IMAGE_VERSION("version") } },
        { "image.retire", h_retire, true, { IMAGE_NAME, IMAGE_VERSION("version") } },
        { "image.verify", h_verify, false, { IMAGE_NAME } },
        { "image.diff", h_diff, false, { IMAGE_NAME, IMAGE_VERSION("v1"), IMAGE_VERSION("v2") } },
        {},
};

void api_image_register(Control *c) { control_register(c, commands); }
