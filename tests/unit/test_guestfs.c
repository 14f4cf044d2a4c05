/* imaging/ libguestfs glue, the parts that need no appliance: the SUPERMIN_* environment from
 * slate.conf, sizing a directory for publishing, and reading a version's publish.json. The
 * appliance itself is exercised by tests/integration/pipeline.sh. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/util.h"
#include "imaging/appliance.h"
#include "imaging/pack.h"
#include "imaging/publish.h"

static char *tmpdir(void)
{
        char tmpl[] = "/tmp/test_guestfs.XXXXXX";
        cr_assert_not_null(mkdtemp(tmpl));
        return xstrdup(tmpl);
}

static void write_text(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
}

Test(guestfs, appliance_env_sets_supermin_kernel_and_version_from_modules_dir)
{
        unsetenv("SUPERMIN_KERNEL");
        unsetenv("SUPERMIN_MODULES");
        unsetenv("SUPERMIN_KERNEL_VERSION");
        ApplianceConfig c = { .kernel = "/k/boot/vmlinuz-6.1.0-56-amd64", .modules = "/k/lib/modules/6.1.0-56-amd64" };
        char *err = NULL;
        cr_assert_eq(appliance_env_apply(&c, &err), 0);
        cr_assert_str_eq(getenv("SUPERMIN_KERNEL"), c.kernel);
        cr_assert_str_eq(getenv("SUPERMIN_MODULES"), c.modules);
        cr_assert_str_eq(getenv("SUPERMIN_KERNEL_VERSION"), "6.1.0-56-amd64");
}

Test(guestfs, appliance_env_left_alone_when_not_configured)
{
        setenv("SUPERMIN_KERNEL", "/from/the/environment", 1);
        ApplianceConfig c = { 0 };
        char *err = NULL;
        cr_assert_eq(appliance_env_apply(&c, &err), 0);
        cr_assert_str_eq(getenv("SUPERMIN_KERNEL"), "/from/the/environment");
}

Test(guestfs, pack_size_covers_tree_plus_quarter_plus_64mib)
{
        _cleanup_free_ char *d = tmpdir(), *f = xasprintf("%s/big", d), *sub = xasprintf("%s/sub", d);
        int fd = open(f, O_WRONLY | O_CREAT, 0644);
        cr_assert_geq(fd, 0);
        cr_assert_eq(ftruncate(fd, 10 << 20), 0);
        close(fd);
        cr_assert_eq(mkdir(sub, 0755), 0);
        uint64_t size, entries;
        char *err = NULL;
        cr_assert_eq(pack_measure(d, &size, &entries, &err), 0, "%s", err ? err : "");
        cr_assert_eq(entries, 3);       /* the dir itself, big, sub */
        cr_assert_geq(size, (10ull << 20) * 5 / 4 + (64ull << 20));
        cr_assert_eq(size % (1 << 20), 0);
        rm_rf(d);
}

Test(guestfs, pack_refuses_a_missing_directory_with_a_message)
{
        uint64_t size, entries;
        char *err = NULL;
        cr_assert_lt(pack_measure("/nonexistent/tree", &size, &entries, &err), 0);
        cr_assert_not_null(err);
        cr_assert(strstr(err, "/nonexistent/tree"));
}

Test(guestfs, publish_info_missing_is_enoent_and_garbage_is_refused)
{
        _cleanup_free_ char *d = tmpdir(), *p = xasprintf("%s/" PUBLISH_INFO_FILE, d);
        json_object *o = NULL;
        cr_assert_eq(publish_info_load(d, &o), -ENOENT);
        write_text(p, "[1, 2");
        cr_assert_eq(publish_info_load(d, &o), -EBADMSG);
        unlink(p);
        write_text(p, "{\"os\": \"linux\", \"seal\": {\"count\": 3}}");
        cr_assert_eq(publish_info_load(d, &o), 0);
        cr_assert_str_eq(json_object_get_string(json_object_object_get(o, "os")), "linux");
        json_object_put(o);
        rm_rf(d);
}
