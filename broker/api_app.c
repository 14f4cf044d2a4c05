/* App layers, control side (DESIGN.md "App layers"): add (a prepared tree, built into a layer in
 * the thread pool, committed on the loop), list/show, make current, retire, gc, verify, and the
 * entitlements, refused when two layers a user could get both own one file. The catalogue in
 * SQLite changes only after the files are in place. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "broker/api.h"
#include "broker/api_app.h"
#include "broker/control.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "common/util.h"
#include "streaming/entitle.h"
#include "streaming/layer.h"

static int reply_no_app(ControlRequest *req, const char *name, int r)
{
        control_reply_error(req, r, "app %s: %s", name, r == -ENOENT ? "no such app" : strerror(-r));
        return r;
}

/* The app's versions and the one asked for (version 0: the current one). */
static int find_app_version(Broker *b, ControlRequest *req, const char *name, int version, DbAppVersion **ret_all,
                            size_t *ret_n, DbAppVersion **ret_v)
{
        int r = db_app_versions(b->db, name, ret_all, ret_n);
        if (r < 0)
                return reply_no_app(req, name, r);
        for (size_t i = 0; i < *ret_n; i++)
                if (version ? (*ret_all)[i].version == version : (*ret_all)[i].current) {
                        *ret_v = &(*ret_all)[i];
                        return 0;
                }
        db_app_version_free_array(*ret_all, *ret_n);
        control_reply_error(req, ENOENT, "app %s: no version %d", name, version);
        return -ENOENT;
}


static json_object *app_version_json(const DbAppVersion *v, bool with_manifest)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(v->name));
        json_object_object_add(o, "version", json_object_new_int(v->version));
        json_object_object_add(o, "current", json_object_new_boolean(v->current));
        json_object_object_add(o, "state", json_object_new_string(v->state));
        json_object_object_add(o, "image", json_object_new_string(v->image));
        json_object_object_add(o, "image_version", json_object_new_int(v->image_version));
        json_object_object_add(o, "source", json_object_new_string(v->source));
        json_object_object_add(o, "size", json_object_new_int64((int64_t)v->size));
        json_object_object_add(o, "sha256", json_object_new_string(v->sha256));
        json_object_object_add(o, "created", json_object_new_int64(v->created));
        json_object_object_add(o, "path", json_object_new_string(v->path));
        LayerManifest m;
        _cleanup_free_ char *err = NULL;
        if (with_manifest && layer_manifest_load(v->path, &m, &err) == 0) {
                json_object_object_add(o, "packages", layer_list_json(&m.packages));
                json_object_object_add(o, "executables", layer_list_json(&m.executables));
                json_object_object_add(o, "menu_entries", layer_list_json(&m.menu_entries));
                json_object_object_add(o, "overrides", layer_list_json(&m.overrides));
                json_object_object_add(o, "files", json_object_new_int64((int64_t)m.files));
                json_object_object_add(o, "content_bytes", json_object_new_int64((int64_t)m.content_bytes));
                layer_manifest_free(&m);
        } else if (with_manifest) {
                json_object_object_add(o, "manifest_error", json_object_new_string(err ? err : "unreadable"));
        }
        return o;
}


/* ---- conflicts ---- */

/* Would a user who may get the layer in dir (app name, for these principals) also get another
 * app's current layer that owns one of its files? Returns a description of the first clash, or
 * NULL. Two layers owning one file would make the order of lower dirs decide which one a user
 * runs, silently: refused at entitlement time rather than discovered at logon. */
