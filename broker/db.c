/* SQLite persistence for slated. The only file that includes sqlite3.h (STYLE.md).
 * Never holds a transaction open across the event loop; every call is short and synchronous. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include "broker/db.h"
#include "common/log.h"
#include "common/util.h"

struct Db {
        sqlite3 *h;
        char *path;
};

/* Collect every row of a prepared statement into a growing array of elem_size elements,
 * each filled by fn. Finalizes the statement. */
typedef void (*RowFn)(sqlite3_stmt *s, void *elem);

/* Each entry migrates from user_version == index to index + 1. Append only. */
static const char *const migrations[] = {
        "CREATE TABLE images(name TEXT PRIMARY KEY, current INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE image_versions(name TEXT NOT NULL REFERENCES images(name), version INTEGER NOT NULL,"
        "  state TEXT NOT NULL, format TEXT NOT NULL, size INTEGER NOT NULL, virtual_size INTEGER NOT NULL,"
        "  sha256 TEXT NOT NULL, path TEXT NOT NULL, kernel TEXT, initrd TEXT, cmdline TEXT,"
        "  created INTEGER NOT NULL, PRIMARY KEY(name, version));"
        "CREATE TABLE pools(name TEXT PRIMARY KEY, image TEXT NOT NULL, warm INTEGER NOT NULL,"
        "  max INTEGER NOT NULL, memory INTEGER NOT NULL, vcpus INTEGER NOT NULL, overlay TEXT NOT NULL,"
        "  created INTEGER NOT NULL);"
        "CREATE TABLE desktops(id TEXT PRIMARY KEY, pool TEXT NOT NULL, image TEXT NOT NULL,"
        "  version INTEGER NOT NULL, state TEXT NOT NULL, overlay_mode TEXT NOT NULL, overlay_path TEXT,"
        "  run_dir TEXT NOT NULL, pid INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);"
        "CREATE TABLE audit(seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, kind TEXT NOT NULL,"
        "  subject TEXT NOT NULL, detail TEXT NOT NULL);",
        /* 2: logon over RDP */
        "ALTER TABLE pools ADD COLUMN disconnect_timeout INTEGER NOT NULL DEFAULT 300;"
        "ALTER TABLE pools ADD COLUMN idle_timeout INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE pools ADD COLUMN max_age INTEGER NOT NULL DEFAULT 0;"
        "CREATE TABLE entitlements(pool TEXT NOT NULL, principal TEXT NOT NULL, PRIMARY KEY(pool, principal));"
        "CREATE TABLE sessions(id TEXT PRIMARY KEY, user TEXT NOT NULL, uid INTEGER NOT NULL, pool TEXT NOT NULL,"
        "  desktop TEXT NOT NULL, client TEXT NOT NULL, since INTEGER NOT NULL, width INTEGER NOT NULL,"
        "  height INTEGER NOT NULL);",
        /* 3: a restart finishes what a crash interrupted: a logon not yet started in the guest
         * is ended, a half-done logoff is finished with the reason it had. */
        "ALTER TABLE sessions ADD COLUMN state TEXT NOT NULL DEFAULT 'active';"
        "ALTER TABLE sessions ADD COLUMN end_reason TEXT;",
        /* 4: each logon, reconnect and logoff of a session, step by step (slatectl session show) */
        "CREATE TABLE session_steps(session TEXT NOT NULL, attempt INTEGER NOT NULL, kind TEXT NOT NULL,"
        "  seq INTEGER NOT NULL, step TEXT NOT NULL, ms INTEGER NOT NULL, result TEXT NOT NULL,"
        "  PRIMARY KEY(session, attempt, seq));",
        /* 5: app layers (versions like images), who gets them, and each user's profile disks
         * (one current generation; older ones kept after a reset until pruned). */
        "CREATE TABLE apps(name TEXT PRIMARY KEY, current INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE app_versions(name TEXT NOT NULL REFERENCES apps(name), version INTEGER NOT NULL,"
        "  state TEXT NOT NULL DEFAULT 'available', path TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,"
        "  image TEXT NOT NULL, image_version INTEGER NOT NULL, source TEXT NOT NULL, created INTEGER NOT NULL,"
        "  fingerprint TEXT, PRIMARY KEY(name, version));"
        "CREATE TABLE app_entitlements(app TEXT NOT NULL, principal TEXT NOT NULL, PRIMARY KEY(app, principal));"
        "CREATE TABLE profiles(user TEXT NOT NULL, generation INTEGER NOT NULL, path TEXT NOT NULL,"
        "  size INTEGER NOT NULL, wrapped_key TEXT NOT NULL, created INTEGER NOT NULL,"
        "  last_attach INTEGER NOT NULL DEFAULT 0, attached_to TEXT, clean INTEGER NOT NULL DEFAULT 1,"
        "  current INTEGER NOT NULL DEFAULT 1, PRIMARY KEY(user, generation));"
        "CREATE TABLE profile_quotas(user TEXT PRIMARY KEY, size INTEGER NOT NULL);"
        "ALTER TABLE pools ADD COLUMN profiles INTEGER NOT NULL DEFAULT 1;"
        "ALTER TABLE pools ADD COLUMN layer_refuse_older INTEGER NOT NULL DEFAULT 0;",
        /* 6: a pool's size for new profile disks (0: the profile-size setting). */
        "ALTER TABLE pools ADD COLUMN profile_size INTEGER NOT NULL DEFAULT 0;",
        /* 7: the store version a profile's dirty bitmap counts from (0: none; the next backup reads all). */
        "ALTER TABLE profiles ADD COLUMN backup_version INTEGER NOT NULL DEFAULT 0;",
        /* 8: how long a logon waits for the desktop to be usable (the agent says so). */
        "ALTER TABLE pools ADD COLUMN usable_timeout INTEGER NOT NULL DEFAULT 180;",
        /* 9: instant clones; pools made before them keep booting. */
        "ALTER TABLE pools ADD COLUMN clone INTEGER NOT NULL DEFAULT 0;",
        /* 10: a desktop resumed from a template says so after a restart too. */
        "ALTER TABLE desktops ADD COLUMN cloned INTEGER NOT NULL DEFAULT 0;",
};

