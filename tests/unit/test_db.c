/* The SQLite catalogue: versions are numbered per image, the first is current, a version add
 * is atomic, and the schema survives reopening. Real SQLite files in a temp dir. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "broker/db.h"
#include "common/util.h"

static char dir[] = "/tmp/slate-db-XXXXXX";
static char *path;

static void setup(void)
{
        cr_assert_not_null(mkdtemp(dir));
        path = xasprintf("%s/slate.db", dir);
}

static void teardown(void)
{
        rm_rf(dir);
        free(path);
}

static DbImageVersion version(const char *name)
{
        return (DbImageVersion){ .name = (char *)name, .format = "qcow2", .size = 10, .virtual_size = 20,
                                 .sha256 = "ab", .path = "/x", .created = 1 };
}

TestSuite(db, .init = setup, .fini = teardown);

Test(db, versions_are_numbered_and_first_is_current)
{
        Db *db;
        cr_assert_eq(db_open(path, &db), 0);
        DbImageVersion v = version("deb");
        cr_assert_eq(db_image_version_add(db, &v, false), 0);
        cr_assert_eq(v.version, 1);
        cr_assert_eq(db_image_version_add(db, &v, false), 0);
        cr_assert_eq(v.version, 2);
        DbImageVersion *a;
        size_t n;
        cr_assert_eq(db_image_versions(db, "deb", &a, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert(a[0].current);
        cr_assert_not(a[1].current);
        db_image_version_free_array(a, n);
        cr_assert_eq(db_image_version_add(db, &v, true), 0);
        cr_assert_eq(db_image_versions(db, "deb", &a, &n), 0);
        cr_assert(a[2].current && !a[0].current);
        db_image_version_free_array(a, n);
        cr_assert_eq(db_image_versions(db, "nope", &a, &n), -ENOENT);
        db_close(db);
}

Test(db, state_survives_reopen)
{
        Db *db;
        cr_assert_eq(db_open(path, &db), 0);
        DbPool p = { .name = "p", .image = "deb", .warm = 2, .max = 4, .memory = 1 << 29, .vcpus = 1,
                     .overlay = "encrypted", .created = 5 };
        cr_assert_eq(db_pool_put(db, &p), 0);
        DbDesktop d = { .id = "d-1", .pool = "p", .image = "deb", .version = 1, .state = "ready",
                        .overlay_mode = "encrypted", .overlay_path = "/o", .run_dir = "/r", .pid = 42, .created = 7 };
        cr_assert_eq(db_desktop_put(db, &d), 0);
        cr_assert_eq(db_audit(db, "desktop.create", "d-1", "p"), 0);
        db_close(db);

        cr_assert_eq(db_open(path, &db), 0);
        DbPool *pools;
        DbDesktop *ds;
        size_t n;
        cr_assert_eq(db_pool_list(db, &pools, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_eq(pools[0].warm, 2);
        cr_assert_str_eq(pools[0].overlay, "encrypted");
        db_pool_free_array(pools, n);
        cr_assert_eq(db_desktop_list(db, &ds, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_eq(ds[0].pid, 42);
        db_desktop_free_array(ds, n);
        cr_assert_eq(db_desktop_delete(db, "d-1"), 0);
        cr_assert_eq(db_desktop_list(db, &ds, &n), 0);
        cr_assert_eq(n, 0);
        db_desktop_free_array(ds, n);
        db_close(db);
}

Test(db, refuses_a_database_from_the_future)
{
        Db *db;
        cr_assert_eq(db_open(path, &db), 0);
        db_close(db);
        char *cmd = xasprintf("sqlite3 %s 'PRAGMA user_version=99'", path);
        if (system(cmd) != 0)
                cr_skip_test("sqlite3 CLI not installed");
        free(cmd);
        cr_assert_eq(db_open(path, &db), -EPROTO);
}

Test(db, a_logoff_in_progress_survives_a_crash_with_its_reason)
{
        Db *db;
        cr_assert_eq(db_open(path, &db), 0);
        DbSession s = { .id = "s-1", .user = "alice", .uid = 1000, .pool = "p", .desktop = "d-1", .client = "::1",
                        .since = 3, .width = 1024, .height = 768, .state = "ending", .end_reason = "idle timeout" };
        cr_assert_eq(db_session_put(db, &s), 0);
        DbSession t = { .id = "s-2", .user = "bob", .uid = 1001, .pool = "p", .desktop = "d-2", .client = "::1",
                        .since = 4, .width = 800, .height = 600, .state = "starting" };
        cr_assert_eq(db_session_put(db, &t), 0);
        db_close(db);

        cr_assert_eq(db_open(path, &db), 0);
        DbSession *a;
        size_t n;
        cr_assert_eq(db_session_list(db, &a, &n), 0);
        cr_assert_eq(n, 2);
        DbSession *alice = strcmp(a[0].id, "s-1") == 0 ? &a[0] : &a[1], *bob = alice == &a[0] ? &a[1] : &a[0];
        cr_assert_str_eq(alice->state, "ending");
        cr_assert_str_eq(alice->end_reason, "idle timeout");
        cr_assert_str_eq(bob->state, "starting");
        cr_assert_null(bob->end_reason);
        db_session_free_array(a, n);
        db_close(db);
}