char *app_conflict(Broker *b, const char *name, const char *dir, char *const *principals, size_t np)
{
        if (np == 0)
                return NULL;
        char **names = NULL;
        size_t nn = 0;
        if (db_app_names(b->db, &names, &nn) < 0)
                return NULL;
        LayerList mine = { 0 };
        bool loaded = false;
        char *clash = NULL;
        for (size_t i = 0; i < nn && !clash; i++) {
                if (strcmp(names[i], name) == 0)
                        continue;
                char **theirs = NULL;
                size_t nt = 0;
                db_app_entitlement_list(b->db, names[i], &theirs, &nt);
                const char *pa = NULL, *pb = NULL;
                for (size_t x = 0; x < np && !pa; x++)
                        for (size_t y = 0; y < nt && !pa; y++)
                                if (entitle_principals_overlap(principals[x], theirs[y])) {
                                        pa = principals[x];
                                        pb = theirs[y];
                                }
                DbAppVersion *vs = NULL, *cur = NULL;
                size_t vn = 0;
                if (pa && db_app_versions(b->db, names[i], &vs, &vn) == 0)
                        for (size_t k = 0; k < vn; k++)
                                if (vs[k].current && strcmp(vs[k].state, "available") == 0)
                                        cur = &vs[k];
                if (cur) {
                        if (!loaded) {
                                layer_files_load(dir, &mine);
                                loaded = true;
                        }
                        LayerList other = { 0 };
                        layer_files_load(cur->path, &other);
                        const char *f = layer_files_common(&mine, &other);
                        if (f)
                                clash = xasprintf("/%s is also in app %s v%d (entitled to %s, overlapping %s)", f,
                                                  names[i], cur->version, pb, pa);
                        layer_list_free(&other);
                }
                db_app_version_free_array(vs, vn);
                strv_free(theirs, nt);
        }
        layer_list_free(&mine);
        strv_free(names, nn);
        return clash;
}

/* ---- add ---- */

typedef struct AddJob {
        uv_work_t work;
        Broker *b;
        ControlRequest *req;
        char *name, *tree, *image, *staging, *source;
        int image_version;
        bool current;
        uint64_t max;
        LayerManifest m;
        char *error;
        int r;
} AddJob;

static void add_run(uv_work_t *w)
{
        AddJob *j = w->data;
        LayerBuildRequest req = { .tree = j->tree, .staging_dir = j->staging, .name = j->name, .image = j->image,
                                  .image_version = j->image_version, .source = j->source, .max_size = j->max };
        j->r = layer_build(&req, &j->m, &j->error);
}

static void add_done(uv_work_t *w, int status)
{
        AddJob *j = w->data;
        Broker *b = j->b;
        if (j->r < 0 || status < 0) {
                log_warn("app %s: add of %s refused: %s", j->name, j->tree, j->error ? j->error : strerror(-j->r));
                db_audit(b->db, "app.add-failed", j->name, j->error ? j->error : "");
                control_reply_error(j->req, j->r < 0 ? j->r : -EIO, "app %s: %s", j->name,
                                    j->error ? j->error : strerror(-j->r));
                goto out;
        }
        app_commit(b, j->req, j->staging, &j->m, j->current, j->tree);
out:
        rm_rf(j->staging);
        layer_manifest_free(&j->m);
        free(j->name);
        free(j->tree);
        free(j->image);
        free(j->staging);
        free(j->source);
        free(j->error);
        free(j);
}

