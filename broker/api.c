/* Control handlers for status, pools and desktops. Validation happens here, before anything
 * is changed; the pool manager then converges the running desktops on the new settings. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "broker/api.h"
#include "streaming/entitle.h"
#include "broker/desktop.h"
#include "broker/pool.h"
#include "broker/control.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "common/username.h"
#include "common/util.h"

#define POOL_NAME_MAX 64
#define POOL_MAX_DESKTOPS 1000
#define POOL_MEMORY_MIN (64ull << 20)
#define POOL_MEMORY_MAX (1ull << 40)

static json_object *pool_json(Broker *b, const Pool *p)
{
        unsigned ready, booting, assigned, total;
        pool_counts(b, p->name, &ready, &booting, &assigned, &total);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(p->name));
        json_object_object_add(o, "image", json_object_new_string(p->image));
        json_object_object_add(o, "warm", json_object_new_int((int)p->warm));
        json_object_object_add(o, "max", json_object_new_int((int)p->max));
        json_object_object_add(o, "memory", json_object_new_int64((int64_t)p->memory));
        json_object_object_add(o, "vcpus", json_object_new_int((int)p->vcpus));
        json_object_object_add(o, "overlay", json_object_new_string(overlay_mode_to_string(p->overlay)));
        json_object_object_add(o, "ready", json_object_new_int((int)ready));
        json_object_object_add(o, "booting", json_object_new_int((int)booting));
        json_object_object_add(o, "assigned", json_object_new_int((int)assigned));
        json_object_object_add(o, "total", json_object_new_int((int)total));
        json_object_object_add(o, "deleting", json_object_new_boolean(p->deleting));
        json_object_object_add(o, "disconnect_timeout", json_object_new_int((int)p->disconnect_timeout));
        json_object_object_add(o, "idle_timeout", json_object_new_int((int)p->idle_timeout));
        json_object_object_add(o, "max_age", json_object_new_int((int)p->max_age));
        json_object_object_add(o, "usable_timeout", json_object_new_int((int)p->usable_timeout));
        json_object_object_add(o, "boot", json_object_new_string(p->clone ? "clone" : "cold"));
        json_object_object_add(o, "profiles", json_object_new_boolean(p->profiles));
        json_object_object_add(o, "layer_policy", json_object_new_string(p->layer_refuse_older ? "refuse" : "warn"));
        if (p->profile_size)
                json_object_object_add(o, "profile_size", json_object_new_int64((int64_t)p->profile_size));
        json_object *ents = json_object_new_array();
        for (size_t i = 0; i < p->n_entitlements; i++)
                json_object_array_add(ents, json_object_new_string(p->entitlements[i]));
        json_object_object_add(o, "entitlements", ents);
        return o;
}

static json_object *desktop_json(const Desktop *d)
{
        json_object *o = json_object_new_object();
        int64_t now = (int64_t)now_realtime_s();
        json_object_object_add(o, "id", json_object_new_string(d->id));
        json_object_object_add(o, "pool", json_object_new_string(d->pool));
        json_object_object_add(o, "state",
                               json_object_new_string(desktop_state_to_string(d->stopping ? DESKTOP_DRAINING : d->state)));
        json_object_object_add(o, "image", json_object_new_string(d->image));
        json_object_object_add(o, "image_version", json_object_new_int(d->version));
        json_object_object_add(o, "created", json_object_new_int64(d->created));
        json_object_object_add(o, "age_s", json_object_new_int64(now - d->created));
        json_object_object_add(o, "overlay", json_object_new_string(overlay_mode_to_string(d->overlay_mode)));
        json_object_object_add(o, "overlay_path", d->overlay_path ? json_object_new_string(d->overlay_path) : NULL);
        json_object_object_add(o, "overlay_bytes", json_object_new_int64((int64_t)desktop_overlay_bytes(d)));
        json_object_object_add(o, "pid", json_object_new_int((int)d->pid));
        json_object_object_add(o, "run_dir", json_object_new_string(d->run_dir));
        if (d->uid != (uid_t)-1)
                json_object_object_add(o, "uid", json_object_new_int64((int64_t)d->uid));
        if (d->agent_version)
                json_object_object_add(o, "agent_version", json_object_new_string(d->agent_version));
        if (d->claim_id[0])
                json_object_object_add(o, "session", json_object_new_string(d->claim_id));
        if (d->boot_id)
                json_object_object_add(o, "boot_id", json_object_new_string(d->boot_id));
        json_object_object_add(o, "boot_mode", json_object_new_string(d->clone || d->cloned ? "clone" : "cold"));
        if (d->clone)
                json_object_object_add(o, "template", json_object_new_string(d->tmpl.name));
        if (d->machine_id[0])
                json_object_object_add(o, "machine_id", json_object_new_string(d->machine_id));
        if (d->hostname[0])
                json_object_object_add(o, "hostname", json_object_new_string(d->hostname));
        if (d->token_id[0])
                json_object_object_add(o, "agent_token_id", json_object_new_string(d->token_id));
        if (d->rng_sample[0])
                json_object_object_add(o, "rng_sample", json_object_new_string(d->rng_sample));
        if (d->ready_ms && d->state != DESKTOP_BOOTING && !d->adopted)
                json_object_object_add(o, "boot_ms", json_object_new_int64((int64_t)(d->ready_ms - d->boot_start_ms)));
        if (d->ready_ms && d->spawn_ms && d->state != DESKTOP_BOOTING)
                json_object_object_add(o, "spawn_ready_ms", json_object_new_int64((int64_t)(d->ready_ms - d->spawn_ms)));
        return o;
}

static void h_status(Broker *b, ControlRequest *req, json_object *args)
{
        unsigned np = 0, nd = 0;
        for (Pool *p = b->pools; p; p = p->next)
                np++;
        for (Desktop *d = b->desktops; d; d = d->next)
                nd++;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
        json_object_object_add(o, "accel", json_object_new_string(hv_accel_name(b->accel)));
        json_object_object_add(o, "accel_reason", json_object_new_string(b->accel_reason ? b->accel_reason : ""));
        json_object_object_add(o, "uptime_s", json_object_new_int64((int64_t)((now_ms() - b->start_ms) / 1000)));
        json_object_object_add(o, "pools", json_object_new_int((int)np));
        json_object_object_add(o, "desktops", json_object_new_int((int)nd));
        json_object_object_add(o, "boots_in_flight", json_object_new_int((int)b->boots_in_flight));
        json_object_object_add(o, "boot_parallel", json_object_new_int((int)b->boot_parallel));
        json_object_object_add(o, "preauth", json_object_new_int((int)b->preauth));
        json_object_object_add(o, "state_dir", json_object_new_string(b->cfg->state_dir));
        json_object_object_add(o, "run_dir", json_object_new_string(b->cfg->run_dir));
        control_reply(req, o);
}

/* Apply the optional pool settings in args to p; replies with the error itself. */
static int pool_apply(Broker *b, ControlRequest *req, json_object *args, Pool *p)
{
        int64_t v;
        const char *s;
        int r;
        if ((r = jsonx_get_int64(args, "warm", &v)) != -ENOENT) {
                if (r < 0 || v < 0 || v > POOL_MAX_DESKTOPS) {
                        control_reply_error(req, EINVAL, "pool %s: warm must be 0-%d", p->name, POOL_MAX_DESKTOPS);
                        return -EINVAL;
                }
                p->warm = (unsigned)v;
        }
        if ((r = jsonx_get_int64(args, "max", &v)) != -ENOENT) {
                if (r < 0 || v < 1 || v > POOL_MAX_DESKTOPS) {
                        control_reply_error(req, EINVAL, "pool %s: max must be 1-%d", p->name, POOL_MAX_DESKTOPS);
                        return -EINVAL;
                }
                p->max = (unsigned)v;
        }
        if ((r = jsonx_get_int64(args, "memory", &v)) != -ENOENT) {
                if (r < 0 || (uint64_t)v < POOL_MEMORY_MIN || (uint64_t)v > POOL_MEMORY_MAX) {
                        control_reply_error(req, EINVAL, "pool %s: memory must be between 64M and 1T", p->name);
                        return -EINVAL;
                }
                p->memory = (uint64_t)v;
        }
        if ((r = jsonx_get_int64(args, "vcpus", &v)) != -ENOENT) {
                if (r < 0 || v < 1 || v > 64) {
                        control_reply_error(req, EINVAL, "pool %s: vcpus must be 1-64", p->name);
                        return -EINVAL;
                }
                p->vcpus = (unsigned)v;
        }
        if ((r = jsonx_get_int64(args, "disconnect_timeout", &v)) != -ENOENT) {
                if (r < 0 || v < 0 || v > 7 * 86400) {
                        control_reply_error(req, EINVAL, "pool %s: disconnect timeout must be 0-604800 s", p->name);
                        return -EINVAL;
                }
                p->disconnect_timeout = (unsigned)v;
        }
        if ((r = jsonx_get_int64(args, "idle_timeout", &v)) != -ENOENT) {
                if (r < 0 || v < 0 || v > 7 * 86400) {
                        control_reply_error(req, EINVAL, "pool %s: idle timeout must be 0-604800 s", p->name);
                        return -EINVAL;
                }
                p->idle_timeout = (unsigned)v;
        }
        if ((r = jsonx_get_int64(args, "max_age", &v)) != -ENOENT) {
                if (r < 0 || v < 0 || v > 365 * 86400) {
                        control_reply_error(req, EINVAL, "pool %s: max age must be 0-31536000 s", p->name);
                        return -EINVAL;
                }
                p->max_age = (unsigned)v;
        }
        if ((r = jsonx_get_int64(args, "usable_timeout", &v)) != -ENOENT) {
                if (r < 0 || v < 1 || v > 86400) {
                        control_reply_error(req, EINVAL, "pool %s: usable timeout must be 1-86400 s", p->name);
                        return -EINVAL;
                }
                p->usable_timeout = (unsigned)v;
        }
        bool profiles, clone;
        if (jsonx_get_bool(args, "profiles", &profiles) == 0)
                p->profiles = profiles;
        if (jsonx_get_bool(args, "clone", &clone) == 0)
                p->clone = clone;
        if ((r = jsonx_get_string(args, "layer_policy", &s)) != -ENOENT) {
                if (r < 0 || (strcmp(s, "warn") != 0 && strcmp(s, "refuse") != 0)) {
                        control_reply_error(req, EINVAL, "pool %s: layer policy must be warn or refuse", p->name);
                        return -EINVAL;
                }
                p->layer_refuse_older = strcmp(s, "refuse") == 0;
        }
        int64_t psize;
        if ((r = jsonx_get_int64(args, "profile_size", &psize)) != -ENOENT) {
                /* 0 goes back to the profile-size setting; else the bounds of profile quota. */
                if (r < 0 || (psize != 0 && (psize < (64ll << 20) || psize > (16ll << 40) || psize % 4096))) {
                        control_reply_error(req, EINVAL, "pool %s: profile size: 0, or 64M to 16T in whole KiB", p->name);
                        return -EINVAL;
                }
                p->profile_size = (uint64_t)psize;
        }
        if ((r = jsonx_get_string(args, "overlay", &s)) != -ENOENT) {
                if (r < 0 || overlay_mode_from_string(s, &p->overlay) < 0) {
                        control_reply_error(req, EINVAL, "pool %s: overlay must be encrypted, ram or plain", p->name);
                        return -EINVAL;
                }
                if (p->overlay == OVERLAY_RAM && fs_is_tmpfs(b->cfg->ram_dir) != 1) {
                        control_reply_error(req, EINVAL, "pool %s: ram overlays need ram-dir %s on tmpfs", p->name,
                                            b->cfg->ram_dir);
                        return -EINVAL;
                }
        }
        if ((r = jsonx_get_string(args, "image", &s)) != -ENOENT) {
                DbImageVersion *all;
                size_t n;
                if (r < 0 || db_image_versions(b->db, s, &all, &n) < 0) {
                        control_reply_error(req, ENOENT, "pool %s: no such image %s", p->name, r < 0 ? "" : s);
                        return -ENOENT;
                }
                db_image_version_free_array(all, n);
                free(p->image);
                p->image = xstrdup(s);
        }
        if (p->warm > p->max) {
                control_reply_error(req, EINVAL, "pool %s: warm (%u) is larger than max (%u)", p->name, p->warm, p->max);
                return -EINVAL;
        }
        return 0;
}

