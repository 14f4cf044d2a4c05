/* What changed between two golden image versions, file by file, read through one libguestfs
 * appliance with both disks read-only. Blocking (run it in a worker thread). */
#pragma once
#include <json-c/json.h>
#include "imaging/appliance.h"

/* Each list holds at most DIFF_LIST_MAX paths; "counts" has the real numbers. */
#define DIFF_LIST_MAX 10000

/* *ret: {"added": [paths], "removed": [...], "changed": [...],
 *        "counts": {"added": n, "removed": n, "changed": n}, "entries": [n1, n2],
 *        "checksummed": n, "truncated": bool}
 * Paths are absolute in the guest ("/etc/motd"), sorted. What counts as changed:
 * - a different type, permission bits, owner or group;
 * - a symlink with a different target; a device node with a different device number;
 * - a regular file of a different size; of the same size but another mtime only if the
 *   contents differ (sha256 of both, read in the appliance): republishing the same file
 *   is no change. Same size and same mtime counts as unchanged without reading the file
 *   (rsync's quick check): contents rewritten in place with the mtime restored are missed.
 * - directories: their own size and mtime are ignored (their entries speak for them).
 * The contents of /proc, /sys and /dev are skipped. */
int image_diff(const ApplianceConfig *cfg, const char *disk1, const char *disk2, json_object **ret,
               char **ret_error);
