/* A profile disk opened for backup: qemu-nbd serves the decrypted image read-only on a private
 * unix socket (the key on a pipe, fd 3, never argv), read through libnbd. With the disk's
 * persistent dirty bitmap (PROFILE_BITMAP, 4 KiB granularity, kept by QEMU while the desktop
 * writes), the export also says which blocks changed since the bitmap was last cleared.
 *
 * A bitmap that is missing or inconsistent (QEMU died with the disk open: it could not store it)
 * is not trusted: the caller reads everything. Blocking: run in a thread. The disk must not be
 * open anywhere else (QEMU's image lock refuses it otherwise). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "streaming/profile.h"
#include "streaming/store.h"

typedef struct ProfileReader ProfileReader;

/* Opens path (an encrypted qcow2) with key. sock_dir: a private directory for the socket.
 * *ret_bitmap: whether the dirty bitmap is there and trusted. */
int profile_reader_open(const char *qemu_nbd, const char *path, const uint8_t key[PROFILE_KEY_LEN],
                        const char *sock_dir, ProfileReader **ret, bool *ret_bitmap, char **ret_error);
uint64_t profile_reader_size(ProfileReader *r);
/* The changed extents since the bitmap was cleared (only with a trusted bitmap). */
int profile_reader_dirty(ProfileReader *r, StoreExtent **ret, size_t *ret_n);
/* The extents that may hold data (not known to read as zeros): a full backup reads only these. */
int profile_reader_allocated(ProfileReader *r, StoreExtent **ret, size_t *ret_n);
/* A StoreReadFn: userdata is the ProfileReader. */
int profile_reader_read(void *userdata, uint64_t offset, void *buf, size_t len);
void profile_reader_close(ProfileReader *r);

/* The same disk opened read-write (no bitmap), for a restore: a StoreWriteFn, then a flush. */
int profile_writer_open(const char *qemu_nbd, const char *path, const uint8_t key[PROFILE_KEY_LEN],
                        const char *sock_dir, ProfileReader **ret, char **ret_error);
int profile_writer_write(void *userdata, uint64_t offset, const void *buf, size_t len);
int profile_writer_flush(ProfileReader *r);
