/* Profiles and users, control side: list, show, reset (a fresh disk at the next logon; the old
 * one kept as an older generation until pruned), quota, prune; user show (what a user gets:
 * pools, apps, profile). Never sees a profile key: disks are created at logon (logon_disks.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/api.h"
#include "broker/control.h"
#include "broker/desktop.h"
#include "broker/pool.h"
#include "broker/session.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "common/username.h"
#include "common/util.h"
#include "broker/userdisks.h"
#include "streaming/entitle.h"
#include "streaming/profile.h"
#include "streaming/store.h"

static json_object *profile_json(const DbProfile *p)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "user", json_object_new_string(p->user));
        json_object_object_add(o, "generation", json_object_new_int(p->generation));
        json_object_object_add(o, "current", json_object_new_boolean(p->current));
        json_object_object_add(o, "size", json_object_new_int64((int64_t)p->size));
        struct stat st;
        json_object_object_add(o, "used", json_object_new_int64(stat(p->path, &st) == 0 ? (int64_t)st.st_blocks * 512 : 0));
        json_object_object_add(o, "encrypted", json_object_new_boolean(strncmp(p->wrapped_key, "v1:", 3) == 0));
        json_object_object_add(o, "created", json_object_new_int64(p->created));
        json_object_object_add(o, "last_attach", json_object_new_int64(p->last_attach));
        json_object_object_add(o, "attached_to", p->attached_to ? json_object_new_string(p->attached_to) : NULL);
        json_object_object_add(o, "clean", json_object_new_boolean(p->clean));
        json_object_object_add(o, "path", json_object_new_string(p->path));
        return o;
}

static bool user_arg(ControlRequest *req, json_object *args, const char **ret)
{
        if (jsonx_get_string(args, "user", ret) < 0 || !user_name_valid(*ret)) {
                control_reply_error(req, EINVAL, "user: " USER_NAME_RULE);
                return false;
        }
        return true;
}

static void h_list(Broker *b, ControlRequest *req, json_object *args)
{
        bool all = false;
        jsonx_get_bool(args, "all", &all);
        DbProfile *ps;
        size_t n;
        if (db_profile_list(b->db, all, &ps, &n) < 0) {
                control_reply_error(req, EIO, "profiles: database error");
                return;
        }
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(arr, profile_json(&ps[i]));
        db_profile_free_array(ps, n);
        control_reply(req, arr);
}

static void h_show(Broker *b, ControlRequest *req, json_object *args)
{
        const char *user;
        if (!user_arg(req, args, &user))
                return;
        DbProfile p;
        int r = db_profile_get(b->db, user, &p);
        if (r < 0) {
                control_reply_error(req, r, "user %s: %s", user,
                                    r == -ENOENT ? "no profile yet (one is made at the first logon)" : "database error");
                return;
        }
        json_object *o = profile_json(&p);
        uint64_t quota;
        if (db_profile_quota_get(b->db, user, &quota) == 0)
                json_object_object_add(o, "quota", json_object_new_int64((int64_t)quota));
        db_profile_free(&p);
        control_reply(req, o);
}

/* The next logon makes a fresh disk: the current generation becomes an older one (kept until
 * pruned). Refused while the profile is attached: end the session first. */
static void h_reset(Broker *b, ControlRequest *req, json_object *args)
{
        const char *user;
        if (!user_arg(req, args, &user))
                return;
        DbProfile p;
        int r = db_profile_get(b->db, user, &p);
        if (r < 0) {
                control_reply_error(req, r, "user %s: %s", user, r == -ENOENT ? "no profile" : "database error");
                return;
        }
        if (p.attached_to && desktop_find(b, p.attached_to)) {
                control_reply_error(req, EBUSY, "user %s: the profile is attached to desktop %s; end the session "
                                    "first", user, p.attached_to);
        } else {
                /* A generation row that is not current and no new one: the next logon creates one. */
                r = db_profile_retire(b->db, user, p.generation);
                p.current = false;
                char detail[64];
                snprintf(detail, sizeof detail, "generation %d kept until pruned", p.generation);
                db_audit(b->db, "profile.reset", user, detail);
                log_info("profile %s: reset; generation %d kept until pruned", user, p.generation);
                control_reply(req, r < 0 ? NULL : profile_json(&p));
        }
        db_profile_free(&p);
}