static int dbi_error(Db *db, const char *what)
{
        log_error("database %s: %s: %s", db->path, what, sqlite3_errmsg(db->h));
        int rc = sqlite3_errcode(db->h);
        if (rc == SQLITE_CONSTRAINT)
                return -EEXIST;
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
                return -EBUSY;
        return -EIO;
}

static int dbi_exec(Db *db, const char *sql)
{
        char *msg = NULL;
        if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
                log_error("database %s: %s", db->path, msg ? msg : "error");
                sqlite3_free(msg);
                return -EIO;
        }
        return 0;
}

static int dbi_prepare(Db *db, const char *sql, sqlite3_stmt **ret)
{
        if (sqlite3_prepare_v2(db->h, sql, -1, ret, NULL) != SQLITE_OK)
                return dbi_error(db, "prepare");
        return 0;
}

/* Bind helpers: NULL strings bind as SQL NULL. */
static void dbi_bind_text(sqlite3_stmt *s, int i, const char *v)
{
        if (v)
                sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
        else
                sqlite3_bind_null(s, i);
}

static char *dbi_col_text(sqlite3_stmt *s, int i)
{
        const unsigned char *t = sqlite3_column_text(s, i);
        return t ? xstrdup((const char *)t) : NULL;
}

/* Run a statement to completion (no rows expected). */
static int dbi_step_done(Db *db, sqlite3_stmt *s, const char *what)
{
        int rc = sqlite3_step(s);
        int r = rc == SQLITE_DONE ? 0 : dbi_error(db, what);
        sqlite3_finalize(s);
        return r;
}

