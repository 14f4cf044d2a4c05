/* The golden image store on disk: <image_dir>/<name>/v<N>/{disk.qcow2,vmlinux,initrd}.
 * Staging does all the slow, hostile-input work (inspect, convert, hash) in a private staging
 * dir; committing is one rename. Versions are immutable once committed (files 0444). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "imaging/image.h"

typedef struct CatalogStaged {
        char *dir;                     /* staging dir; removed by catalog_staged_free if not committed */
        ImageInfo info;                /* of the published file */
        uint64_t size;                 /* of the stored qcow2 */
        char sha256[IMAGE_SHA256_HEX + 1];
        bool has_kernel, has_initrd;
} CatalogStaged;

/* Blocking. Inspect src, import it as qcow2, copy kernel/initrd (optional), hash. On failure
 * nothing is left under image_dir and *ret_error says why. */
int catalog_stage(const char *qemu_img, const char *image_dir, const char *src, const char *kernel,
                  const char *initrd, CatalogStaged **ret, char **ret_error);
/* The same in pieces, for the publishing pipeline (imaging/publish.c): a new empty staging dir;
 * kernel/initrd copied in (either may be NULL); size and sha256 of its disk.qcow2. */
int catalog_staging_new(const char *image_dir, CatalogStaged **ret, char **ret_error);
int catalog_staged_add_boot(CatalogStaged *s, const char *kernel, const char *initrd, char **ret_error);
int catalog_staged_finish(CatalogStaged *s, char **ret_error);
/* Move the staged files to <image_dir>/<name>/v<version>; fills the final paths. */
int catalog_commit(CatalogStaged *s, const char *image_dir, const char *name, int version, char **ret_disk,
                   char **ret_kernel, char **ret_initrd);
void catalog_staged_free(CatalogStaged *s);
/* Remove a committed version's files (gc). */
int catalog_remove(const char *image_dir, const char *name, int version);