void app_commit(Broker *b, ControlRequest *req, const char *staging, LayerManifest *m, bool current,
                const char *from)
{
        /* A new version of an entitled app must not clash with what those users already get. */
        char **ents = NULL;
        size_t ne = 0;
        db_app_entitlement_list(b->db, m->name, &ents, &ne);
        _cleanup_free_ char *clash = current ? app_conflict(b, m->name, staging, ents, ne) : NULL;
        strv_free(ents, ne);
        if (clash) {
                control_reply_error(req, EEXIST, "app %s: the new version cannot be made current: %s; add it "
                                    "with --no-current, or revoke one of the entitlements", m->name, clash);
                return;
        }
        DbAppVersion *all = NULL;
        size_t n = 0;
        int next = 1;
        if (db_app_versions(b->db, m->name, &all, &n) == 0)
                for (size_t i = 0; i < n; i++)
                        next = MAX(next, all[i].version + 1);
        db_app_version_free_array(all, n);
        m->version = next;
        layer_manifest_store(staging, m);
        _cleanup_free_ char *appdir = xasprintf("%s/%s", b->app_dir, m->name);
        _cleanup_free_ char *dest = xasprintf("%s/v%d", appdir, next);
        int r = mkdir_p(appdir, 0755);
        if (r < 0 || rename(staging, dest) < 0) {
                r = r < 0 ? r : -errno;
                control_reply_error(req, r, "app %s: storing version %d: %s", m->name, next, strerror(-r));
                return;
        }
        LayerFingerprint fp;
        _cleanup_free_ char *img = xasprintf("%s/" LAYER_IMAGE_FILE, dest);
        _cleanup_free_ char *fps = layer_fingerprint(img, &fp) == 0 ? layer_fingerprint_format(&fp) : NULL;
        DbAppVersion v = {
                .name = m->name, .version = next, .state = "available", .path = dest, .size = m->size,
                .sha256 = m->sha256, .image = m->image, .image_version = m->image_version, .source = m->source,
                .created = m->created, .fingerprint = fps,
        };
        if ((r = db_app_version_add(b->db, &v, current)) < 0) {
                rm_rf(dest);
                control_reply_error(req, r, "app %s: recording version %d failed", m->name, next);
                return;
        }
        char detail[256];
        snprintf(detail, sizeof detail, "v%d sha256 %.12s from %s (%s:v%d, %zu packages)", next, m->sha256, from,
                 m->image, m->image_version, m->packages.n);
        db_audit(b->db, "app.add", m->name, detail);
        log_info("app %s: v%d stored (%llu bytes, %llu files, sha256 %.12s)", m->name, next,
                 (unsigned long long)m->size, (unsigned long long)m->files, m->sha256);
        DbAppVersion *vs = NULL, *mine = NULL;
        size_t vn = 0;
        if (db_app_versions(b->db, m->name, &vs, &vn) == 0)
                for (size_t i = 0; i < vn; i++)
                        if (vs[i].version == next)
                                mine = &vs[i];
        control_reply(req, mine ? app_version_json(mine, true) : NULL);
        db_app_version_free_array(vs, vn);
}

/* The golden image version a layer is made against: image[:version], default its current one. */
int app_image_resolve(Broker *b, ControlRequest *req, const char *image, int64_t version, int *ret_version,
                      char **ret_disk)
{
        DbImageVersion *all;
        size_t n;
        int r = db_image_versions(b->db, image, &all, &n);
        if (r < 0) {
                control_reply_error(req, r, "image %s: %s", image, r == -ENOENT ? "no such image" : strerror(-r));
                return r;
        }
        r = -ENOENT;
        for (size_t i = 0; i < n; i++)
                if ((version ? all[i].version == version : all[i].current) && strcmp(all[i].state, "available") == 0) {
                        *ret_version = all[i].version;
                        if (ret_disk)
                                *ret_disk = xstrdup(all[i].path);
                        r = 0;
                }
        db_image_version_free_array(all, n);
        if (r < 0)
                control_reply_error(req, ENOENT, "image %s: no available version %lld", image, (long long)version);
        return r;
}

char *app_staging_new(Broker *b, ControlRequest *req)
{
        _cleanup_free_ char *base = xasprintf("%s/.staging", b->app_dir);
        mkdir_p(base, 0700);
        char *t = xasprintf("%s/XXXXXX", base);
        if (!mkdtemp(t)) {
                control_reply_error(req, errno, "app staging dir: %s", strerror(errno));
                free(t);
                return NULL;
        }
        chmod(t, 0755);
        return t;
}

static void h_add(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name, *path, *image;
        jsonx_get_string(args, "name", &name);
        jsonx_get_string(args, "path", &path);
        jsonx_get_string(args, "image", &image);
        if (!layer_name_valid(name)) {
                control_reply_error(req, EINVAL, "app name must be 1-%d characters of [A-Za-z0-9._-], starting with "
                                                 "a letter or digit", LAYER_NAME_MAX);
                return;
        }
        if (path[0] != '/') {
                control_reply_error(req, EINVAL, "app %s: the tree must be given as an absolute path", name);
                return;
        }
        int image_version;
        if (app_image_resolve(b, req, image, jsonx_int_or(args, "image_version", 0), &image_version, NULL) < 0)
                return;
        char *staging = app_staging_new(b, req);
        if (!staging)
                return;
        bool current = true;
        jsonx_get_bool(args, "current", &current);
        AddJob *j = xmalloc0(sizeof *j);
        j->work.data = j;
        j->b = b;
        j->req = req;
        j->name = xstrdup(name);
        j->tree = xstrdup(path);
        j->image = xstrdup(image);
        j->image_version = image_version;
        j->staging = staging;
        j->source = xstrdup("tree");
        j->current = current;
        j->max = b->cfg->app_layer_max;
        uv_queue_work(b->loop, &j->work, add_run, add_done);
}