static int dbi_collect_rows(Db *db, sqlite3_stmt *s, size_t elem_size, RowFn fn, void **ret, size_t *ret_n)
{
        uint8_t *a = NULL;
        size_t n = 0;
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                a = realloc(a, (n + 1) * elem_size);
                if (!a)
                        abort();
                memset(a + n * elem_size, 0, elem_size);
                fn(s, a + n * elem_size);
                n++;
        }
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE) {
                free(a);
                return dbi_error(db, "read rows");
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

static void dbi_row_text(sqlite3_stmt *s, void *e) { *(char **)e = dbi_col_text(s, 0); }

static void row_image_version(sqlite3_stmt *s, void *e)
{
        *(DbImageVersion *)e = (DbImageVersion){
                .name = dbi_col_text(s, 0), .version = sqlite3_column_int(s, 1), .current = sqlite3_column_int(s, 2),
                .state = dbi_col_text(s, 3), .format = dbi_col_text(s, 4), .size = (uint64_t)sqlite3_column_int64(s, 5),
                .virtual_size = (uint64_t)sqlite3_column_int64(s, 6), .sha256 = dbi_col_text(s, 7),
                .path = dbi_col_text(s, 8), .kernel = dbi_col_text(s, 9), .initrd = dbi_col_text(s, 10),
                .cmdline = dbi_col_text(s, 11), .created = sqlite3_column_int64(s, 12),
        };
}

static void row_pool(sqlite3_stmt *s, void *e)
{
        *(DbPool *)e = (DbPool){
                .name = dbi_col_text(s, 0), .image = dbi_col_text(s, 1), .warm = (unsigned)sqlite3_column_int(s, 2),
                .max = (unsigned)sqlite3_column_int(s, 3), .memory = (uint64_t)sqlite3_column_int64(s, 4),
                .vcpus = (unsigned)sqlite3_column_int(s, 5), .overlay = dbi_col_text(s, 6),
                .created = sqlite3_column_int64(s, 7), .disconnect_timeout = (unsigned)sqlite3_column_int(s, 8),
                .idle_timeout = (unsigned)sqlite3_column_int(s, 9), .max_age = (unsigned)sqlite3_column_int(s, 10),
                .profiles = sqlite3_column_int(s, 11), .layer_refuse_older = sqlite3_column_int(s, 12),
                .profile_size = (uint64_t)sqlite3_column_int64(s, 13),
                .usable_timeout = (unsigned)sqlite3_column_int(s, 14), .clone = sqlite3_column_int(s, 15),
        };
}

static void row_desktop(sqlite3_stmt *s, void *e)
{
        *(DbDesktop *)e = (DbDesktop){
                .id = dbi_col_text(s, 0), .pool = dbi_col_text(s, 1), .image = dbi_col_text(s, 2),
                .version = sqlite3_column_int(s, 3), .state = dbi_col_text(s, 4), .overlay_mode = dbi_col_text(s, 5),
                .overlay_path = dbi_col_text(s, 6), .run_dir = dbi_col_text(s, 7), .pid = (pid_t)sqlite3_column_int(s, 8),
                .created = sqlite3_column_int64(s, 9), .cloned = sqlite3_column_int(s, 10) != 0,
        };
}

static void row_session(sqlite3_stmt *s, void *e)
{
        *(DbSession *)e = (DbSession){
                .id = dbi_col_text(s, 0), .user = dbi_col_text(s, 1), .uid = (uint32_t)sqlite3_column_int64(s, 2),
                .pool = dbi_col_text(s, 3), .desktop = dbi_col_text(s, 4), .client = dbi_col_text(s, 5),
                .since = sqlite3_column_int64(s, 6), .width = (unsigned)sqlite3_column_int(s, 7),
                .height = (unsigned)sqlite3_column_int(s, 8), .state = dbi_col_text(s, 9), .end_reason = dbi_col_text(s, 10),
        };
}

static void row_session_step(sqlite3_stmt *s, void *e)
{
        *(DbSessionStep *)e = (DbSessionStep){
                .attempt = (unsigned)sqlite3_column_int(s, 0), .kind = dbi_col_text(s, 1), .step = dbi_col_text(s, 2),
                .ms = (uint32_t)sqlite3_column_int64(s, 3), .result = dbi_col_text(s, 4),
        };
}

static void row_audit(sqlite3_stmt *s, void *e)
{
        *(DbAudit *)e = (DbAudit){ .seq = sqlite3_column_int64(s, 0), .ts = sqlite3_column_int64(s, 1),
                                   .kind = dbi_col_text(s, 2), .subject = dbi_col_text(s, 3), .detail = dbi_col_text(s, 4) };
}

int db_open(const char *path, Db **ret)
{
        Db *db = xmalloc0(sizeof *db);
        db->path = xstrdup(path);
        if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                            NULL) != SQLITE_OK) {
                int r = dbi_error(db, "open");
                db_close(db);
                return r;
        }
        sqlite3_busy_timeout(db->h, 5000);
        int r = dbi_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
        if (r < 0) {
                db_close(db);
                return r;
        }
        sqlite3_stmt *s;
        if ((r = dbi_prepare(db, "PRAGMA user_version", &s)) < 0) {
                db_close(db);
                return r;
        }
        int version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
        sqlite3_finalize(s);
        if (version > (int)ELEMENTSOF(migrations)) {
                log_error("database %s: schema version %d is newer than this slated (%zu)", path, version,
                          ELEMENTSOF(migrations));
                db_close(db);
                return -EPROTO;
        }
        for (int v = version; v < (int)ELEMENTSOF(migrations); v++) {
                _cleanup_free_ char *sql = xasprintf("BEGIN; %s PRAGMA user_version=%d; COMMIT;", migrations[v], v + 1);
                if ((r = dbi_exec(db, sql)) < 0) {
                        dbi_exec(db, "ROLLBACK");
                        db_close(db);
                        return r;
                }
                log_info("database %s: migrated schema to version %d", path, v + 1);
        }
        *ret = db;
        return 0;
}

