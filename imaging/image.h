/* Golden image files: inspect, import as qcow2, hash. Published files are hostile input:
 * qemu-img runs on them under CPU/memory limits, backing files and unknown formats are
 * refused, and nothing is left behind on failure. Blocking; no SQLite here (see catalog). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define IMAGE_SHA256_HEX 64

typedef struct ImageInfo {
        char format[16];               /* qcow2, raw, vmdk, vdi, vhdx */
        uint64_t virtual_size;
        uint64_t file_size;
} ImageInfo;

/* qemu-img info --output=json, under limits. Refuses: not a disk image, unsupported format,
 * a backing file, an encrypted image, a qcow2 that fails `qemu-img check`. */
int image_probe(const char *qemu_img, const char *path, ImageInfo *ret, char **ret_error);
/* Write path as a standalone qcow2 at dest (via dest.partial, renamed at the end, mode 0444),
 * converting when needed. On failure dest and the partial file do not exist. */
int image_import(const char *qemu_img, const char *path, const ImageInfo *info, const char *dest,
                 char **ret_error);
int image_sha256(const char *path, char ret[IMAGE_SHA256_HEX + 1]);