static int pool_save(Broker *b, const Pool *p)
{
        DbPool row = {
                .name = p->name, .image = p->image, .warm = p->warm, .max = p->max, .memory = p->memory,
                .vcpus = p->vcpus, .overlay = (char *)overlay_mode_to_string(p->overlay), .created = p->created,
                .disconnect_timeout = p->disconnect_timeout, .idle_timeout = p->idle_timeout, .max_age = p->max_age,
                .profiles = p->profiles, .layer_refuse_older = p->layer_refuse_older, .profile_size = p->profile_size,
                .usable_timeout = p->usable_timeout, .clone = p->clone,
        };
        return db_pool_put(b->db, &row);
}

static void h_pool_create(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name;
        if (jsonx_get_string(args, "name", &name) < 0 || !string_is_name(name, POOL_NAME_MAX)) {
                control_reply_error(req, EINVAL, "pool name must be 1-%d characters of [A-Za-z0-9._-]", POOL_NAME_MAX);
                return;
        }
        if (pool_find(b, name)) {
                control_reply_error(req, EEXIST, "pool %s already exists", name);
                return;
        }
        const char *image;
        if (jsonx_get_string(args, "image", &image) < 0) {
                control_reply_error(req, EINVAL, "pool %s: --image is required", name);
                return;
        }
        Pool *p = xmalloc0(sizeof *p);
        p->name = xstrdup(name);
        p->image = xstrdup("");
        p->warm = 1;
        p->max = 0;
        p->memory = 512ull << 20;
        p->vcpus = 1;
        p->overlay = OVERLAY_ENCRYPTED;
        p->profiles = true;
        p->layer_refuse_older = false;
        p->disconnect_timeout = 300;
        p->usable_timeout = POOL_USABLE_TIMEOUT_DEFAULT;
        p->clone = b->cfg->pool_clone;
        p->created = (int64_t)now_realtime_s();
        int64_t warm = jsonx_int_or(args, "warm", 1);
        if (jsonx_get_int64(args, "max", &(int64_t){ 0 }) == -ENOENT)
                p->max = warm > 0 && warm <= POOL_MAX_DESKTOPS ? (unsigned)warm * 2 : 2;
        if (pool_apply(b, req, args, p) < 0) {
                pool_free(p);
                return;
        }
        if (pool_save(b, p) < 0) {
                control_reply_error(req, EIO, "pool %s: database error", name);
                pool_free(p);
                return;
        }
        p->next = b->pools;
        b->pools = p;
        db_audit(b->db, "pool.create", p->name, p->image);
        log_info("pool %s: created (image %s, warm %u, max %u, %s overlays)", p->name, p->image, p->warm, p->max,
                 overlay_mode_to_string(p->overlay));
        control_reply(req, pool_json(b, p));
        pool_manager_kick(b);
}