void db_close(Db *db)
{
        if (!db)
                return;
        sqlite3_close_v2(db->h);
        free(db->path);
        free(db);
}

/* ---- images ---- */

int db_image_version_add(Db *db, DbImageVersion *v, bool make_current)
{
        sqlite3_stmt *s;
        int r;
        if ((r = dbi_exec(db, "BEGIN IMMEDIATE")) < 0)
                return r;
        if ((r = dbi_prepare(db, "INSERT OR IGNORE INTO images(name, current) VALUES(?, 0)", &s)) < 0)
                goto fail;
        dbi_bind_text(s, 1, v->name);
        if ((r = dbi_step_done(db, s, "insert image")) < 0)
                goto fail;
        if ((r = dbi_prepare(db, "SELECT COALESCE(MAX(version), 0) + 1 FROM image_versions WHERE name = ?", &s)) < 0)
                goto fail;
        dbi_bind_text(s, 1, v->name);
        v->version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 1;
        sqlite3_finalize(s);
        if ((r = dbi_prepare(db,
                         "INSERT INTO image_versions(name, version, state, format, size, virtual_size, sha256, path,"
                         " kernel, initrd, cmdline, created) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                         &s)) < 0)
                goto fail;
        dbi_bind_text(s, 1, v->name);
        sqlite3_bind_int(s, 2, v->version);
        dbi_bind_text(s, 3, v->state ? v->state : "available");
        dbi_bind_text(s, 4, v->format);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)v->size);
        sqlite3_bind_int64(s, 6, (sqlite3_int64)v->virtual_size);
        dbi_bind_text(s, 7, v->sha256);
        dbi_bind_text(s, 8, v->path);
        dbi_bind_text(s, 9, v->kernel);
        dbi_bind_text(s, 10, v->initrd);
        dbi_bind_text(s, 11, v->cmdline);
        sqlite3_bind_int64(s, 12, v->created);
        if ((r = dbi_step_done(db, s, "insert image version")) < 0)
                goto fail;
        /* The first version of an image is current whether asked or not: a pool needs one. */
        if ((r = dbi_prepare(db, "UPDATE images SET current = ? WHERE name = ? AND (? OR current = 0)", &s)) < 0)
                goto fail;
        sqlite3_bind_int(s, 1, v->version);
        dbi_bind_text(s, 2, v->name);
        sqlite3_bind_int(s, 3, make_current);
        if ((r = dbi_step_done(db, s, "set current")) < 0)
                goto fail;
        return dbi_exec(db, "COMMIT");
fail:
        dbi_exec(db, "ROLLBACK");
        return r;
}

int db_image_versions(Db *db, const char *name, DbImageVersion **ret, size_t *ret_n)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db,
                        "SELECT v.name, v.version, v.version = i.current, v.state, v.format, v.size, v.virtual_size,"
                        " v.sha256, v.path, v.kernel, v.initrd, v.cmdline, v.created FROM image_versions v"
                        " JOIN images i ON i.name = v.name WHERE v.name = ? ORDER BY v.version",
                        &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, name);
        DbImageVersion *a = NULL;
        size_t n = 0;
        if ((r = dbi_collect_rows(db, s, sizeof *a, row_image_version, (void **)&a, &n)) < 0)
                return r;
        if (n == 0) {
                free(a);
                return -ENOENT;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

int db_image_names(Db *db, char ***ret, size_t *ret_n)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "SELECT name FROM images WHERE EXISTS"
                            " (SELECT 1 FROM image_versions v WHERE v.name = images.name) ORDER BY name", &s);
        return r < 0 ? r : dbi_collect_rows(db, s, sizeof(char *), dbi_row_text, (void **)ret, ret_n);
}

