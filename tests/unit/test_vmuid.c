/* Per-desktop uids: no two desktops ever hold one uid, a freed uid comes back only after the rest
 * of the range, adopted desktops keep theirs, and a disk lent to a desktop goes back only from it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/vmuid.h"

Test(vmuid, hands_out_every_uid_once_then_refuses)
{
        VmUids u;
        vmuid_init(&u, 1000000, 3);
        uid_t a, b, c, d;
        cr_assert_eq(vmuid_take(&u, &a), 0);
        cr_assert_eq(vmuid_take(&u, &b), 0);
        cr_assert_eq(vmuid_take(&u, &c), 0);
        cr_assert_eq(a, 1000000);
        cr_assert_eq(b, 1000001);
        cr_assert_eq(c, 1000002);
        cr_assert_eq(vmuid_take(&u, &d), -EAGAIN);
        vmuid_release(&u, b);
        cr_assert_eq(vmuid_take(&u, &d), 0);
        cr_assert_eq(d, b, "the one freed uid is the one left");
        vmuid_done(&u);
}

Test(vmuid, freed_uid_waits_for_the_rest_of_the_range)
{
        VmUids u;
        vmuid_init(&u, 5000, 4);
        uid_t a, b, c;
        vmuid_take(&u, &a);
        vmuid_take(&u, &b);
        vmuid_release(&u, a);
        cr_assert_eq(vmuid_take(&u, &c), 0);
        cr_assert_eq(c, 5002, "not the uid just freed (%u)", (unsigned)a);
        vmuid_done(&u);
}

Test(vmuid, adopted_uids_are_held_and_new_ones_start_past_them)
{
        VmUids u;
        vmuid_init(&u, 7000, 4);
        cr_assert_eq(vmuid_claim(&u, 7000), 0);
        cr_assert_eq(vmuid_claim(&u, 7002), 0);
        cr_assert_eq(vmuid_claim(&u, 7002), -EEXIST);
        cr_assert_eq(vmuid_claim(&u, 999), -ERANGE, "vm-user's uid is not in the range");
        cr_assert_eq(vmuid_claim(&u, 7004), -ERANGE);
        uid_t a, b;
        cr_assert_eq(vmuid_take(&u, &a), 0);
        cr_assert_eq(vmuid_take(&u, &b), 0);
        cr_assert_eq(a, 7003);
        cr_assert_eq(b, 7001);
        cr_assert_eq(vmuid_take(&u, &a), -EAGAIN);
        vmuid_done(&u);
}

Test(vmuid, an_empty_range_gives_nothing)
{
        VmUids u;
        uid_t a;
        vmuid_init(&u, 7000, 0);
        cr_assert_eq(vmuid_take(&u, &a), -EAGAIN);
        cr_assert_not(vmuid_contains(&u, 7000));
        vmuid_release(&u, 7000);
        vmuid_done(&u);
}

Test(vmuid, a_range_with_root_or_a_known_user_is_refused)
{
        cr_assert_eq(vmuid_check_unused(0, 10), -EEXIST);
        /* uid 1 (daemon) or gid 1 is in every passwd/group file this runs on; else nothing to say. */
        if (getpwuid(1) || getgrgid(1))
                cr_assert_eq(vmuid_check_unused(1, 1), -EEXIST);
        cr_assert_eq(vmuid_check_unused(0x7ffe0000u, 65536), 0, "a range nobody has");
}

Test(vmuid, a_disk_goes_back_only_from_the_uid_it_was_lent_to)
{
        if (geteuid() != 0)
                cr_skip_test("needs root to change a file's owner");
        char path[] = "/tmp/vmuid-disk.XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        close(fd);
        struct stat st;
        cr_assert_eq(vmuid_disk_lend(path, 70001, 70001), 0);
        stat(path, &st);
        cr_assert_eq(st.st_uid, 70001);
        cr_assert_eq(st.st_mode & 0777, 0600);
        /* Lent on to another desktop since: the first one's destroy leaves it alone. */
        cr_assert_eq(vmuid_disk_lend(path, 70002, 70002), 0);
        cr_assert_eq(vmuid_disk_return(path, 70001, 999, 999), 0);
        stat(path, &st);
        cr_assert_eq(st.st_uid, 70002);
        cr_assert_eq(vmuid_disk_return(path, 70002, 999, 998), 0);
        stat(path, &st);
        cr_assert_eq(st.st_uid, 999);
        cr_assert_eq(st.st_gid, 998);
        /* Never through a symlink. */
        char link[] = "/tmp/vmuid-link.XXXXXX";
        cr_assert_geq(mkstemp(link), 0);
        unlink(link);
        cr_assert_eq(symlink(path, link), 0);
        cr_assert_lt(vmuid_disk_lend(link, 70003, 70003), 0);
        stat(path, &st);
        cr_assert_eq(st.st_uid, 999);
        unlink(link);
        unlink(path);
}