static void h_pool_list(Broker *b, ControlRequest *req, json_object *args)
{
        json_object *arr = json_object_new_array();
        for (Pool *p = b->pools; p; p = p->next)
                json_object_array_add(arr, pool_json(b, p));
        control_reply(req, arr);
}

static void h_pool_set(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name;
        Pool *p;
        if (jsonx_get_string(args, "name", &name) < 0 || !(p = pool_find(b, name)) || p->deleting) {
                control_reply_error(req, ENOENT, "no such pool");
                return;
        }
        /* Validate on a copy so a rejected change leaves the pool as it was. */
        Pool copy = *p;
        copy.image = xstrdup(p->image);
        copy.name = p->name;
        if (pool_apply(b, req, args, &copy) < 0) {
                free(copy.image);
                return;
        }
        free(p->image);
        *p = copy;
        pool_save(b, p);
        db_audit(b->db, "pool.set", p->name, json_object_to_json_string(args));
        control_reply(req, pool_json(b, p));
        pool_manager_kick(b);
}

static void h_pool_delete(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name;
        Pool *p;
        if (jsonx_get_string(args, "name", &name) < 0 || !(p = pool_find(b, name))) {
                control_reply_error(req, ENOENT, "no such pool");
                return;
        }
        p->deleting = true;
        log_info("pool %s: deleting; draining its desktops", p->name);
        control_reply(req, NULL);
        pool_manager_kick(b);
}

