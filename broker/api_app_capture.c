/* `app capture`: Debian packages installed into a throwaway copy of a golden version
 * (imaging/capture.c, one libguestfs appliance in the thread pool), what the install added kept as
 * a tree, built into the app's next layer version. Refused when the install changed files the
 * golden image owns, unless the administrator allows overrides (the manifest lists them). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker/api.h"
#include "broker/api_app.h"
#include "broker/progress.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "common/util.h"
#include "imaging/capture.h"

typedef struct CaptureJob {
        uv_work_t work;
        ProgressRelay progress;
        Broker *b;
        ControlRequest *req;
        char *name, *image, *golden, *qemu_img, *deb_dir, *work_dir, *staging, *packages_arg;
        char **packages;
        size_t n_packages;
        int image_version;
        bool current, allow_overrides;
        uint64_t max;
        ApplianceConfig appliance;
        LayerManifest m;
        json_object *timings, *dropped;
        char *error;
        int r;
} CaptureJob;

static LayerList list_of(char **v, size_t n)
{
        LayerList l = { .v = xmalloc0((n + 1) * sizeof *l.v), .n = n };
        for (size_t i = 0; i < n; i++)
                l.v[i] = xstrdup(v[i]);
        return l;
}

/* A layer holds usr/, opt/, etc/ and var/lib/dpkg/: what a package wrote elsewhere (its state
 * under /var/lib, a /srv dir) cannot be merged into a desktop, so it is left out and reported. */
static void prune(const char *tree, json_object *dropped)
{
        DIR *d = opendir(tree);
        struct dirent *e;
        while (d && (e = readdir(d))) {
                const char *n = e->d_name;
                if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "usr") || !strcmp(n, "opt") || !strcmp(n, "etc"))
                        continue;
                _cleanup_free_ char *p = xasprintf("%s/%s", tree, n);
                if (strcmp(n, "var") != 0) {
                        json_object_array_add(dropped, json_object_new_string(n));
                        rm_rf(p);
                        continue;
                }
                DIR *v = opendir(p);
                struct dirent *f;
                while (v && (f = readdir(v))) {
                        if (!strcmp(f->d_name, ".") || !strcmp(f->d_name, ".."))
                                continue;
                        _cleanup_free_ char *q = xasprintf("%s/%s", p, f->d_name);
                        if (strcmp(f->d_name, "lib") != 0) {
                                json_object_array_add(dropped, json_object_new_string(q + strlen(tree) + 1));
                                rm_rf(q);
                                continue;
                        }
                        DIR *l = opendir(q);
                        struct dirent *g;
                        while (l && (g = readdir(l))) {
                                if (!strcmp(g->d_name, ".") || !strcmp(g->d_name, "..") || !strcmp(g->d_name, "dpkg"))
                                        continue;
                                _cleanup_free_ char *r = xasprintf("%s/%s", q, g->d_name);
                                json_object_array_add(dropped, json_object_new_string(r + strlen(tree) + 1));
                                rm_rf(r);
                        }
                        if (l)
                                closedir(l);
                }
                if (v)
                        closedir(v);
        }
        if (d)
                closedir(d);
}

static void capture_work(uv_work_t *w)
{
        CaptureJob *j = w->data;
        CaptureRequest req = {
                .qemu_img = j->qemu_img, .golden = j->golden, .work_dir = j->work_dir,
                .packages = (const char *const *)j->packages, .n_packages = j->n_packages, .deb_dir = j->deb_dir,
                .appliance = j->appliance, .progress = progress_relay_post, .userdata = &j->progress,
        };
        CaptureResult res = { 0 };
        j->r = capture_run(&req, &res, &j->error);
        if (j->r < 0)
                return;
        j->timings = json_object_get(res.timings_ms);
        if (res.n_overrides && !j->allow_overrides) {
                size_t show = MIN(res.n_overrides, (size_t)8);
                char buf[1024] = "";
                for (size_t i = 0; i < show; i++) {
                        strncat(buf, " /", sizeof buf - strlen(buf) - 1);
                        strncat(buf, res.overrides[i], sizeof buf - strlen(buf) - 1);
                }
                j->error = xasprintf("the install changed %zu file%s of the golden image:%s%s (allow with "
                                     "--allow-overrides; the manifest lists them)", res.n_overrides,
                                     res.n_overrides == 1 ? "" : "s", buf, res.n_overrides > show ? " ..." : "");
                j->r = -EEXIST;
                capture_result_free(&res);
                return;
        }
        prune(res.tree, j->dropped);
        progress_relay_post(&j->progress, "layer", 92);
        LayerList pk = list_of(res.packages, res.n_packages), ov = list_of(res.overrides, res.n_overrides);
        LayerBuildRequest b = { .tree = res.tree, .staging_dir = j->staging, .name = j->name, .image = j->image,
                                .image_version = j->image_version, .source = "capture", .packages = &pk,
                                .overrides = &ov, .max_size = j->max };
        j->r = layer_build(&b, &j->m, &j->error);
        layer_list_free(&pk);
        layer_list_free(&ov);
        capture_result_free(&res);
}

