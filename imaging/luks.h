/* Fresh LUKS keying for a copy of an encrypted qcow2 overlay.
 *
 * qemu-img spends about 2.5 s of CPU creating a LUKS overlay however short its iter-time: it
 * benchmarks PBKDF2 twice, half a second or more each. The key is 256 random bits, so the
 * stretching buys nothing. Slate therefore makes one blank overlay per backing file with
 * qemu-img, copies it for each desktop and gives the copy keying of its own here: a new master
 * key, UUID, salts and key slot for the desktop's passphrase, with LUKS1's own algorithms
 * (PBKDF2, AF split, AES-XTS, from OpenSSL). Nothing of the blank's keying survives in the copy
 * (its only key slot is overwritten whole) and no two copies share a master key, so erasing one
 * desktop's key erases its data alone. Takes a few milliseconds.
 *
 * Only the shape qemu-img makes is accepted: qcow2 v3 with a LUKS1 header, aes-256 xts-plain64,
 * sha256, key slot 0 active with 4000 stripes, the others inactive. Anything else is refused
 * (-EPROTO) and the caller falls back to qemu-img. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Rewrite the LUKS keying of the qcow2 file open (read-write) on fd for passphrase. On error
 * *ret_error says why (caller frees); the file is then unusable and should be removed. */
int luks_qcow2_rekey(int fd, const char *passphrase, size_t passphrase_len, char **ret_error);
/* Where the qcow2 file on fd keeps its LUKS header and key material: offset and length. */
int luks_qcow2_region(int fd, uint64_t *ret_offset, uint64_t *ret_length, char **ret_error);