static void entitle(Broker *b, ControlRequest *req, json_object *args, bool on)
{
        const char *name, *principal = NULL;
        Pool *p;
        if (jsonx_get_string(args, "name", &name) < 0 || !(p = pool_find(b, name)) || p->deleting) {
                control_reply_error(req, ENOENT, "no such pool");
                return;
        }
        if (jsonx_get_string(args, "principal", &principal) < 0 || !entitle_principal_valid(principal)) {
                if (principal && strncmp(principal, "user:", 5) == 0)
                        control_reply_error(req, EINVAL, "%s: " USER_NAME_RULE, principal);
                else
                        control_reply_error(req, EINVAL, "principal must be user:NAME, group:NAME or all");
                return;
        }
        if (db_entitlement_set(b->db, p->name, principal, on) < 0) {
                control_reply_error(req, EIO, "database error");
                return;
        }
        pool_load_entitlements(b, p);
        db_audit(b->db, on ? "pool.entitle" : "pool.unentitle", p->name, principal);
        control_reply(req, pool_json(b, p));
}

static void h_pool_entitle(Broker *b, ControlRequest *req, json_object *args) { entitle(b, req, args, true); }
static void h_pool_unentitle(Broker *b, ControlRequest *req, json_object *args) { entitle(b, req, args, false); }