static void capture_free(uv_handle_t *h)
{
        CaptureJob *j = h->data;
        progress_relay_fini(&j->progress);
        for (size_t i = 0; i < j->n_packages; i++)
                free(j->packages[i]);
        free(j->packages);
        free(j->name);
        free(j->image);
        free(j->golden);
        free(j->qemu_img);
        free(j->deb_dir);
        free(j->work_dir);
        free(j->staging);
        free(j->packages_arg);
        free((char *)j->appliance.kernel);
        free((char *)j->appliance.modules);
        json_object_put(j->timings);
        json_object_put(j->dropped);
        layer_manifest_free(&j->m);
        free(j->error);
        free(j);
}

static void capture_done(uv_work_t *w, int status)
{
        CaptureJob *j = w->data;
        Broker *b = j->b;
        progress_relay_flush(&j->progress);
        rm_rf(j->work_dir);
        if (j->r < 0 || status < 0) {
                log_warn("app %s: capture of %s refused: %s", j->name, j->packages_arg, j->error ? j->error : strerror(-j->r));
                db_audit(b->db, "app.capture-failed", j->name, j->error ? j->error : "");
                control_reply_error(j->req, j->r < 0 ? j->r : -EIO, "app %s: %s", j->name,
                                    j->error ? j->error : strerror(-j->r));
        } else {
                if (json_object_array_length(j->dropped))
                        log_warn("app %s: capture left out %zu paths outside /usr, /opt, /etc (e.g. %s)", j->name,
                                 json_object_array_length(j->dropped),
                                 json_object_get_string(json_object_array_get_idx(j->dropped, 0)));
                _cleanup_free_ char *from = xasprintf("capture of %s (timings %s)", j->packages_arg,
                                                      json_object_to_json_string(j->timings));
                app_commit(b, j->req, j->staging, &j->m, j->current, from);
        }
        rm_rf(j->staging);
        progress_relay_close(&j->progress, capture_free);
}

static void h_capture(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name, *image, *packages;
        jsonx_get_string(args, "name", &name);
        jsonx_get_string(args, "image", &image);
        jsonx_get_string(args, "packages", &packages);
        if (!layer_name_valid(name)) {
                control_reply_error(req, EINVAL, "app name must be 1-%d characters of [A-Za-z0-9._-]", LAYER_NAME_MAX);
                return;
        }
        const char *deb_dir = jsonx_string_or(args, "deb_dir", NULL);
        if (deb_dir && deb_dir[0] != '/') {
                control_reply_error(req, EINVAL, "app %s: deb_dir must be an absolute path", name);
                return;
        }
        CaptureJob *j = xmalloc0(sizeof *j);
        j->packages_arg = xstrdup(packages);
        _cleanup_free_ char *copy = xstrdup(packages);
        for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
                if (!capture_package_name_ok(p) || j->n_packages == CAPTURE_PACKAGES_MAX) {
                        control_reply_error(req, EINVAL, "app %s: \"%s\" is not a Debian package name (or more than %d)",
                                            name, p, CAPTURE_PACKAGES_MAX);
                        goto fail;
                }
                j->packages = realloc(j->packages, (j->n_packages + 2) * sizeof *j->packages);
                j->packages[j->n_packages++] = xstrdup(p);
                j->packages[j->n_packages] = NULL;
        }
        if (j->n_packages == 0) {
                control_reply_error(req, EINVAL, "app %s: no packages given", name);
                goto fail;
        }
        if (app_image_resolve(b, req, image, jsonx_int_or(args, "image_version", 0), &j->image_version, &j->golden) < 0)
                goto fail;
        if (api_appliance_config(b, req, &j->appliance) < 0)
                goto fail;
        if (!(j->staging = app_staging_new(b, req)) || !(j->work_dir = app_staging_new(b, req)))
                goto fail;
        j->work.data = j;
        j->b = b;
        j->req = req;
        j->name = xstrdup(name);
        j->image = xstrdup(image);
        j->qemu_img = xstrdup(b->cfg->qemu_img);
        j->deb_dir = deb_dir ? xstrdup(deb_dir) : NULL;
        j->current = true;
        jsonx_get_bool(args, "current", &j->current);
        jsonx_get_bool(args, "allow_overrides", &j->allow_overrides);
        j->max = b->cfg->app_layer_max;
        j->dropped = json_object_new_array();
        progress_relay_init(&j->progress, b->loop, req, j);
        uv_queue_work(b->loop, &j->work, capture_work, capture_done);
        return;
fail:
        if (j->staging)
                rm_rf(j->staging);
        for (size_t i = 0; i < j->n_packages; i++)
                free(j->packages[i]);
        free(j->packages);
        free(j->packages_arg);
        free(j->golden);
        free(j->staging);
        free((char *)j->appliance.kernel);
        free((char *)j->appliance.modules);
        free(j);
}

static const ControlCommand commands[] = {
        { "app.capture", h_capture, true,
          { { "name", CONTROL_ARG_STRING, true, 1, LAYER_NAME_MAX }, { "image", CONTROL_ARG_STRING, true, 1, 64 },
            { "image_version", CONTROL_ARG_INT, false, 1, 1000000 }, { "packages", CONTROL_ARG_STRING, true, 1, 8192 },
            { "deb_dir", CONTROL_ARG_STRING, false, 1, 0 }, { "allow_overrides", CONTROL_ARG_BOOL, false, 0, 0 },
            { "current", CONTROL_ARG_BOOL, false, 0, 0 } } },
        {},
};

void api_app_capture_register(Control *c) { control_register(c, commands); }