/* ---- list / show / current / retire / gc ---- */

static void h_list(Broker *b, ControlRequest *req, json_object *args)
{
        char **names;
        size_t n;
        int r = db_app_names(b->db, &names, &n);
        if (r < 0) {
                control_reply_error(req, r, "listing apps: %s", strerror(-r));
                return;
        }
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                DbAppVersion *vs;
                size_t vn;
                if (db_app_versions(b->db, names[i], &vs, &vn) < 0)
                        continue;
                json_object *o = json_object_new_object(), *ents = json_object_new_array();
                int current = 0, available = 0;
                const DbAppVersion *cur = NULL;
                for (size_t k = 0; k < vn; k++) {
                        if (vs[k].current) {
                                current = vs[k].version;
                                cur = &vs[k];
                        }
                        available += strcmp(vs[k].state, "available") == 0;
                }
                char **e;
                size_t en;
                if (db_app_entitlement_list(b->db, names[i], &e, &en) == 0) {
                        for (size_t k = 0; k < en; k++)
                                json_object_array_add(ents, json_object_new_string(e[k]));
                        strv_free(e, en);
                }
                json_object_object_add(o, "name", json_object_new_string(names[i]));
                json_object_object_add(o, "current", json_object_new_int(current));
                json_object_object_add(o, "versions", json_object_new_int(available));
                json_object_object_add(o, "image", json_object_new_string(cur ? cur->image : ""));
                json_object_object_add(o, "image_version", json_object_new_int(cur ? cur->image_version : 0));
                json_object_object_add(o, "size", json_object_new_int64(cur ? (int64_t)cur->size : 0));
                json_object_object_add(o, "entitlements", ents);
                json_object_array_add(arr, o);
                db_app_version_free_array(vs, vn);
        }
        strv_free(names, n);
        control_reply(req, arr);
}

static void h_show(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name;
        jsonx_get_string(args, "name", &name);
        DbAppVersion *vs;
        size_t n;
        int r = db_app_versions(b->db, name, &vs, &n);
        if (r < 0) {
                reply_no_app(req, name, r);
                return;
        }
        json_object *o = json_object_new_object(), *arr = json_object_new_array(), *ents = json_object_new_array();
        int current = 0;
        for (size_t i = 0; i < n; i++) {
                if (vs[i].current)
                        current = vs[i].version;
                json_object_array_add(arr, app_version_json(&vs[i], true));
        }
        char **e;
        size_t en;
        if (db_app_entitlement_list(b->db, name, &e, &en) == 0) {
                for (size_t k = 0; k < en; k++)
                        json_object_array_add(ents, json_object_new_string(e[k]));
                strv_free(e, en);
        }
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "current", json_object_new_int(current));
        json_object_object_add(o, "entitlements", ents);
        json_object_object_add(o, "versions", arr);
        db_app_version_free_array(vs, n);
        control_reply(req, o);
}

static void h_current(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name;
        jsonx_get_string(args, "name", &name);
        int version = (int)jsonx_int_or(args, "version", 0);
        DbAppVersion *all, *v;
        size_t n;
        if (find_app_version(b, req, name, version, &all, &n, &v) < 0)
                return;
        char **ents = NULL;
        size_t ne = 0;
        db_app_entitlement_list(b->db, name, &ents, &ne);
        _cleanup_free_ char *clash = app_conflict(b, name, v->path, ents, ne);
        strv_free(ents, ne);
        if (strcmp(v->state, "available") != 0) {
                control_reply_error(req, EINVAL, "app %s: version %d is retired", name, version);
        } else if (clash) {
                control_reply_error(req, EEXIST, "app %s: version %d clashes: %s", name, version, clash);
        } else if (db_app_set_current(b->db, name, version) == 0) {
                char detail[32];
                snprintf(detail, sizeof detail, "v%d", version);
                db_audit(b->db, "app.current", name, detail);
                log_info("app %s: v%d is now current (from the next logon)", name, version);
                for (size_t i = 0; i < n; i++)
                        all[i].current = &all[i] == v;
                control_reply(req, app_version_json(v, false));
        } else {
                control_reply_error(req, EIO, "app %s: database error", name);
        }
        db_app_version_free_array(all, n);
}

