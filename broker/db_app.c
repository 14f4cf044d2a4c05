/* The database module's app layer and profile tables (db.h, schema migration 5). Same rules as
 * db.c: short synchronous calls, every multi-row change one transaction. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "broker/db_int.h"
#include "common/util.h"

static void row_app_version(sqlite3_stmt *s, void *e)
{
        *(DbAppVersion *)e = (DbAppVersion){
                .name = dbi_col_text(s, 0), .version = sqlite3_column_int(s, 1), .current = sqlite3_column_int(s, 2),
                .state = dbi_col_text(s, 3), .path = dbi_col_text(s, 4), .size = (uint64_t)sqlite3_column_int64(s, 5),
                .sha256 = dbi_col_text(s, 6), .image = dbi_col_text(s, 7), .image_version = sqlite3_column_int(s, 8),
                .source = dbi_col_text(s, 9), .created = sqlite3_column_int64(s, 10), .fingerprint = dbi_col_text(s, 11),
        };
}

int db_app_version_add(Db *db, DbAppVersion *v, bool make_current)
{
        sqlite3_stmt *s;
        int r;
        if ((r = dbi_exec(db, "BEGIN IMMEDIATE")) < 0)
                return r;
        if ((r = dbi_prepare(db, "INSERT OR IGNORE INTO apps(name, current) VALUES(?, 0)", &s)) < 0)
                goto fail;
        dbi_bind_text(s, 1, v->name);
        if ((r = dbi_step_done(db, s, "insert app")) < 0)
                goto fail;
        if (v->version <= 0) {
                if ((r = dbi_prepare(db, "SELECT COALESCE(MAX(version), 0) + 1 FROM app_versions WHERE name = ?", &s)) < 0)
                        goto fail;
                dbi_bind_text(s, 1, v->name);
                v->version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 1;
                sqlite3_finalize(s);
        }
        if ((r = dbi_prepare(db,
                             "INSERT INTO app_versions(name, version, state, path, size, sha256, image, image_version,"
                             " source, created, fingerprint) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                             &s)) < 0)
                goto fail;
        dbi_bind_text(s, 1, v->name);
        sqlite3_bind_int(s, 2, v->version);
        dbi_bind_text(s, 3, v->state ? v->state : "available");
        dbi_bind_text(s, 4, v->path);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)v->size);
        dbi_bind_text(s, 6, v->sha256);
        dbi_bind_text(s, 7, v->image);
        sqlite3_bind_int(s, 8, v->image_version);
        dbi_bind_text(s, 9, v->source);
        sqlite3_bind_int64(s, 10, v->created);
        dbi_bind_text(s, 11, v->fingerprint);
        if ((r = dbi_step_done(db, s, "insert app version")) < 0)
                goto fail;
        if ((r = dbi_prepare(db, "UPDATE apps SET current = ? WHERE name = ? AND (? OR current = 0)", &s)) < 0)
                goto fail;
        sqlite3_bind_int(s, 1, v->version);
        dbi_bind_text(s, 2, v->name);
        sqlite3_bind_int(s, 3, make_current);
        if ((r = dbi_step_done(db, s, "set current app")) < 0)
                goto fail;
        return dbi_exec(db, "COMMIT");
fail:
        dbi_exec(db, "ROLLBACK");
        return r;
}

int db_app_versions(Db *db, const char *name, DbAppVersion **ret, size_t *ret_n)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db,
                            "SELECT v.name, v.version, v.version = a.current, v.state, v.path, v.size, v.sha256,"
                            " v.image, v.image_version, v.source, v.created, v.fingerprint FROM app_versions v"
                            " JOIN apps a ON a.name = v.name WHERE v.name = ? ORDER BY v.version",
                            &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, name);
        if ((r = dbi_collect_rows(db, s, sizeof(DbAppVersion), row_app_version, (void **)ret, ret_n)) < 0)
                return r;
        return *ret_n ? 0 : -ENOENT;
}

int db_app_names(Db *db, char ***ret, size_t *ret_n)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "SELECT name FROM apps ORDER BY name", &s);
        if (r < 0)
                return r;
        return dbi_collect_rows(db, s, sizeof(char *), dbi_row_text, (void **)ret, ret_n);
}

static int exec_bound(Db *db, const char *sql, const char *what, const char *t1, int i2, const char *t3)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, sql, &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, t1);
        sqlite3_bind_int(s, 2, i2);
        if (t3)
                dbi_bind_text(s, 3, t3);
        if ((r = dbi_step_done(db, s, what)) < 0)
                return r;
        return sqlite3_changes(db->h) > 0 ? 0 : -ENOENT;
}

int db_app_set_current(Db *db, const char *name, int version)
{
        return exec_bound(db,
                          "UPDATE apps SET current = ?2 WHERE name = ?1 AND EXISTS(SELECT 1 FROM app_versions"
                          " WHERE name = ?1 AND version = ?2 AND state = 'available')",
                          "set current app", name, version, NULL);
}

int db_app_version_set_state(Db *db, const char *name, int version, const char *state)
{
        return exec_bound(db, "UPDATE app_versions SET state = ?3 WHERE name = ?1 AND version = ?2", "app state",
                          name, version, state);
}

int db_app_version_set_fingerprint(Db *db, const char *name, int version, const char *fp)
{
        return exec_bound(db, "UPDATE app_versions SET fingerprint = ?3 WHERE name = ?1 AND version = ?2",
                          "app fingerprint", name, version, fp);
}

int db_app_version_delete(Db *db, const char *name, int version)
{
        int r;
        if ((r = dbi_exec(db, "BEGIN IMMEDIATE")) < 0)
                return r;
        if ((r = exec_bound(db, "DELETE FROM app_versions WHERE name = ?1 AND version = ?2", "delete app version", name,
                            version, NULL)) < 0)
                goto fail;
        sqlite3_stmt *s;
        if ((r = dbi_prepare(db, "DELETE FROM apps WHERE name = ?1 AND NOT EXISTS(SELECT 1 FROM app_versions WHERE name = ?1)",
                             &s)) < 0)
                goto fail;
        dbi_bind_text(s, 1, name);
        if ((r = dbi_step_done(db, s, "delete app")) < 0)
                goto fail;
        if (sqlite3_changes(db->h) > 0) {
                if ((r = dbi_prepare(db, "DELETE FROM app_entitlements WHERE app = ?", &s)) < 0)
                        goto fail;
                dbi_bind_text(s, 1, name);
                if ((r = dbi_step_done(db, s, "delete app entitlements")) < 0)
                        goto fail;
        }
        return dbi_exec(db, "COMMIT");
fail:
        dbi_exec(db, "ROLLBACK");
        return r;
}

void db_app_version_free_array(DbAppVersion *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(v[i].name);
                free(v[i].state);
                free(v[i].path);
                free(v[i].sha256);
                free(v[i].image);
                free(v[i].source);
                free(v[i].fingerprint);
        }
        free(v);
}

int db_app_entitlement_set(Db *db, const char *app, const char *principal, bool on)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, on ? "INSERT OR IGNORE INTO app_entitlements(app, principal) VALUES(?, ?)"
                                   : "DELETE FROM app_entitlements WHERE app = ? AND principal = ?",
                            &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, app);
        dbi_bind_text(s, 2, principal);
        return dbi_step_done(db, s, "app entitlement");
}

int db_app_entitlement_list(Db *db, const char *app, char ***ret, size_t *ret_n)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "SELECT principal FROM app_entitlements WHERE app = ? ORDER BY principal", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, app);
        return dbi_collect_rows(db, s, sizeof(char *), dbi_row_text, (void **)ret, ret_n);
}

/* ---- profiles ---- */

