/* Roaming profile disks (DESIGN.md "Profiles"): a per-user qcow2 with LUKS inside (QEMU's own
 * encryption, so the guest sees a plain ext4 with 4 KiB blocks), created empty and formatted
 * on the host. Each disk has its own random 256-bit key, stored only wrapped (AES-256-GCM, the
 * user's name as associated data) by the host key, a root-only file. Rotation of the host key
 * re-wraps the per-user keys and never re-encrypts a disk. Must never write a key in clear to a
 * file, an argv or a log. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROFILE_KEY_LEN 32
#define PROFILE_PASSPHRASE_LEN (2 * PROFILE_KEY_LEN)   /* the LUKS passphrase: the key in hex */
#define PROFILE_WRAPPED_MAX 200

/* Load the host key (32 bytes) from path; with create, make one (0400, in a 0700 dir) when the
 * file is missing. Refuses a file others can read or that is not owned by the caller. */
int profile_host_key_load(const char *path, bool create, uint8_t key[PROFILE_KEY_LEN], char **ret_error);
/* Rotation writes the new host key as PATH.next, re-wraps every key in one transaction, then
 * renames PATH.next over PATH: a key that does not open with PATH is tried with PATH.next (a
 * rotation cut short between its commit and its rename). */
#define PROFILE_HOST_KEY_NEXT_SUFFIX ".next"

/* "v1:" + hex(nonce[12] | ciphertext[32] | tag[16]). */
char *profile_key_wrap(const uint8_t host[PROFILE_KEY_LEN], const char *user, const uint8_t key[PROFILE_KEY_LEN]);
/* -EBADMSG when the wrapped key is malformed or was not made by this host key for this user. */
int profile_key_unwrap(const uint8_t host[PROFILE_KEY_LEN], const char *user, const char *wrapped,
                       uint8_t key[PROFILE_KEY_LEN]);
/* The LUKS passphrase for a key: hex, NUL-terminated (buf of PROFILE_PASSPHRASE_LEN + 1). */
void profile_passphrase(const uint8_t key[PROFILE_KEY_LEN], char *buf);

/* Spare disks: made ahead of first logons (qemu-img's LUKS header costs ~3 s of CPU), kept as
 * <dir>/spare-<SIZE>-<random>.qcow2 with the key wrapped for "spare:<basename>" beside it in .key.
 * profile_spare_make creates one; profile_spare_count counts those of size; profile_spare_claim
 * moves one to path and returns its key (0), or -ENOENT when none is left. Blocking. */
int profile_spare_make(const char *qemu_img, const char *dir, uint64_t size, const uint8_t host[PROFILE_KEY_LEN],
                       uid_t owner, gid_t group, char **ret_error);
unsigned profile_spare_count(const char *dir, uint64_t size);
int profile_spare_claim(const char *dir, uint64_t size, const uint8_t host[PROFILE_KEY_LEN], const char *path,
                        uint8_t key[PROFILE_KEY_LEN]);

/* Blocking: create path (0600, owned by owner:group) as an encrypted qcow2 of size bytes holding
 * an empty ext4 (label slate-home). Nothing is left behind on failure. */
/* Grows the encrypted disk at path (not open anywhere) to size bytes, a multiple of 4 KiB; the
 * filesystem inside is grown by the guest's agent at its next mount (EXT4_IOC_RESIZE_FS). */
int profile_disk_grow(const char *qemu_img, const char *path, uint64_t size, const uint8_t key[PROFILE_KEY_LEN],
                      char **ret_error);
/* An empty encrypted disk (no filesystem, no bitmap yet): the target of a restore. */
int profile_disk_create_blank(const char *qemu_img, const char *path, uint64_t size, const uint8_t key[PROFILE_KEY_LEN],
                              uid_t owner, gid_t group, char **ret_error);
int profile_disk_create(const char *qemu_img, const char *mkfs, const char *path, uint64_t size,
                        const uint8_t key[PROFILE_KEY_LEN], uid_t owner, gid_t group, char **ret_error);

/* Every profile disk carries a persistent dirty bitmap (4 KiB granularity) that QEMU keeps while
 * a desktop writes: the next backup reads only what it names (streaming/profile_read.h). */
#define PROFILE_BITMAP "slate-backup"
/* The bitmap, with qemu-img on the closed disk: added (at creation), cleared (after a backup was
 * committed), or removed and added again (after a full backup that did not trust it). */
typedef enum { PROFILE_BITMAP_ADD, PROFILE_BITMAP_CLEAR, PROFILE_BITMAP_RESET } ProfileBitmapOp;
int profile_bitmap(const char *qemu_img, const char *path, const uint8_t key[PROFILE_KEY_LEN], ProfileBitmapOp op,
                   char **ret_error);
