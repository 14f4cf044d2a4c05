/* common/idrange: the per-connection uid range refuses root, nobody and (uid_t)-1, hands out
 * each id once, gives a released id back only after the rest of the range has been used, and
 * skips ids a process (say a previous slated's session) still runs as. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/idrange.h"

Test(idrange, refuses_root_nobody_and_the_no_uid_value)
{
        char why[200];
        cr_assert_eq(idrange_validate(0, 10, why, sizeof why), -EINVAL);
        cr_assert_eq(idrange_validate(65530, 10, why, sizeof why), -EINVAL);
        cr_assert_eq(idrange_validate(0xfffffff0u, 16, why, sizeof why), -EINVAL);
        cr_assert_eq(idrange_validate(0x70000000u, 0, why, sizeof why), -EINVAL);
        cr_assert_eq(idrange_validate(0x70000000u, 65536, why, sizeof why), 0);
}

Test(idrange, refuses_a_range_an_existing_user_is_in)
{
        char why[200];
        /* root's group and user are 0; uid 1 (daemon on Debian) is in [1, 11). */
        cr_assert_eq(idrange_check_unused(0, 1, why, sizeof why), -EEXIST);
        cr_assert(strstr(why, "uid 0") || strstr(why, "gid 0"), "%s", why);
        cr_assert_eq(idrange_check_unused(0x70000000u, 65536, why, sizeof why), 0, "%s", why);
}

Test(idrange, each_id_once_and_a_released_one_last)
{
        IdRange r;
        idrange_init(&r, 0x7ff00000u, 3);
        uint32_t a, b, c, d;
        cr_assert_eq(idrange_take(&r, &a), 0);
        cr_assert_eq(idrange_take(&r, &b), 0);
        cr_assert_eq(idrange_take(&r, &c), 0);
        cr_assert(a != b && b != c && a != c);
        cr_assert_eq(idrange_take(&r, &d), -EAGAIN, "a fourth id out of three");
        idrange_release(&r, b);
        cr_assert_eq(idrange_take(&r, &d), 0);
        cr_assert_eq(d, b);
        idrange_release(&r, a);
        idrange_release(&r, c);
        cr_assert_eq(idrange_take(&r, &d), 0);
        idrange_free(&r);
}

Test(idrange, skips_ids_processes_still_run_as)
{
        /* A fake /proc: pid 42 runs as base + 0. */
        char dir[] = "/tmp/idrange-proc-XXXXXX", path[128];
        cr_assert(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/42", dir);
        cr_assert_eq(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/42/status", dir);
        FILE *f = fopen(path, "w");
        fprintf(f, "Name:\tslate-session\nUid:\t%u\t%u\t%u\t%u\n", 0x7ff00000u, 0x7ff00000u, 0x7ff00000u, 0x7ff00000u);
        fclose(f);
        IdRange r;
        idrange_init(&r, 0x7ff00000u, 4);
        cr_assert_eq(idrange_scan_proc(&r, dir), 1);
        uint32_t id;
        cr_assert_eq(idrange_take(&r, &id), 0);
        cr_assert_neq(id, 0x7ff00000u, "handed out an id a process runs as");
        idrange_free(&r);
        unlink(path);
        snprintf(path, sizeof path, "%s/42", dir);
        rmdir(path);
        rmdir(dir);
}