int db_image_set_current(Db *db, const char *name, int version)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "UPDATE images SET current = ? WHERE name = ?", &s);
        if (r < 0)
                return r;
        sqlite3_bind_int(s, 1, version);
        dbi_bind_text(s, 2, name);
        return dbi_step_done(db, s, "set current");
}

int db_image_version_set_state(Db *db, const char *name, int version, const char *state)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "UPDATE image_versions SET state = ? WHERE name = ? AND version = ?", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, state);
        dbi_bind_text(s, 2, name);
        sqlite3_bind_int(s, 3, version);
        return dbi_step_done(db, s, "set version state");
}

int db_image_version_delete(Db *db, const char *name, int version)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "DELETE FROM image_versions WHERE name = ? AND version = ?", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, name);
        sqlite3_bind_int(s, 2, version);
        return dbi_step_done(db, s, "delete version");
}

void db_image_version_free_array(DbImageVersion *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(v[i].name);
                free(v[i].state);
                free(v[i].format);
                free(v[i].sha256);
                free(v[i].path);
                free(v[i].kernel);
                free(v[i].initrd);
                free(v[i].cmdline);
        }
        free(v);
}

/* ---- pools ---- */

int db_pool_put(Db *db, const DbPool *p)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "INSERT OR REPLACE INTO pools(name, image, warm, max, memory, vcpus, overlay, created,"
                            " disconnect_timeout, idle_timeout, max_age, profiles, layer_refuse_older, profile_size,"
                            " usable_timeout, clone) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, p->name);
        dbi_bind_text(s, 2, p->image);
        sqlite3_bind_int(s, 3, (int)p->warm);
        sqlite3_bind_int(s, 4, (int)p->max);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)p->memory);
        sqlite3_bind_int(s, 6, (int)p->vcpus);
        dbi_bind_text(s, 7, p->overlay);
        sqlite3_bind_int64(s, 8, p->created);
        sqlite3_bind_int(s, 9, (int)p->disconnect_timeout);
        sqlite3_bind_int(s, 10, (int)p->idle_timeout);
        sqlite3_bind_int(s, 11, (int)p->max_age);
        sqlite3_bind_int(s, 12, p->profiles);
        sqlite3_bind_int(s, 13, p->layer_refuse_older);
        sqlite3_bind_int64(s, 14, (sqlite3_int64)p->profile_size);
        sqlite3_bind_int(s, 15, (int)p->usable_timeout);
        sqlite3_bind_int(s, 16, p->clone);
        return dbi_step_done(db, s, "put pool");
}

int db_pool_delete(Db *db, const char *name)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "DELETE FROM entitlements WHERE pool = ?", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, name);
        if ((r = dbi_step_done(db, s, "delete entitlements")) < 0)
                return r;
        if ((r = dbi_prepare(db, "DELETE FROM pools WHERE name = ?", &s)) < 0)
                return r;
        dbi_bind_text(s, 1, name);
        return dbi_step_done(db, s, "delete pool");
}

int db_entitlement_set(Db *db, const char *pool, const char *principal, bool on)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, on ? "INSERT OR IGNORE INTO entitlements(pool, principal) VALUES(?, ?)"
                               : "DELETE FROM entitlements WHERE pool = ? AND principal = ?", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, pool);
        dbi_bind_text(s, 2, principal);
        return dbi_step_done(db, s, "entitlement");
}

int db_entitlement_list(Db *db, const char *pool, char ***ret, size_t *ret_n)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "SELECT principal FROM entitlements WHERE pool = ? ORDER BY principal", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, pool);
        return dbi_collect_rows(db, s, sizeof(char *), dbi_row_text, (void **)ret, ret_n);
}

int db_image_current(Db *db, const char *name, DbImageVersion **ret_v, DbImageVersion **ret_all, size_t *ret_n)
{
        DbImageVersion *all;
        size_t n;
        int r = db_image_versions(db, name, &all, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (all[i].current && strcmp(all[i].state, "available") == 0) {
                        *ret_v = &all[i];
                        *ret_all = all;
                        *ret_n = n;
                        return 0;
                }
        db_image_version_free_array(all, n);
        return -ENOENT;
}

int db_image_current_version(Db *db, const char *name)
{
        DbImageVersion *cur, *all;
        size_t n;
        if (db_image_current(db, name, &cur, &all, &n) < 0)
                return 0;
        int v = cur->version;
        db_image_version_free_array(all, n);
        return v;
}

int db_session_put(Db *db, const DbSession *x)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "INSERT OR REPLACE INTO sessions(id, user, uid, pool, desktop, client, since, width, height,"
                            " state, end_reason) VALUES(?,?,?,?,?,?,?,?,?,?,?)", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, x->id);
        dbi_bind_text(s, 2, x->user);
        sqlite3_bind_int64(s, 3, x->uid);
        dbi_bind_text(s, 4, x->pool);
        dbi_bind_text(s, 5, x->desktop);
        dbi_bind_text(s, 6, x->client);
        sqlite3_bind_int64(s, 7, x->since);
        sqlite3_bind_int(s, 8, x->width);
        sqlite3_bind_int(s, 9, x->height);
        dbi_bind_text(s, 10, x->state ? x->state : "active");
        dbi_bind_text(s, 11, x->end_reason);
        return dbi_step_done(db, s, "put session");
}

