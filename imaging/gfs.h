/* Internal to imaging/: open a libguestfs handle configured from ApplianceConfig, turn its
 * errors into one message for the caller, and mount an inspected OS. The only header that
 * includes guestfs.h (STYLE.md: only imaging/ knows libguestfs). */
#pragma once
#include <guestfs.h>
#include <stdbool.h>
#include "imaging/appliance.h"

/* Caps on what is read back from a (hostile) guest filesystem. */
#define GFS_PATH_MAX 4096
#define GFS_ENTRIES_MAX 1000000

/* A handle with the direct backend (unless LIBGUESTFS_BACKEND says otherwise), force_tcg when
 * asked, and errors kept for gfs_fail instead of printed. NULL with *ret_error on failure. */
guestfs_h *gfs_open(const ApplianceConfig *cfg, char **ret_error);
/* Close (guestfs_close(NULL) is fine) for _cleanup_(gfs_closep). */
void gfs_closep(guestfs_h **g);
/* *ret_error = "<what>: <libguestfs' last error>"; returns -EIO. */
int gfs_fail(guestfs_h *g, char **ret_error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Mount root and the filesystems its fstab names (shortest mountpoint first) under prefix
 * ("" = /). A failure to mount the root is an error; other mountpoints are skipped. With
 * several disks in the appliance, fstab's names (/dev/vda1, or a UUID two versions share) may
 * resolve to another disk: the root is always the inspected device, and /dev/sdX names are
 * moved to root's disk. */
int gfs_mount_os(guestfs_h *g, const char *root, const char *prefix, bool readonly, char **ret_error);
void gfs_free_strings(char **l);
size_t gfs_count(char *const *l);