#define PROFILE_COLUMNS "user, generation, path, size, wrapped_key, created, last_attach, attached_to, clean, current"

static void row_profile(sqlite3_stmt *s, void *e)
{
        *(DbProfile *)e = (DbProfile){
                .user = dbi_col_text(s, 0), .generation = sqlite3_column_int(s, 1), .path = dbi_col_text(s, 2),
                .size = (uint64_t)sqlite3_column_int64(s, 3), .wrapped_key = dbi_col_text(s, 4),
                .created = sqlite3_column_int64(s, 5), .last_attach = sqlite3_column_int64(s, 6),
                .attached_to = dbi_col_text(s, 7), .clean = sqlite3_column_int(s, 8), .current = sqlite3_column_int(s, 9),
        };
}

int db_profile_get(Db *db, const char *user, DbProfile *ret)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "SELECT " PROFILE_COLUMNS " FROM profiles WHERE user = ? AND current = 1", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, user);
        DbProfile *a = NULL;
        size_t n = 0;
        if ((r = dbi_collect_rows(db, s, sizeof *a, row_profile, (void **)&a, &n)) < 0)
                return r;
        if (n == 0) {
                free(a);
                return -ENOENT;
        }
        *ret = a[0];
        for (size_t i = 1; i < n; i++)
                db_profile_free(&a[i]);
        free(a);
        return 0;
}

int db_profile_list(Db *db, bool all_generations, DbProfile **ret, size_t *ret_n)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db,
                            all_generations ? "SELECT " PROFILE_COLUMNS " FROM profiles ORDER BY user, generation"
                                            : "SELECT " PROFILE_COLUMNS " FROM profiles WHERE current = 1 ORDER BY user",
                            &s);
        if (r < 0)
                return r;
        return dbi_collect_rows(db, s, sizeof(DbProfile), row_profile, (void **)ret, ret_n);
}

