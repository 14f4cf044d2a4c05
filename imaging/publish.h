/* The image publishing pipeline (DESIGN.md "Image publishing"): convert → inspect → seal →
 * agent → checksum, in a staging dir of the catalog, with one libguestfs appliance launch.
 * Blocking (run it in a worker thread); the caller commits the staged version (catalog). */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include "imaging/appliance.h"
#include "imaging/catalog.h"

/* Called from the worker thread at the start of each step, with the overall percentage.
 * Steps: convert, inspect, seal, agent, checksum. */
typedef void (*PublishProgressFn)(void *userdata, const char *step, int percent);

typedef struct PublishRequest {
        const char *qemu_img, *image_dir;
        const char *src;                /* disk image file, or a directory holding a root filesystem */
        const char *kernel, *initrd;    /* direct boot; NULL = boot from the disk's bootloader */
        const char *agent_binary;       /* the host's static slate-agent */
        const char *session_script;     /* optional; skipped when missing */
        bool as_is;                     /* a file published as it is: no appliance, so no inspect,
                                         * seal or agent (the admin's pipeline did those) */
        ApplianceConfig appliance;
        PublishProgressFn progress;
        void *userdata;
} PublishRequest;

/* The version's record of its publishing, stored as publish.json next to disk.qcow2:
 * {"os","distro","os_version","product","arch","root","init","boot","bootloader",
 *  "seal": {...}, "agent": {...}, "source": "file"|"dir", "timings_ms": {step: ms}};
 * published --as-is: {"as_is": true, "source": "file", "timings_ms": {...}} and nothing the
 * appliance would have found. */
#define PUBLISH_INFO_FILE "publish.json"
#define PUBLISH_INFO_MAX (1u << 20)

/* On failure nothing is left under image_dir and *ret_error says why (one line). */
int publish_stage(const PublishRequest *p, CatalogStaged **ret, char **ret_error);
/* Read a version dir's publish.json; -ENOENT for versions published before the pipeline. */
int publish_info_load(const char *version_dir, json_object **ret);
