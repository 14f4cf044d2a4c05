/* Golden image files: inspect, import as qcow2, hash. Published files are hostile input:
 * qemu-img runs on them in its sandbox (imaging/qemu_img.h) under CPU/memory limits, backing
 * files and unknown formats are refused, and nothing is left behind on failure. Blocking; no SQLite here (see catalog). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAGE_SHA256_HEX 64

typedef struct ImageInfo {
        char format[16];               /* qcow2, raw, vmdk, vdi, vhdx */
        uint64_t virtual_size;
        uint64_t file_size;
} ImageInfo;

/* The largest `qemu-img info --output=json` reply accepted: an honest one is a few KiB even
 * for a vmdk with many extents. */
#define IMAGE_INFO_JSON_MAX (1U << 20)

/* The checks on `qemu-img info --output=json` for the file at abs_path (absolute, as qemu-img
 * was given it) of file_size bytes. The reply is hostile input (a published file chooses its
 * backing file name, extent paths, ...), so this is a pure parser: no I/O, no logging. Fills
 * *ret on success; else returns -EBADMSG (not the JSON qemu-img writes) or -EINVAL (a refused
 * image) with *ret_error (may be NULL) saying why; the caller logs it. */
int image_info_check(const char *json, size_t len, const char *abs_path, uint64_t file_size, ImageInfo *ret,
                     char **ret_error);
/* qemu-img info --output=json, under limits. Refuses: not a disk image, unsupported format,
 * a backing file, an encrypted image, a qcow2 that fails `qemu-img check`. */
int image_probe(const char *qemu_img, const char *path, ImageInfo *ret, char **ret_error);
/* Write path as a standalone qcow2 at dest (via dest.partial, renamed at the end, mode 0444),
 * converting when needed. On failure dest and the partial file do not exist. */
int image_import(const char *qemu_img, const char *path, const ImageInfo *info, const char *dest,
                 char **ret_error);
int image_sha256(const char *path, char ret[IMAGE_SHA256_HEX + 1]);
