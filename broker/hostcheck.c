/* Host checks (hostcheck.h). A swap area is known by the device it lives on: the block device
 * itself (st_rdev) or the filesystem holding a swap file (st_dev); /sys/dev/block/MAJ:MIN says
 * whether that device is dm-crypt (dm/uuid "CRYPT-…") or a device-mapper layer whose every
 * underlying device (slaves/) is. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "broker/hostcheck.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#define SWAPS_MAX (64u * 1024)
#define DEPTH_MAX 8

static bool dev_encrypted(const char *sysfs, const char *devdir, int depth)
{
        if (depth > DEPTH_MAX)
                return false;
        _cleanup_free_ char *uuidf = xasprintf("%s/dm/uuid", devdir), *uuid = NULL;
        if (read_file_max(uuidf, 256, &uuid, NULL) < 0)
                return false;                   /* not device-mapper: a plain disk or partition */
        if (strncmp(uuid, "CRYPT-", 6) == 0)
                return true;
        _cleanup_free_ char *slaves = xasprintf("%s/slaves", devdir);
        DIR *d = opendir(slaves);
        if (!d)
                return false;
        bool any = false, all = true;
        struct dirent *de;
        while ((de = readdir(d)) && all) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *sub = xasprintf("%s/class/block/%s", sysfs, de->d_name);
                any = true;
                all = dev_encrypted(sysfs, sub, depth + 1);
        }
        closedir(d);
        return any && all;
}

static bool swap_encrypted(const char *path, const char *sysfs)
{
        const char *base = strrchr(path, '/');
        if (strncmp(base ? base + 1 : path, "zram", 4) == 0)
                return true;                    /* compressed RAM: nothing reaches a disk */
        struct stat st;
        if (stat(path, &st) < 0)
                return false;
        dev_t dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
        _cleanup_free_ char *dir = xasprintf("%s/dev/block/%u:%u", sysfs, major(dev), minor(dev));
        return dev_encrypted(sysfs, dir, 0);
}

int hostcheck_plain_swap(const char *swaps, const char *sysfs, char **ret)
{
        *ret = NULL;
        char *list = NULL;
        const char *line = swaps;
        bool header = true;
        while (line && *line) {
                const char *nl = strchr(line, '\n');
                size_t n = nl ? (size_t)(nl - line) : strlen(line);
                /* "Filename Type Size Used Priority", the name first (spaces in it come as \040). */
                char name[512];
                if (!header && sscanf(line, "%511s", name) == 1 && n > 0 && !swap_encrypted(name, sysfs)) {
                        char *l = list ? xasprintf("%s, %s", list, name) : xstrdup(name);
                        free(list);
                        list = l;
                }
                header = false;
                line = nl ? nl + 1 : NULL;
        }
        *ret = list;
        return 0;
}

void hostcheck_warn_swap(void)
{
        _cleanup_free_ char *swaps = NULL, *plain = NULL;
        if (read_file_max("/proc/swaps", SWAPS_MAX, &swaps, NULL) < 0)
                return;
        hostcheck_plain_swap(swaps, "/sys", &plain);
        if (plain)
                log_warn("swap in clear (%s): guest memory that reaches it outlives crypto-erase; turn swap off or "
                         "encrypt it (docs/security.md, \"Swap and crypto-erase\")", plain);
}
