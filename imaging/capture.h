/* App capture (`slatectl app capture`): install Debian packages into a throwaway qcow2 overlay
 * of a golden version with one networked libguestfs appliance, and keep only what the install
 * added or changed, as a tree for an app layer. Blocking (run it in a worker thread). Never
 * writes the golden (it is only the overlay's backing file). */
#pragma once
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include "imaging/appliance.h"

/* Called from the worker thread at the start of each step, with the overall percentage.
 * Steps: overlay, launch, prepare, update, install, collect, extract. */
typedef void (*CaptureProgressFn)(void *userdata, const char *step, int percent);

#define CAPTURE_PACKAGES_MAX 256
/* The layer's tar as it leaves the appliance: larger is refused (a full office suite is ~1 GiB). */
#define CAPTURE_TAR_MAX (8ull << 30)

typedef struct CaptureRequest {
        const char *qemu_img;
        const char *golden;             /* the golden version's disk (qcow2): never written */
        const char *work_dir;           /* an existing empty dir: the overlay while it runs, then the tree */
        const char *const *packages;    /* Debian package names, [a-z0-9][a-z0-9+.-]* */
        size_t n_packages;              /* 1..CAPTURE_PACKAGES_MAX */
        /* Optional: a host dir whose *.deb files are put into the image's apt cache before the
         * install, so apt takes them instead of downloading. With it, and package lists already
         * in the image, apt-get update is skipped (the tests' offline mode); otherwise it runs. */
        const char *deb_dir;
        ApplianceConfig appliance;
        CaptureProgressFn progress;
        void *userdata;
} CaptureRequest;

typedef struct CaptureResult {
        /* work_dir/tree: the captured files, paths relative to / (usr/..., etc/...,
         * var/lib/dpkg/info/PKG.*, var/lib/dpkg/status-layer: the new packages' dpkg status
         * paragraphs, which the agent appends to /var/lib/dpkg/status). Owners kept (numeric),
         * setuid/setgid bits of files stripped, no device nodes, fifos, sockets or xattrs. */
        char *tree;
        char **packages;                /* "name=version" of each package the install added */
        size_t n_packages;
        char **overrides;               /* golden paths the install changed or removed (capture_diff.h) */
        size_t n_overrides;
        char **executables;             /* usr/bin, usr/sbin, usr/games, opt/.../bin executable files */
        size_t n_executables;           /* (or symlinks to one inside the tree) */
        char **menu_entries;            /* the .desktop files in usr/share/applications */
        size_t n_menu_entries;
        char **setid_stripped;          /* files that had setuid/setgid in the image */
        size_t n_setid_stripped;
        json_object *timings_ms;        /* {step: ms} for the steps above */
} CaptureResult;

/* 0, or a negative errno with *ret_error saying why in one line; on failure work_dir holds
 * nothing the capture made. Arrays in *ret are NULL-terminated as well as counted. */
int capture_run(const CaptureRequest *req, CaptureResult *ret, char **ret_error);
void capture_result_free(CaptureResult *r);
/* [a-z0-9][a-z0-9+.-]*, at most 128 bytes: Debian policy's package names. */
bool capture_package_name_ok(const char *name);