/* Old generations of a user's profile (or everyone's) go, files and rows. */
static void h_prune(Broker *b, ControlRequest *req, json_object *args)
{
        const char *user = jsonx_string_or(args, "user", NULL);
        if (user && !user_name_valid(user)) {
                control_reply_error(req, EINVAL, "user: " USER_NAME_RULE);
                return;
        }
        DbProfile *ps;
        size_t n;
        if (db_profile_list(b->db, true, &ps, &n) < 0) {
                control_reply_error(req, EIO, "profiles: database error");
                return;
        }
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                if (ps[i].current || (user && strcmp(ps[i].user, user) != 0))
                        continue;
                if (unlink(ps[i].path) < 0 && errno != ENOENT)
                        continue;
                db_profile_delete(b->db, ps[i].user, ps[i].generation);
                char detail[64];
                snprintf(detail, sizeof detail, "generation %d removed", ps[i].generation);
                db_audit(b->db, "profile.prune", ps[i].user, detail);
                json_object_array_add(arr, profile_json(&ps[i]));
        }
        db_profile_free_array(ps, n);
        control_reply(req, arr);
}

static void h_quota(Broker *b, ControlRequest *req, json_object *args)
{
        const char *user, *size_s;
        if (!user_arg(req, args, &user))
                return;
        jsonx_get_string(args, "size", &size_s);
        uint64_t size;
        if (parse_size(size_s, &size) < 0 || size < (64ull << 20) || size % 4096 || size > (16ull << 40)) {
                control_reply_error(req, EINVAL, "size: at least 64M, at most 16T, in whole KiB (\"2G\")");
                return;
        }
        DbProfile p;
        if (db_profile_get(b->db, user, &p) == 0) {
                bool smaller = size < p.size;
                uint64_t have = p.size;
                db_profile_free(&p);
                if (smaller) {
                        control_reply_error(req, EINVAL, "user %s: the profile disk is %llu MiB; a quota cannot "
                                            "shrink it (profile reset gives a fresh disk)", user,
                                            (unsigned long long)(have >> 20));
                        return;
                }
        }
        if (db_profile_quota_set(b->db, user, size) < 0) {
                control_reply_error(req, EIO, "user %s: database error", user);
                return;
        }
        char detail[64];
        snprintf(detail, sizeof detail, "%llu MiB", (unsigned long long)(size >> 20));
        db_audit(b->db, "profile.quota", user, detail);
        control_reply(req, NULL);
}

/* A new host key: every profile key re-wrapped (the disks are not touched), spare disks dropped
 * (they are made again under the new key). The old key file is overwritten: back up the new one. */
