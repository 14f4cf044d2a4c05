/* common/idrange: the uid ranges of sessions and of desktops' QEMUs refuse root, nobody and
 * (uid_t)-1, hand out each id once, give a released id back only after the rest of the range has
 * been used, skip ids a process (say a previous slated's session or QEMU) still runs as, and let
 * a desktop adopted at start claim its uid back, also while its QEMU runs as it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
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
        /* uid 1 (daemon) or gid 1 is in every passwd/group file this runs on; else nothing to say. */
        if (getpwuid(1) || getgrgid(1))
                cr_assert_eq(idrange_check_unused(1, 1, why, sizeof why), -EEXIST);
}

Test(idrange, each_id_once_and_a_released_one_last)
{
        IdRange r;
        idrange_init(&r, 0x7ff00000u, 3);
        uint32_t a, b, c, d;
        cr_assert_eq(idrange_take(&r, &a), 0);
        cr_assert_eq(idrange_take(&r, &b), 0);
        cr_assert_eq(idrange_take(&r, &c), 0);
        cr_assert_eq(a, 0x7ff00000u);
        cr_assert_eq(b, 0x7ff00001u);
        cr_assert_eq(c, 0x7ff00002u);
        cr_assert_eq(idrange_take(&r, &d), -EAGAIN, "a fourth id out of three");
        idrange_release(&r, b);
        cr_assert_eq(idrange_take(&r, &d), 0);
        cr_assert_eq(d, b, "the one freed id is the one left");
        idrange_release(&r, a);
        idrange_release(&r, c);
        cr_assert_eq(idrange_take(&r, &d), 0);
        idrange_free(&r);
}

/* A fake /proc in dir: pid 42 runs as uid. */
static void fake_proc(char *dir, uint32_t uid)
{
        char path[128];
        cr_assert(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/42", dir);
        cr_assert_eq(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/42/status", dir);
        FILE *f = fopen(path, "w");
        fprintf(f, "Name:\tqemu-system-x86\nUid:\t%u\t%u\t%u\t%u\n", uid, uid, uid, uid);
        fclose(f);
}

static void fake_proc_remove(const char *dir)
{
        char path[128];
        snprintf(path, sizeof path, "%s/42/status", dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/42", dir);
        rmdir(path);
        rmdir(dir);
}

Test(idrange, a_released_id_waits_for_the_rest_of_the_range)
{
        IdRange r;
        idrange_init(&r, 0x7ff00000u, 4);
        uint32_t a, b, c;
        cr_assert_eq(idrange_take(&r, &a), 0);
        cr_assert_eq(idrange_take(&r, &b), 0);
        idrange_release(&r, a);
        cr_assert_eq(idrange_take(&r, &c), 0);
        cr_assert_eq(c, 0x7ff00002u, "not the id just released (%u)", a);
        idrange_free(&r);
}

Test(idrange, skips_ids_processes_still_run_as)
{
        /* pid 42 (a previous slated's session) runs as base + 0. */
        char dir[] = "/tmp/idrange-proc-XXXXXX";
        fake_proc(dir, 0x7ff00000u);
        IdRange r;
        idrange_init(&r, 0x7ff00000u, 4);
        cr_assert_eq(idrange_scan_proc(&r, dir), 1);
        uint32_t id;
        cr_assert_eq(idrange_take(&r, &id), 0);
        cr_assert_neq(id, 0x7ff00000u, "handed out an id a process runs as");
        idrange_free(&r);
        fake_proc_remove(dir);
}

Test(idrange, adopted_ids_are_held_and_new_ones_start_past_them)
{
        IdRange r;
        idrange_init(&r, 0x7ff00000u, 4);
        cr_assert_eq(idrange_claim(&r, 0x7ff00000u), 0);
        cr_assert_eq(idrange_claim(&r, 0x7ff00002u), 0);
        cr_assert_eq(idrange_claim(&r, 0x7ff00002u), -EEXIST);
        cr_assert_eq(idrange_claim(&r, 999), -ERANGE, "vm-user's uid is not in the range");
        cr_assert_eq(idrange_claim(&r, 0x7ff00004u), -ERANGE);
        cr_assert(idrange_contains(&r, 0x7ff00003u));
        cr_assert_not(idrange_contains(&r, 0x7ff00004u));
        uint32_t a, b;
        cr_assert_eq(idrange_take(&r, &a), 0);
        cr_assert_eq(idrange_take(&r, &b), 0);
        cr_assert_eq(a, 0x7ff00003u);
        cr_assert_eq(b, 0x7ff00001u);
        cr_assert_eq(idrange_take(&r, &a), -EAGAIN);
        idrange_free(&r);
}

Test(idrange, an_adopted_desktop_claims_the_id_its_running_qemu_has)
{
        /* pid 42, the adopted desktop's QEMU, runs as base + 1: foreign to the scan, the claim's. */
        char dir[] = "/tmp/idrange-proc-XXXXXX";
        fake_proc(dir, 0x7ff00001u);
        IdRange r;
        idrange_init(&r, 0x7ff00000u, 2);
        cr_assert_eq(idrange_scan_proc(&r, dir), 1);
        cr_assert_eq(idrange_claim(&r, 0x7ff00001u), 0, "an adopted desktop lost its uid to its own QEMU");
        uint32_t id;
        cr_assert_eq(idrange_take(&r, &id), 0);
        cr_assert_eq(id, 0x7ff00000u);
        cr_assert_eq(idrange_take(&r, &id), -EAGAIN);
        /* Destroyed (its QEMU gone): the id is free again. */
        idrange_release(&r, 0x7ff00001u);
        cr_assert_eq(idrange_take(&r, &id), 0);
        cr_assert_eq(id, 0x7ff00001u);
        idrange_free(&r);
        fake_proc_remove(dir);
}

Test(idrange, an_empty_range_gives_nothing)
{
        /* vm-uid-count = 0, or not root: the range slated never initialised. */
        IdRange zero = { 0 }, empty;
        idrange_init(&empty, 0x7ff00000u, 0);
        IdRange *rs[] = { &zero, &empty };
        for (int i = 0; i < 2; i++) {
                uint32_t id;
                cr_assert_eq(idrange_take(rs[i], &id), -EAGAIN);
                cr_assert_not(idrange_contains(rs[i], 0x7ff00000u));
                cr_assert_not(idrange_contains(rs[i], 0));
                cr_assert_eq(idrange_claim(rs[i], 0x7ff00000u), -ERANGE);
                cr_assert_eq(idrange_scan_proc(rs[i], "/proc"), 0);
                idrange_release(rs[i], 0x7ff00000u);
                idrange_free(rs[i]);
        }
}