static void h_retire(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name;
        jsonx_get_string(args, "name", &name);
        int version = (int)jsonx_int_or(args, "version", 0);
        DbAppVersion *all, *v;
        size_t n;
        if (find_app_version(b, req, name, version, &all, &n, &v) < 0)
                return;
        if (v->current && n > 1)
                control_reply_error(req, EBUSY, "app %s: version %d is current; make another version current first "
                                    "(slatectl app current %s VERSION)", name, version, name);
        else if (db_app_version_set_state(b->db, name, version, "retired") < 0)
                control_reply_error(req, EIO, "app %s: database error", name);
        else {
                char detail[32];
                snprintf(detail, sizeof detail, "v%d", version);
                db_audit(b->db, "app.retire", name, detail);
                log_info("app %s: v%d retired (no longer attached at logon)", name, version);
                free(v->state);
                v->state = xstrdup("retired");
                control_reply(req, app_version_json(v, false));
        }
        db_app_version_free_array(all, n);
}

/* Retired versions go: their files (a desktop that has one attached keeps its open file until it
 * is destroyed) and their rows. */
static void h_gc(Broker *b, ControlRequest *req, json_object *args)
{
        char **names;
        size_t n;
        if (db_app_names(b->db, &names, &n) < 0) {
                control_reply_error(req, EIO, "listing apps: database error");
                return;
        }
        json_object *removed = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                DbAppVersion *vs;
                size_t vn;
                if (db_app_versions(b->db, names[i], &vs, &vn) < 0)
                        continue;
                for (size_t k = 0; k < vn; k++) {
                        if (strcmp(vs[k].state, "retired") != 0)
                                continue;
                        rm_rf(vs[k].path);
                        if (db_app_version_delete(b->db, vs[k].name, vs[k].version) == 0) {
                                char detail[32];
                                snprintf(detail, sizeof detail, "v%d", vs[k].version);
                                db_audit(b->db, "app.gc", vs[k].name, detail);
                                json_object *o = json_object_new_object();
                                json_object_object_add(o, "name", json_object_new_string(vs[k].name));
                                json_object_object_add(o, "version", json_object_new_int(vs[k].version));
                                json_object_object_add(o, "bytes", json_object_new_int64((int64_t)vs[k].size));
                                json_object_array_add(removed, o);
                        }
                }
                db_app_version_free_array(vs, vn);
        }
        strv_free(names, n);
        control_reply(req, removed);
}

/* ---- verify ---- */

typedef struct VerifyJob {
        uv_work_t work;
        Broker *b;
        ControlRequest *req;
        DbAppVersion *all;
        size_t n;
        char **errors;
        LayerFingerprint *fps;
} VerifyJob;

static void verify_run(uv_work_t *w)
{
        VerifyJob *j = w->data;
        for (size_t i = 0; i < j->n; i++)
                layer_verify(j->all[i].path, j->all[i].sha256, j->all[i].size, NULL, &j->fps[i], NULL, &j->errors[i]);
}