static void h_rotate(Broker *b, ControlRequest *req, json_object *args)
{
        const char *path = b->cfg->profile_key_file;
        _cleanup_free_ char *next = xasprintf("%s" PROFILE_HOST_KEY_NEXT_SUFFIX, path), *err = NULL;
        uint8_t old[PROFILE_KEY_LEN], nk[PROFILE_KEY_LEN], key[PROFILE_KEY_LEN];
        int r = profile_host_key_load(path, true, old, &err);
        if (r < 0) {
                control_reply_error(req, r, "profiles: %s", err);
                return;
        }
        /* A .next left by a rotation cut short after its commit is the key the rows need now. */
        free(TAKE_PTR(err));
        bool resumed = profile_host_key_load(next, false, nk, &err) == 0;
        if (!resumed) {
                random_bytes(nk, sizeof nk);
                if ((r = write_file_atomic(next, nk, sizeof nk, 0400)) < 0) {
                        secret_wipe(old, sizeof old);
                        secret_wipe(nk, sizeof nk);
                        control_reply_error(req, r, "profiles: writing %s: %s", next, strerror(-r));
                        return;
                }
        }
        DbProfile *ps = NULL;
        size_t n = 0;
        db_profile_list(b->db, true, &ps, &n);
        char **users = xmalloc0((n + 1) * sizeof *users), **wrapped = xmalloc0((n + 1) * sizeof *wrapped);
        int *gens = xmalloc0((n + 1) * sizeof *gens);
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
                users[i] = ps[i].user;
                gens[i] = ps[i].generation;
                if (profile_key_unwrap(old, ps[i].user, ps[i].wrapped_key, key) == 0 ||
                    (resumed && profile_key_unwrap(nk, ps[i].user, ps[i].wrapped_key, key) == 0))
                        wrapped[i] = profile_key_wrap(nk, ps[i].user, key);
                else {
                        wrapped[i] = xstrdup(ps[i].wrapped_key);
                        bad++;
                        log_error("profiles: %s generation %d: its key opens with neither host key; left as it is",
                                  ps[i].user, ps[i].generation);
                }
                secret_wipe(key, sizeof key);
        }
        r = db_profile_rewrap(b->db, users, gens, wrapped, n);
        /* The block store's key too, before the old host key goes. */
        _cleanup_free_ char *store_err = NULL;
        if (r == 0 && (r = store_rewrap_key(b->cfg->store_dir, old, nk, &store_err)) < 0)
                log_error("profiles: %s", store_err);
        if (r == 0 && rename(next, path) < 0)
                r = -errno;
        secret_wipe(old, sizeof old);
        secret_wipe(nk, sizeof nk);
        for (size_t i = 0; i < n; i++)
                free(wrapped[i]);
        free(wrapped);
        free(users);
        free(gens);
        db_profile_free_array(ps, n);
        if (r < 0) {
                control_reply_error(req, r, "profiles: rotation failed (%s); the old key still opens every profile",
                                    strerror(-r));
                return;
        }
        _cleanup_free_ char *spares = xasprintf("%s/.spare", b->profile_dir);
        rm_rf(spares);
        userdisks_spares_refill(b);
        char detail[96];
        snprintf(detail, sizeof detail, "%zu profile keys re-wrapped, %zu left as they were", n - bad, bad);
        db_audit(b->db, "profile.rotate-host-key", path, detail);
        log_info("profiles: host key %s rotated: %s", path, detail);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "key_file", json_object_new_string(path));
        json_object_object_add(o, "rewrapped", json_object_new_int64((int64_t)(n - bad)));
        json_object_object_add(o, "failed", json_object_new_int64((int64_t)bad));
        control_reply(req, o);
}

static void h_user_show(Broker *b, ControlRequest *req, json_object *args)
{
        const char *user;
        if (!user_arg(req, args, &user))
                return;
        gid_t groups[256];
        int ngroups = (int)ELEMENTSOF(groups);
        session_user_uid(user, groups, &ngroups);
        json_object *o = json_object_new_object(), *pools = json_object_new_array(), *apps = json_object_new_array();
        json_object_object_add(o, "user", json_object_new_string(user));
        for (Pool *p = b->pools; p; p = p->next)
                if (pool_entitles(p, user, groups, ngroups))
                        json_object_array_add(pools, json_object_new_string(p->name));
        json_object_object_add(o, "pools", pools);
        char **names;
        size_t n;
        if (userdisks_entitled_apps(b, user, groups, ngroups, &names, &n) == 0) {
                for (size_t i = 0; i < n; i++)
                        json_object_array_add(apps, json_object_new_string(names[i]));
                strv_free(names, n);
        }
        json_object_object_add(o, "apps", apps);
        DbProfile p;
        if (db_profile_get(b->db, user, &p) == 0) {
                json_object_object_add(o, "profile", profile_json(&p));
                db_profile_free(&p);
        }
        Session *s = session_find_user(b, user);
        if (s)
                json_object_object_add(o, "session", json_object_new_string(s->id));
        control_reply(req, o);
}

#define USER_ARG { "user", CONTROL_ARG_STRING, true, 1, 32 }

static const ControlCommand commands[] = {
        { "profile.list", h_list, false, { { "all", CONTROL_ARG_BOOL, false, 0, 0 } } },
        { "profile.show", h_show, false, { USER_ARG } },
        { "profile.reset", h_reset, true, { USER_ARG } },
        { "profile.prune", h_prune, true, { { "user", CONTROL_ARG_STRING, false, 1, 32 } } },
        { "profile.quota", h_quota, true, { USER_ARG, { "size", CONTROL_ARG_STRING, true, 1, 32 } } },
        { "profile.rotate_host_key", h_rotate, true, { {} } },
        { "user.show", h_user_show, false, { USER_ARG } },
        {},
};

void api_profile_register(Control *c) { control_register(c, commands); }
