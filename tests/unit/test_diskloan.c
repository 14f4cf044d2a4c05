/* Disk loans: a disk lent to a desktop's uid goes back only from that uid, and never through a
 * symlink. (The per-desktop uids themselves are common/idrange's: test_idrange.) */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/diskloan.h"

Test(diskloan, a_disk_goes_back_only_from_the_uid_it_was_lent_to)
{
        if (geteuid() != 0)
                cr_skip_test("needs root to change a file's owner");
        char path[] = "/tmp/diskloan-disk.XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        close(fd);
        struct stat st;
        cr_assert_eq(diskloan_lend(path, 70001, 70001), 0);
        stat(path, &st);
        cr_assert_eq(st.st_uid, 70001);
        cr_assert_eq(st.st_mode & 0777, 0600);
        /* Lent on to another desktop since: the first one's destroy leaves it alone. */
        cr_assert_eq(diskloan_lend(path, 70002, 70002), 0);
        cr_assert_eq(diskloan_return(path, 70001, 999, 999), 0);
        stat(path, &st);
        cr_assert_eq(st.st_uid, 70002);
        cr_assert_eq(diskloan_return(path, 70002, 999, 998), 0);
        stat(path, &st);
        cr_assert_eq(st.st_uid, 999);
        cr_assert_eq(st.st_gid, 998);
        /* Never through a symlink. */
        char link[] = "/tmp/diskloan-link.XXXXXX";
        cr_assert_geq(mkstemp(link), 0);
        unlink(link);
        cr_assert_eq(symlink(path, link), 0);
        cr_assert_lt(diskloan_lend(link, 70003, 70003), 0);
        stat(path, &st);
        cr_assert_eq(st.st_uid, 999);
        unlink(link);
        unlink(path);
}
