/* The plain-swap check (broker/hostcheck.c) against a made-up sysfs: a swap file on a disk, on
 * dm-crypt, on LVM over dm-crypt and on LVM over a plain disk, and zram. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "broker/hostcheck.h"
#include "common/util.h"

static char root[] = "/tmp/hostcheck.XXXXXX";

static void put(const char *rel, const char *text)
{
        char *p = xasprintf("%s/%s", root, rel), *dir = xstrdup(p);
        *strrchr(dir, '/') = 0;
        mkdir_p(dir, 0755);
        cr_assert_eq(write_file_atomic(p, text, strlen(text), 0644), 0);
        free(p);
        free(dir);
}

/* The sysfs entry of the device holding the swap file: what the check looks up. */
static char *devdir(const char *swapfile)
{
        struct stat st;
        cr_assert_eq(stat(swapfile, &st), 0);
        return xasprintf("dev/block/%u:%u", major(st.st_dev), minor(st.st_dev));
}

Test(hostcheck, swap_in_clear_is_named_and_encrypted_swap_is_not)
{
        cr_assert_not_null(mkdtemp(root));
        char *swapfile = xasprintf("%s/swapfile", root), *swaps, *plain;
        put("swapfile", "");
        char *dd = devdir(swapfile);
        swaps = xasprintf("Filename\tType\tSize\tUsed\tPriority\n%s file 1024 0 -2\n/dev/zram0 partition 1024 0 100\n",
                          swapfile);

        /* No device-mapper entry: a disk in clear. zram is fine. */
        cr_assert_eq(hostcheck_plain_swap(swaps, root, &plain), 0);
        cr_assert_str_eq(plain, swapfile);
        free(plain);

        /* dm-crypt directly. */
        char *f = xasprintf("%s/dm/uuid", dd);
        put(f, "CRYPT-PLAIN-cryptswap\n");
        cr_assert_eq(hostcheck_plain_swap(swaps, root, &plain), 0);
        cr_assert_null(plain);

        /* LVM over dm-crypt, then LVM over a plain disk. */
        put(f, "LVM-abc\n");
        char *s = xasprintf("%s/slaves/dm-0", dd);
        put(s, "");
        put("class/block/dm-0/dm/uuid", "CRYPT-LUKS2-xyz\n");
        cr_assert_eq(hostcheck_plain_swap(swaps, root, &plain), 0);
        cr_assert_null(plain, "LVM over dm-crypt was called plain: %s", plain);
        put("class/block/dm-0/dm/uuid", "LVM-plain\n");
        cr_assert_eq(hostcheck_plain_swap(swaps, root, &plain), 0);
        cr_assert_str_eq(plain, swapfile);
        free(plain);

        /* Only the header: no swap at all. */
        cr_assert_eq(hostcheck_plain_swap("Filename\tType\tSize\tUsed\tPriority\n", root, &plain), 0);
        cr_assert_null(plain);
        rm_rf(root);
        free(f);
        free(s);
        free(dd);
        free(swaps);
        free(swapfile);
}