static void verify_done(uv_work_t *w, int status)
{
        VerifyJob *j = w->data;
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < j->n; i++) {
                DbAppVersion *v = &j->all[i];
                json_object *o = json_object_new_object();
                json_object_object_add(o, "version", json_object_new_int(v->version));
                json_object_object_add(o, "ok", json_object_new_boolean(!j->errors[i]));
                if (j->errors[i]) {
                        json_object_object_add(o, "error", json_object_new_string(j->errors[i]));
                        log_error("app %s: v%d: %s", v->name, v->version, j->errors[i]);
                        db_audit(j->b->db, "app.verify-failed", v->name, j->errors[i]);
                } else {
                        _cleanup_free_ char *fp = layer_fingerprint_format(&j->fps[i]);
                        db_app_version_set_fingerprint(j->b->db, v->name, v->version, fp);
                }
                json_object_array_add(arr, o);
                free(j->errors[i]);
        }
        control_reply(j->req, arr);
        db_app_version_free_array(j->all, j->n);
        free(j->errors);
        free(j->fps);
        free(j);
}

static void h_verify(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name;
        jsonx_get_string(args, "name", &name);
        VerifyJob *j = xmalloc0(sizeof *j);
        int r = db_app_versions(b->db, name, &j->all, &j->n);
        if (r < 0) {
                reply_no_app(req, name, r);
                free(j);
                return;
        }
        j->work.data = j;
        j->b = b;
        j->req = req;
        j->errors = xmalloc0(j->n * sizeof *j->errors);
        j->fps = xmalloc0(j->n * sizeof *j->fps);
        uv_queue_work(b->loop, &j->work, verify_run, verify_done);
}

/* ---- entitlements ---- */

static void entitle(Broker *b, ControlRequest *req, json_object *args, bool on)
{
        const char *name, *principal;
        jsonx_get_string(args, "name", &name);
        jsonx_get_string(args, "principal", &principal);
        if (!entitle_principal_valid(principal)) {
                control_reply_error(req, EINVAL, "principal must be user:NAME, group:NAME or all");
                return;
        }
        DbAppVersion *all, *v;
        size_t n;
        if (find_app_version(b, req, name, 0, &all, &n, &v) < 0)
                return;
        char *p[] = { (char *)principal };
        _cleanup_free_ char *clash = on ? app_conflict(b, name, v->path, p, 1) : NULL;
        db_app_version_free_array(all, n);
        if (clash) {
                control_reply_error(req, EEXIST, "app %s: not entitled to %s: %s", name, principal, clash);
                return;
        }
        if (db_app_entitlement_set(b->db, name, principal, on) < 0) {
                control_reply_error(req, EIO, "app %s: database error", name);
                return;
        }
        db_audit(b->db, on ? "app.entitle" : "app.revoke", name, principal);
        log_info("app %s: %s %s (from the next logon)", name, on ? "entitled to" : "revoked from", principal);
        control_reply(req, NULL);
}

static void h_entitle(Broker *b, ControlRequest *req, json_object *args) { entitle(b, req, args, true); }
static void h_revoke(Broker *b, ControlRequest *req, json_object *args) { entitle(b, req, args, false); }

#define APP_NAME { "name", CONTROL_ARG_STRING, true, 1, LAYER_NAME_MAX }
#define APP_VERSION(req) { "version", CONTROL_ARG_INT, req, 1, 1000000 }

static const ControlCommand commands[] = {
        { "app.add", h_add, true,
          { APP_NAME, { "path", CONTROL_ARG_STRING, true, 1, 0 }, { "image", CONTROL_ARG_STRING, true, 1, 64 },
            { "image_version", CONTROL_ARG_INT, false, 1, 1000000 }, { "current", CONTROL_ARG_BOOL, false, 0, 0 } } },
        { "app.list", h_list, false, { {} } },
        { "app.show", h_show, false, { APP_NAME } },
        { "app.current", h_current, true, { APP_NAME, APP_VERSION(true) } },
        { "app.retire", h_retire, true, { APP_NAME, APP_VERSION(true) } },
        { "app.gc", h_gc, true, { {} } },
        { "app.verify", h_verify, false, { APP_NAME } },
        { "app.entitle", h_entitle, true,
          { APP_NAME, { "principal", CONTROL_ARG_STRING, true, 1, ENTITLE_PRINCIPAL_MAX } } },
        { "app.revoke", h_revoke, true,
          { APP_NAME, { "principal", CONTROL_ARG_STRING, true, 1, ENTITLE_PRINCIPAL_MAX } } },
        {},
};

void api_app_register(Control *c) { control_register(c, commands); }
