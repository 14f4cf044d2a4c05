/* Per-desktop copy-on-write overlays over a golden version, in three modes:
 *  encrypted: LUKS-in-qcow2 with a fresh random key that exists only in this process's memory;
 *  ram:       a plain qcow2 on tmpfs (never on a disk);
 *  plain:     a plain qcow2 on disk, for debugging.
 * Never writes the golden file. Never puts the key on a command line, in a log or on disk.
 * Blocking calls (they run qemu-img): slated calls them from its thread pool. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum OverlayMode { OVERLAY_ENCRYPTED = 0, OVERLAY_RAM = 1, OVERLAY_PLAIN = 2 } OverlayMode;

#define OVERLAY_SECRET_LEN 64          /* hex of 32 random bytes = 256-bit LUKS passphrase */

typedef struct Overlay {
        OverlayMode mode;
        char *path;                    /* absolute path of the overlay file */
        char secret[OVERLAY_SECRET_LEN + 1]; /* encrypted mode only; mlock'd, wiped on destroy */
} Overlay;

int overlay_mode_from_string(const char *s, OverlayMode *ret);
const char *overlay_mode_to_string(OverlayMode m);

/* Create <dir>/<id>.qcow2 backed by golden (absolute path, format qcow2), owned by owner:group
 * mode 0600 when owner != (uid_t)-1. ram mode requires dir on tmpfs (-EXDEV otherwise).
 * *ret_error gets a human-readable reason on failure (caller frees). */
int overlay_create(const char *qemu_img, OverlayMode mode, const char *golden, const char *dir, const char *id,
                   uid_t owner, gid_t group, Overlay **ret, char **ret_error);
/* Erase: forget and wipe the key, unlink the file, free o. Idempotent on a missing file. */
int overlay_destroy(Overlay *o);
/* Free the handle and wipe the key without touching the file (used on slated shutdown when
 * the VM keeps running: the key then lives only inside that QEMU). */
void overlay_forget(Overlay *o);
/* Remove the blank overlays kept under overlay_dir (they are made again on first use). */
int overlay_blanks_clear(const char *overlay_dir);
/* Erase a left-over overlay found at start-up (its key is already gone): unlink. */
int overlay_discard_path(const char *path);
/* Bytes the overlay occupies on its filesystem (allocated blocks). */
int overlay_bytes(const char *path, uint64_t *ret);