int db_session_delete(Db *db, const char *id)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "DELETE FROM session_steps WHERE session = ?", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, id);
        if ((r = dbi_step_done(db, s, "delete session steps")) < 0)
                return r;
        if ((r = dbi_prepare(db, "DELETE FROM sessions WHERE id = ?", &s)) < 0)
                return r;
        dbi_bind_text(s, 1, id);
        return dbi_step_done(db, s, "delete session");
}

int db_session_steps_put(Db *db, const char *session, unsigned attempt, const char *kind, const DbSessionStep *steps,
                         size_t n)
{
        int r = dbi_exec(db, "BEGIN");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r == 0; i++) {
                sqlite3_stmt *s;
                r = dbi_prepare(db, "INSERT OR REPLACE INTO session_steps(session, attempt, kind, seq, step, ms, result)"
                                " VALUES(?,?,?,?,?,?,?)", &s);
                if (r < 0)
                        break;
                dbi_bind_text(s, 1, session);
                sqlite3_bind_int(s, 2, (int)attempt);
                dbi_bind_text(s, 3, kind);
                sqlite3_bind_int(s, 4, (int)i);
                dbi_bind_text(s, 5, steps[i].step);
                sqlite3_bind_int64(s, 6, steps[i].ms);
                dbi_bind_text(s, 7, steps[i].result);
                r = dbi_step_done(db, s, "put session step");
        }
        if (r < 0) {
                dbi_exec(db, "ROLLBACK");
                return r;
        }
        return dbi_exec(db, "COMMIT");
}

int db_session_steps_list(Db *db, const char *session, DbSessionStep **ret, size_t *ret_n)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "SELECT attempt, kind, step, ms, result FROM session_steps WHERE session = ?"
                            " ORDER BY attempt, seq", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, session);
        return dbi_collect_rows(db, s, sizeof(DbSessionStep), row_session_step, (void **)ret, ret_n);
}

void db_session_steps_free_array(DbSessionStep *a, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(a[i].kind);
                free(a[i].step);
                free(a[i].result);
        }
        free(a);
}

int db_session_list(Db *db, DbSession **ret, size_t *ret_n)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "SELECT id, user, uid, pool, desktop, client, since, width, height, state, end_reason"
                            " FROM sessions", &s);
        return r < 0 ? r : dbi_collect_rows(db, s, sizeof(DbSession), row_session, (void **)ret, ret_n);
}

void db_session_free_array(DbSession *a, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(a[i].id);
                free(a[i].user);
                free(a[i].pool);
                free(a[i].desktop);
                free(a[i].client);
                free(a[i].state);
                free(a[i].end_reason);
        }
        free(a);
}

int db_audit_list(Db *db, const char *kind_prefix, unsigned limit, DbAudit **ret, size_t *ret_n)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "SELECT seq, ts, kind, subject, detail FROM audit WHERE substr(kind, 1, length(?1)) = ?1"
                            " ORDER BY seq DESC LIMIT ?2", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, kind_prefix ? kind_prefix : "");
        sqlite3_bind_int(s, 2, (int)limit);
        return dbi_collect_rows(db, s, sizeof(DbAudit), row_audit, (void **)ret, ret_n);
}

void db_audit_free_array(DbAudit *a, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(a[i].kind);
                free(a[i].subject);
                free(a[i].detail);
        }
        free(a);
}

int db_pool_list(Db *db, DbPool **ret, size_t *ret_n)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "SELECT name, image, warm, max, memory, vcpus, overlay, created, disconnect_timeout,"
                            " idle_timeout, max_age, profiles, layer_refuse_older, profile_size, usable_timeout, clone FROM pools"
                            " ORDER BY name", &s);
        return r < 0 ? r : dbi_collect_rows(db, s, sizeof(DbPool), row_pool, (void **)ret, ret_n);
}

