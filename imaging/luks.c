/* Fresh LUKS1 keying for a copy of a blank encrypted qcow2 overlay (see luks.h). The layout is
 * LUKS1's (big-endian): a 592-byte header, then per key slot its AF-split master key encrypted
 * with a key derived from the passphrase. qcow2 keeps that region where its "full disk
 * encryption header" extension points. */
#include <endian.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/util.h"
#include "imaging/luks.h"

#define QCOW2_MAGIC 0x514649fbu
#define QCOW2_CRYPT_LUKS 2
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_HEAD_MAX 4096             /* qemu-img puts the header and its extensions in 4 KiB */

#define LUKS_MAGIC "LUKS\xba\xbe"
#define LUKS_HEADER_LEN 592
#define LUKS_SLOTS 8
#define LUKS_SLOT_ACTIVE 0x00ac71f3u
#define LUKS_SLOT_INACTIVE 0x0000deadu
#define LUKS_STRIPES 4000
#define LUKS_KEY_BYTES 64               /* aes-256 in xts mode: two 256-bit keys */
#define LUKS_DIGEST_LEN 20
#define LUKS_SALT_LEN 32
#define LUKS_SECTOR 512
/* LUKS1's minimum. The passphrase is 256 random bits: more rounds add nothing to guess against. */
#define LUKS_ITERATIONS 1000

/* Field offsets in the LUKS1 header. */
enum {
        L_VERSION = 6, L_CIPHER = 8, L_MODE = 40, L_HASH = 72, L_PAYLOAD = 104, L_KEY_BYTES = 108,
        L_MK_DIGEST = 112, L_MK_SALT = 132, L_MK_ITER = 164, L_UUID = 168, L_SLOTS = 208,
        /* within a 48-byte key slot */
        S_ACTIVE = 0, S_ITER = 4, S_SALT = 8, S_OFFSET = 40, S_STRIPES = 44, S_LEN = 48,
};

static uint32_t get_be32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static uint64_t get_be64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static void put_be32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }

static bool field_is(const uint8_t *hdr, size_t off, const char *s)
{
        char f[33];
        memcpy(f, hdr + off, 32);
        f[32] = 0;
        return strcmp(f, s) == 0;
}

static int fail(char **ret_error, int r, char *why)   /* takes why */
{
        *ret_error = why;
        return r;
}

/* Where qcow2 keeps the LUKS region: its offset and length in the file. */
int luks_qcow2_region(int fd, uint64_t *ret_off, uint64_t *ret_len, char **ret_error)
{
        uint8_t h[QCOW2_HEAD_MAX];
        ssize_t n = pread(fd, h, sizeof h, 0);
        if (n < 0) {
                int e = errno;
                return fail(ret_error, -e, xasprintf("reading the qcow2 header: %s", strerror(e)));
        }
        if (n < 104 || get_be32(h) != QCOW2_MAGIC || get_be32(h + 4) != 3)
                return fail(ret_error, -EPROTO, xstrdup("not a qcow2 v3 file"));
        if (get_be32(h + 32) != QCOW2_CRYPT_LUKS)
                return fail(ret_error, -EPROTO, xstrdup("the qcow2 file is not LUKS-encrypted"));
        size_t off = get_be32(h + 100);         /* header_length: the extensions follow */
        while (off + 8 <= (size_t)n) {
                uint32_t type = get_be32(h + off), len = get_be32(h + off + 4);
                if (type == 0)
                        break;
                if (len > (size_t)n - off - 8)
                        break;
                if (type == QCOW2_EXT_CRYPTO && len == 16) {
                        *ret_off = get_be64(h + off + 8);
                        *ret_len = get_be64(h + off + 16);
                        return 0;
                }
                off += 8 + (((size_t)len + 7) & ~(size_t)7);
        }
        return fail(ret_error, -EPROTO, xstrdup("no LUKS header extension in the qcow2 header"));
}

/* LUKS1's diffusion: each digest-sized piece of the block replaced by H(be32(i) || piece). */
static int af_diffuse(uint8_t *block, size_t len)
{
        const size_t dl = 32;           /* sha256 */
        for (size_t i = 0, off = 0; off < len; i++, off += dl) {
                size_t n = MIN(dl, len - off);
                uint8_t iv[4], out[32];
                put_be32(iv, (uint32_t)i);
                EVP_MD_CTX *c = EVP_MD_CTX_new();
                int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) && EVP_DigestUpdate(c, iv, 4) &&
                         EVP_DigestUpdate(c, block + off, n) && EVP_DigestFinal_ex(c, out, NULL);
                EVP_MD_CTX_free(c);
                if (!ok)
                        return -EIO;
                memcpy(block + off, out, n);
        }
        return 0;
}

/* AF split: stripes-1 random blocks, each folded into d = H(d ^ s); the last is d ^ key. */
static int af_split(const uint8_t *key, size_t len, unsigned stripes, uint8_t *out)
{
        uint8_t d[LUKS_KEY_BYTES] = { 0 };
        int r = random_bytes(out, len * (stripes - 1));
        for (unsigned s = 0; r == 0 && s < stripes - 1; s++) {
                for (size_t i = 0; i < len; i++)
                        d[i] ^= out[s * len + i];
                r = af_diffuse(d, len);
        }
        for (size_t i = 0; r == 0 && i < len; i++)
                out[(size_t)(stripes - 1) * len + i] = d[i] ^ key[i];
        secret_wipe(d, sizeof d);
        return r;
}

