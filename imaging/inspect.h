/* Publish step "inspect": what operating system a staged disk holds and whether slated can
 * boot it. Internal to imaging/ (takes a libguestfs handle). */
#pragma once
#include <stdbool.h>
#include "imaging/gfs.h"

typedef struct InspectInfo {
        char os[32];            /* libguestfs' type: linux */
        char distro[64];        /* libguestfs' distro, or os-release ID when it does not know it */
        char version[32];       /* major.minor, or os-release VERSION_ID */
        char product[128];      /* product name / PRETTY_NAME */
        char arch[32];          /* x86_64 */
        char root[64];          /* root filesystem device in the appliance (/dev/sda, /dev/sda2, ...) */
        char init[16];          /* systemd | busybox | sysv */
        char boot[16];          /* kernel (published with --kernel) | disk (bootloader + kernel in /boot) */
        char bootloader[16];    /* grub | efi | extlinux | "" */
} InspectInfo;

/* Runs inspection on the launched appliance, refuses what slated cannot run (no OS, several
 * roots, not Linux, not x86_64, not bootable: *ret_error says which), and leaves the OS's
 * filesystems mounted (read-write unless readonly) for the next steps. */
int inspect_disk(guestfs_h *g, bool direct_kernel, bool readonly, InspectInfo *ret, char **ret_error);