void db_pool_free_array(DbPool *p, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(p[i].name);
                free(p[i].image);
                free(p[i].overlay);
        }
        free(p);
}

/* ---- desktops ---- */

int db_desktop_put(Db *db, const DbDesktop *d)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "INSERT OR REPLACE INTO desktops(id, pool, image, version, state, overlay_mode,"
                            " overlay_path, run_dir, pid, created, cloned) VALUES(?,?,?,?,?,?,?,?,?,?,?)", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, d->id);
        dbi_bind_text(s, 2, d->pool);
        dbi_bind_text(s, 3, d->image);
        sqlite3_bind_int(s, 4, d->version);
        dbi_bind_text(s, 5, d->state);
        dbi_bind_text(s, 6, d->overlay_mode);
        dbi_bind_text(s, 7, d->overlay_path);
        dbi_bind_text(s, 8, d->run_dir);
        sqlite3_bind_int(s, 9, (int)d->pid);
        sqlite3_bind_int64(s, 10, d->created);
        sqlite3_bind_int(s, 11, d->cloned);
        return dbi_step_done(db, s, "put desktop");
}

int db_desktop_delete(Db *db, const char *id)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "DELETE FROM desktops WHERE id = ?", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, id);
        return dbi_step_done(db, s, "delete desktop");
}

int db_desktop_list(Db *db, DbDesktop **ret, size_t *ret_n)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "SELECT id, pool, image, version, state, overlay_mode, overlay_path, run_dir, pid, created,"
                            " cloned FROM desktops ORDER BY created, id", &s);
        return r < 0 ? r : dbi_collect_rows(db, s, sizeof(DbDesktop), row_desktop, (void **)ret, ret_n);
}

void db_desktop_free_array(DbDesktop *d, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(d[i].id);
                free(d[i].pool);
                free(d[i].image);
                free(d[i].state);
                free(d[i].overlay_mode);
                free(d[i].overlay_path);
                free(d[i].run_dir);
        }
        free(d);
}

int db_audit(Db *db, const char *kind, const char *subject, const char *detail)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "INSERT INTO audit(ts, kind, subject, detail) VALUES(?,?,?,?)", &s);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, (sqlite3_int64)now_realtime_s());
        dbi_bind_text(s, 2, kind);
        dbi_bind_text(s, 3, subject);
        dbi_bind_text(s, 4, detail ? detail : "");
        return dbi_step_done(db, s, "audit");
}

/* ---- app layers and profiles (migration 5) ---- */

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

void db_app_version_free(DbAppVersion *v)
{
        free(v->name);
        free(v->state);
        free(v->path);
        free(v->sha256);
        free(v->image);
        free(v->source);
        free(v->fingerprint);
        *v = (DbAppVersion){ 0 };
}

void db_app_version_free_array(DbAppVersion *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                db_app_version_free(&v[i]);
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

#define PROFILE_COLUMNS \
        "user, generation, path, size, wrapped_key, created, last_attach, attached_to, clean, current, backup_version"

static void row_profile(sqlite3_stmt *s, void *e)
{
        *(DbProfile *)e = (DbProfile){
                .user = dbi_col_text(s, 0), .generation = sqlite3_column_int(s, 1), .path = dbi_col_text(s, 2),
                .size = (uint64_t)sqlite3_column_int64(s, 3), .wrapped_key = dbi_col_text(s, 4),
                .created = sqlite3_column_int64(s, 5), .last_attach = sqlite3_column_int64(s, 6),
                .attached_to = dbi_col_text(s, 7), .clean = sqlite3_column_int(s, 8), .current = sqlite3_column_int(s, 9),
                .backup_version = sqlite3_column_int(s, 10),
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

int db_profile_set_backup(Db *db, const char *user, int generation, int version)
{
        sqlite3_stmt *s;
        int r = dbi_prepare(db, "UPDATE profiles SET backup_version = ?3 WHERE user = ?1 AND generation = ?2", &s);
        if (r < 0)
                return r;
        dbi_bind_text(s, 1, user);
        sqlite3_bind_int(s, 2, generation);
        sqlite3_bind_int(s, 3, version);
        return dbi_step_done(db, s, "profile backup");
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