/* AES-256-XTS over whole 512-byte sectors, the tweak being the sector number (plain64). */
static int xts_encrypt(const uint8_t key[LUKS_KEY_BYTES], uint8_t *buf, size_t len)
{
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int r = c ? 0 : -ENOMEM;
        for (size_t s = 0; r == 0 && s * LUKS_SECTOR < len; s++) {
                uint8_t iv[16] = { 0 };
                uint64_t le = htole64(s);
                memcpy(iv, &le, 8);
                int outl = 0;
                uint8_t *p = buf + s * LUKS_SECTOR;
                if (!EVP_EncryptInit_ex(c, EVP_aes_256_xts(), NULL, key, iv) ||
                    !EVP_EncryptUpdate(c, p, &outl, p, LUKS_SECTOR) || outl != LUKS_SECTOR)
                        r = -EIO;
        }
        EVP_CIPHER_CTX_free(c);
        return r;
}

static void uuid_v4(char out[37])
{
        uint8_t u[16];
        (void)random_bytes(u, sizeof u);
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
                 u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

int luks_qcow2_rekey(int fd, const char *passphrase, size_t passphrase_len, char **ret_error)
{
        _cleanup_free_ char *discard = NULL;
        if (!ret_error)
                ret_error = &discard;
        *ret_error = NULL;
        uint64_t region = 0, region_len = 0;
        int r = luks_qcow2_region(fd, &region, &region_len, ret_error);
        if (r < 0)
                return r;
        uint8_t h[LUKS_HEADER_LEN];
        if (region_len < sizeof h || pread(fd, h, sizeof h, (off_t)region) != (ssize_t)sizeof h)
                return fail(ret_error, -EPROTO, xstrdup("the LUKS header is cut short"));
        if (memcmp(h, LUKS_MAGIC, 6) != 0 || h[L_VERSION] != 0 || h[L_VERSION + 1] != 1 || !field_is(h, L_CIPHER, "aes") ||
            !field_is(h, L_MODE, "xts-plain64") || !field_is(h, L_HASH, "sha256") ||
            get_be32(h + L_KEY_BYTES) != LUKS_KEY_BYTES)
                return fail(ret_error, -EPROTO, xstrdup("not a LUKS1 aes-256 xts-plain64 sha256 header"));
        const size_t mat_len = (size_t)LUKS_KEY_BYTES * LUKS_STRIPES;   /* 500 sectors */
        uint8_t *slot0 = h + L_SLOTS;
        uint64_t mat_off = (uint64_t)get_be32(slot0 + S_OFFSET) * LUKS_SECTOR;
        if (get_be32(slot0 + S_ACTIVE) != LUKS_SLOT_ACTIVE || get_be32(slot0 + S_STRIPES) != LUKS_STRIPES ||
            mat_off < sizeof h || mat_off + mat_len > region_len)
                return fail(ret_error, -EPROTO, xstrdup("key slot 0 is not the one qemu-img makes"));
        for (int s = 1; s < LUKS_SLOTS; s++)
                if (get_be32(h + L_SLOTS + s * S_LEN + S_ACTIVE) != LUKS_SLOT_INACTIVE)
                        return fail(ret_error, -EPROTO, xstrdup("a key slot other than 0 is in use"));

        /* The master key, the slot key and the split material, all wiped before return. */
        uint8_t mk[LUKS_KEY_BYTES], slot_key[LUKS_KEY_BYTES];
        uint8_t *mat = malloc(mat_len);
        if (!mat)
                return fail(ret_error, -ENOMEM, xstrdup("out of memory"));
        r = random_bytes(mk, sizeof mk);
        if (r == 0)
                r = random_bytes(h + L_MK_SALT, LUKS_SALT_LEN);
        if (r == 0)
                r = random_bytes(slot0 + S_SALT, LUKS_SALT_LEN);
        put_be32(h + L_MK_ITER, LUKS_ITERATIONS);
        put_be32(slot0 + S_ITER, LUKS_ITERATIONS);
        if (r == 0 && (!PKCS5_PBKDF2_HMAC((const char *)mk, sizeof mk, h + L_MK_SALT, LUKS_SALT_LEN, LUKS_ITERATIONS,
                                          EVP_sha256(), LUKS_DIGEST_LEN, h + L_MK_DIGEST) ||
                       !PKCS5_PBKDF2_HMAC(passphrase, (int)passphrase_len, slot0 + S_SALT, LUKS_SALT_LEN,
                                          LUKS_ITERATIONS, EVP_sha256(), sizeof slot_key, slot_key)))
                r = -EIO;
        if (r == 0)
                r = af_split(mk, sizeof mk, LUKS_STRIPES, mat);
        if (r == 0)
                r = xts_encrypt(slot_key, mat, mat_len);
        if (r == 0) {
                char uuid[37];
                uuid_v4(uuid);
                memset(h + L_UUID, 0, 40);
                memcpy(h + L_UUID, uuid, 36);
        }
        /* The material first: until the header names the new salts, the copy opens with no key. */
        errno = 0;
        if (r == 0 && (pwrite(fd, mat, mat_len, (off_t)(region + mat_off)) != (ssize_t)mat_len ||
                       pwrite(fd, h, sizeof h, (off_t)region) != (ssize_t)sizeof h))
                r = errno ? -errno : -EIO;
        secret_wipe(mk, sizeof mk);
        secret_wipe(slot_key, sizeof slot_key);
        secret_wipe(mat, mat_len);
        free(mat);
        if (r < 0)
                return fail(ret_error, r, xasprintf("writing the new keying: %s", strerror(-r)));
        return 0;
}
