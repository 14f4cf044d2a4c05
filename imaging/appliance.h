/* How imaging/ starts a libguestfs appliance (the helper VM that reads and writes guest disks,
 * so hostile filesystems are parsed by a throwaway kernel, never by the host). Public: no
 * guestfs.h here; only imaging/ sources include it. */
#pragma once
#include <stdbool.h>

typedef struct ApplianceConfig {
        const char *kernel;     /* vmlinuz for supermin (SUPERMIN_KERNEL); NULL = libguestfs' own lookup */
        const char *modules;    /* its /lib/modules/VERSION dir (SUPERMIN_MODULES); NULL = lookup */
        bool force_tcg;         /* backend setting force_tcg: where KVM is unusable (slated chose TCG) */
} ApplianceConfig;

/* Export SUPERMIN_KERNEL, SUPERMIN_MODULES and SUPERMIN_KERNEL_VERSION (the modules dir's name)
 * when cfg sets them; a no-op when they already hold these values. setenv is not thread-safe:
 * call it on the main/loop thread before work that launches an appliance is queued. */
int appliance_env_apply(const ApplianceConfig *cfg, char **ret_error);