int db_profile_add(Db *db, DbProfile *p)
{
        sqlite3_stmt *s;
        int r;
        if ((r = dbi_exec(db, "BEGIN IMMEDIATE")) < 0)
                return r;
        if ((r = dbi_prepare(db, "UPDATE profiles SET current = 0 WHERE user = ?", &s)) < 0)
                goto fail;
        dbi_bind_text(s, 1, p->user);
        if ((r = dbi_step_done(db, s, "profile generation")) < 0)
                goto fail;
        if ((r = dbi_prepare(db,
                             "INSERT INTO profiles(user, generation, path, size, wrapped_key, created, clean, current)"
                             " VALUES(?, ?, ?, ?, ?, ?, 1, 1)",
                             &s)) < 0)
                goto fail;
        dbi_bind_text(s, 1, p->user);
        sqlite3_bind_int(s, 2, p->generation);
        dbi_bind_text(s, 3, p->path);
        sqlite3_bind_int64(s, 4, (sqlite3_int64)p->size);
        dbi_bind_text(s, 5, p->wrapped_key);
        sqlite3_bind_int64(s, 6, p->created);
        if ((r = dbi_step_done(db, s, "insert profile")) < 0)
                goto fail;
        return dbi_exec(db, "COMMIT");
fail:
        dbi_exec(db, "ROLLBACK");
        return r;
}

int db_profile_set_attached(Db *db, const char *user, int generation, const char *desktop, int64_t when)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db,
                            "UPDATE profiles SET attached_to = ?3, last_attach = ?4, clean = 0"
                            " WHERE user = ?1 AND generation = ?2",
                            &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, user);
        sqlite3_bind_int(s, 2, generation);
        dbi_bind_text(s, 3, desktop);
        sqlite3_bind_int64(s, 4, when);
        return dbi_step_done(db, s, "profile attached");
}

int db_profile_set_detached(Db *db, const char *user, int generation, bool clean)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "UPDATE profiles SET attached_to = NULL, clean = ?3 WHERE user = ?1 AND generation = ?2",
                            &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, user);
        sqlite3_bind_int(s, 2, generation);
        sqlite3_bind_int(s, 3, clean);
        return dbi_step_done(db, s, "profile detached");
}

int db_profile_set_size(Db *db, const char *user, int generation, uint64_t size)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "UPDATE profiles SET size = ?3 WHERE user = ?1 AND generation = ?2", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, user);
        sqlite3_bind_int(s, 2, generation);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)size);
        return dbi_step_done(db, s, "profile size");
}

int db_profile_delete(Db *db, const char *user, int generation)
{
        return exec_bound(db, "DELETE FROM profiles WHERE user = ?1 AND generation = ?2", "delete profile", user,
                          generation, NULL);
}

int db_profile_retire(Db *db, const char *user, int generation)
{
        return exec_bound(db, "UPDATE profiles SET current = 0 WHERE user = ?1 AND generation = ?2", "retire profile",
                          user, generation, NULL);
}

void db_profile_free(DbProfile *p)
{
        free(p->user);
        free(p->path);
        free(p->wrapped_key);
        free(p->attached_to);
        *p = (DbProfile){ 0 };
}

void db_profile_free_array(DbProfile *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                db_profile_free(&p[i]);
        free(p);
}

int db_profile_rewrap(Db *db, char *const *users, const int *generations, char *const *wrapped, size_t n)
{
        int r;
        if ((r = dbi_exec(db, "BEGIN IMMEDIATE")) < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                sqlite3_stmt *s;
                if ((r = dbi_prepare(db, "UPDATE profiles SET wrapped_key = ?3 WHERE user = ?1 AND generation = ?2", &s)) < 0)
                        goto fail;
                dbi_bind_text(s, 1, users[i]);
                sqlite3_bind_int(s, 2, generations[i]);
                dbi_bind_text(s, 3, wrapped[i]);
                if ((r = dbi_step_done(db, s, "rewrap profile")) < 0)
                        goto fail;
        }
        return dbi_exec(db, "COMMIT");
fail:
        dbi_exec(db, "ROLLBACK");
        return r;
}

int db_profile_quota_set(Db *db, const char *user, uint64_t size)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "INSERT OR REPLACE INTO profile_quotas(user, size) VALUES(?, ?)", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, user);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)size);
        return dbi_step_done(db, s, "profile quota");
}

int db_profile_quota_get(Db *db, const char *user, uint64_t *ret)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "SELECT size FROM profile_quotas WHERE user = ?", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, user);
        r = sqlite3_step(s) == SQLITE_ROW ? (*ret = (uint64_t)sqlite3_column_int64(s, 0), 0) : -ENOENT;
        sqlite3_finalize(s);
        return r;
}