static void h_desktop_list(Broker *b, ControlRequest *req, json_object *args)
{
        const char *pool = jsonx_string_or(args, "pool", NULL);
        json_object *arr = json_object_new_array();
        for (Desktop *d = b->desktops; d; d = d->next)
                if (!pool || strcmp(pool, d->pool) == 0)
                        json_object_array_add(arr, desktop_json(d));
        control_reply(req, arr);
}

static void h_desktop_destroy(Broker *b, ControlRequest *req, json_object *args)
{
        const char *id;
        Desktop *d;
        if (jsonx_get_string(args, "id", &id) < 0 || !(d = desktop_find(b, id))) {
                control_reply_error(req, ENOENT, "no such desktop");
                return;
        }
        log_info("desktop %s: destroy requested by an administrator", d->id);
        desktop_destroy(d, "destroyed by administrator");
        control_reply(req, NULL);
}

static void h_template_list(Broker *b, ControlRequest *req, json_object *args)
{
        control_reply(req, template_list_json(b));
}

static void h_template_rm(Broker *b, ControlRequest *req, json_object *args)
{
        const char *name;
        if (jsonx_get_string(args, "name", &name) < 0 || template_remove(b, name) < 0) {
                control_reply_error(req, ENOENT, "no template %s", jsonx_string_or(args, "name", ""));
                return;
        }
        db_audit(b->db, "template.rm", name, "admin");
        control_reply(req, NULL);
}

#define POOL_SETTINGS \
        { "warm", CONTROL_ARG_INT, false, 0, POOL_MAX_DESKTOPS }, \
        { "max", CONTROL_ARG_INT, false, 1, POOL_MAX_DESKTOPS }, \
        { "memory", CONTROL_ARG_INT, false, (int64_t)POOL_MEMORY_MIN, (int64_t)POOL_MEMORY_MAX }, \
        { "vcpus", CONTROL_ARG_INT, false, 1, 64 }, \
        { "overlay", CONTROL_ARG_STRING, false, 1, 16 }, \
        { "disconnect_timeout", CONTROL_ARG_INT, false, 0, 7 * 86400 }, \
        { "idle_timeout", CONTROL_ARG_INT, false, 0, 7 * 86400 }, \
        { "max_age", CONTROL_ARG_INT, false, 0, 365 * 86400 }, \
        { "usable_timeout", CONTROL_ARG_INT, false, 1, 86400 }, \
        { "profiles", CONTROL_ARG_BOOL, false, 0, 0 }, \
        { "clone", CONTROL_ARG_BOOL, false, 0, 0 }, \
        { "layer_policy", CONTROL_ARG_STRING, false, 1, 8 }, \
        { "profile_size", CONTROL_ARG_INT, false, 0, 16ll << 40 }

static const ControlCommand commands[] = {
        { "status", h_status, false, { {} } },
        { "pool.create", h_pool_create, true,
          { { "name", CONTROL_ARG_STRING, true, 1, POOL_NAME_MAX }, { "image", CONTROL_ARG_STRING, true, 1, 64 },
            POOL_SETTINGS } },
        { "pool.list", h_pool_list, false, { {} } },
        { "pool.set", h_pool_set, true,
          { { "name", CONTROL_ARG_STRING, true, 1, POOL_NAME_MAX }, { "image", CONTROL_ARG_STRING, false, 1, 64 },
            POOL_SETTINGS } },
        { "pool.delete", h_pool_delete, true, { { "name", CONTROL_ARG_STRING, true, 1, POOL_NAME_MAX } } },
        { "pool.entitle", h_pool_entitle, true,
          { { "name", CONTROL_ARG_STRING, true, 1, POOL_NAME_MAX }, { "principal", CONTROL_ARG_STRING, true, 1, 128 } } },
        { "pool.unentitle", h_pool_unentitle, true,
          { { "name", CONTROL_ARG_STRING, true, 1, POOL_NAME_MAX }, { "principal", CONTROL_ARG_STRING, true, 1, 128 } } },
        { "desktop.list", h_desktop_list, false, { { "pool", CONTROL_ARG_STRING, false, 1, POOL_NAME_MAX } } },
        { "desktop.destroy", h_desktop_destroy, true, { { "id", CONTROL_ARG_STRING, true, 1, 32 } } },
        { "template.list", h_template_list, false, { {} } },
        { "template.rm", h_template_rm, true, { { "name", CONTROL_ARG_STRING, true, 1, 128 } } },
        {},
};

void api_register(Control *c) { control_register(c, commands); }
