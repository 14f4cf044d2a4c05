/* Publish step "seal": remove what makes one installed machine unique or leaks its past
 * (machine-id, SSH host keys, logs, shell histories, DHCP leases, temp files, cloud-init
 * state, random seeds). Internal to imaging/; works on the mounted staged copy only. */
#pragma once
#include <json-c/json.h>
#include "imaging/gfs.h"

/* *ret_report: {"count": N, "removed": [paths], "emptied": [paths], "truncated": bool}
 * (lists capped at SEAL_LIST_MAX; count is the real total). */
#define SEAL_LIST_MAX 1000
int seal_disk(guestfs_h *g, json_object **ret_report, char **ret_error);
