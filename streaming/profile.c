/* Profile disks and their keys (profile.h). The only code that sees a per-user key in clear;
 * it wipes every copy it made before returning. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "imaging/qemu_img.h"
#include "streaming/profile.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define WRAP_PREFIX "v1:"
#define WRAP_AAD_PREFIX "slate-profile-key:"

int profile_host_key_load(const char *path, bool create, uint8_t key[PROFILE_KEY_LEN], char **ret_error)
{
        *ret_error = NULL;
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && create) {
                _cleanup_free_ char *dir = xstrdup(path);
                char *slash = strrchr(dir, '/');
                if (slash && slash != dir) {
                        *slash = 0;
                        mkdir_p(dir, 0700);
                }
                uint8_t k[PROFILE_KEY_LEN];
                random_bytes(k, sizeof k);
                int w = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
                if (w < 0) {
                        secret_wipe(k, sizeof k);
                        *ret_error = xasprintf("creating the host key %s: %m", path);
                        return -errno;
                }
                ssize_t n = write(w, k, sizeof k);
                int e = errno;
                secret_wipe(k, sizeof k);
                if (n != (ssize_t)sizeof k || fsync(w) < 0) {
                        close(w);
                        unlink(path);
                        *ret_error = xasprintf("writing the host key %s: %s", path, strerror(n < 0 ? e : EIO));
                        return -EIO;
                }
                close(w);
                log_info("profiles: created the host key %s (keep a copy somewhere safe: without it no "
                         "profile can be opened)", path);
                fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0) {
                int e = errno;
                *ret_error = xasprintf("host key %s: %s", path, strerror(e));
                return -e;
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
                close(fd);
                *ret_error = xasprintf("host key %s must be a file owned by uid %u that only it can read", path,
                                       (unsigned)geteuid());
                return -EPERM;
        }
        ssize_t n = read(fd, key, PROFILE_KEY_LEN);
        uint8_t extra;
        ssize_t more = n == PROFILE_KEY_LEN ? read(fd, &extra, 1) : 0;
        close(fd);
        if (n != PROFILE_KEY_LEN || more != 0) {
                secret_wipe(key, PROFILE_KEY_LEN);
                *ret_error = xasprintf("host key %s must hold exactly %d bytes", path, PROFILE_KEY_LEN);
                return -EINVAL;
        }
        return 0;
}

static int gcm(bool enc, const uint8_t host[PROFILE_KEY_LEN], const char *user, const uint8_t *nonce,
               const uint8_t *in, uint8_t *out, uint8_t *tag)
{
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        _cleanup_free_ char *aad = xasprintf(WRAP_AAD_PREFIX "%s", user);
        int len = 0, ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
                          EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
                          EVP_CipherInit_ex(c, NULL, NULL, host, nonce, enc) == 1 &&
                          EVP_CipherUpdate(c, NULL, &len, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
                          EVP_CipherUpdate(c, out, &len, in, PROFILE_KEY_LEN) == 1 && len == PROFILE_KEY_LEN;
        if (ok && !enc)
                ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
        if (ok)
                ok = EVP_CipherFinal_ex(c, out + len, &len) == 1;
        if (ok && enc)
                ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
        EVP_CIPHER_CTX_free(c);
        return ok ? 0 : -EBADMSG;
}

char *profile_key_wrap(const uint8_t host[PROFILE_KEY_LEN], const char *user, const uint8_t key[PROFILE_KEY_LEN])
{
        uint8_t blob[NONCE_LEN + PROFILE_KEY_LEN + TAG_LEN];
        random_bytes(blob, NONCE_LEN);
        if (gcm(true, host, user, blob, key, blob + NONCE_LEN, blob + NONCE_LEN + PROFILE_KEY_LEN) < 0)
                abort();
        char hex[2 * sizeof blob + 1];
        hex_encode(blob, sizeof blob, hex);
        return xasprintf(WRAP_PREFIX "%s", hex);
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
        if (strlen(s) != 2 * n)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                unsigned v = 0;
                for (int k = 0; k < 2; k++) {
                        char c = s[2 * i + k];
                        v <<= 4;
                        if (c >= '0' && c <= '9')
                                v |= (unsigned)(c - '0');
                        else if (c >= 'a' && c <= 'f')
                                v |= (unsigned)(c - 'a' + 10);
                        else
                                return -EBADMSG;
                }
                out[i] = (uint8_t)v;
        }
        return 0;
}

int profile_key_unwrap(const uint8_t host[PROFILE_KEY_LEN], const char *user, const char *wrapped,
                       uint8_t key[PROFILE_KEY_LEN])
{
        uint8_t blob[NONCE_LEN + PROFILE_KEY_LEN + TAG_LEN];
        if (!wrapped || strncmp(wrapped, WRAP_PREFIX, strlen(WRAP_PREFIX)) != 0 ||
            unhex(wrapped + strlen(WRAP_PREFIX), blob, sizeof blob) < 0)
                return -EBADMSG;
        int r = gcm(false, host, user, blob, blob + NONCE_LEN, key, blob + NONCE_LEN + PROFILE_KEY_LEN);
        if (r < 0)
                secret_wipe(key, PROFILE_KEY_LEN);
        return r;
}

void profile_passphrase(const uint8_t key[PROFILE_KEY_LEN], char *buf) { hex_encode(key, PROFILE_KEY_LEN, buf); }

int profile_disk_create(const char *qemu_img, const char *mkfs, const char *path, uint64_t size,
                        const uint8_t key[PROFILE_KEY_LEN], uid_t owner, gid_t group, char **ret_error)
{
        *ret_error = NULL;
        if (size < (64ull << 20) || size % 4096) {
                *ret_error = xasprintf("a profile disk must be at least 64 MiB and a multiple of 4 KiB");
                return -EINVAL;
        }
        /* The empty file system is made on a sparse raw file (it holds no user data), then
         * converted: holes stay unallocated, so the qcow2 starts at a few MiB. Inode tables and
         * journal are zeroed now (lazy init would later write them through the encryption). */
        _cleanup_free_ char *raw = xasprintf("%s.raw.tmp", path);
        _cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
        _cleanup_free_ char *size_arg = xasprintf("%lluk", (unsigned long long)(size >> 10));
        int fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                *ret_error = xasprintf("%s: %m", raw);
                return -errno;
        }
        close(fd);
        const char *mk[] = { mkfs ? mkfs : "/sbin/mkfs.ext4", "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0",
                             "-E", "lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0", "-L", "slate-home",
                             raw, size_arg, NULL };
        _cleanup_free_ char *err = NULL;
        int r = qemu_img_run(mk, NULL, NULL, &err);
        if (r < 0) {
                *ret_error = xasprintf("mkfs.ext4: %s", err && *err ? err : strerror(-r));
                unlink(raw);
                return r;
        }
        free(err);
        err = NULL;
        const char *conv[] = { qemu_img, "convert", "-q", "-f", "raw", "-O", "qcow2", "-o",
                               "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", "--object",
                               "secret,id=sec0,file=/dev/fd/3,format=raw", raw, tmp, NULL };
        char pass[PROFILE_PASSPHRASE_LEN + 1];
        profile_passphrase(key, pass);
        QemuImgPrecreate pc = { tmp, owner, group };
        r = qemu_img_run_keyed(conv, pass, PROFILE_PASSPHRASE_LEN, qemu_img_precreate, &pc, &err);
        secret_wipe(pass, sizeof pass);
        unlink(raw);
        if (r < 0) {
                *ret_error = xasprintf("qemu-img convert: %s", err && *err ? err : strerror(-r));
                unlink(tmp);
                return r;
        }
        /* The dirty bitmap from the start: the first backup reads all, the next ones what changed. */
        if ((r = profile_bitmap(qemu_img, tmp, key, PROFILE_BITMAP_ADD, ret_error)) < 0) {
                unlink(tmp);
                return r;
        }
        if (rename(tmp, path) < 0) {
                r = -errno;
                *ret_error = xasprintf("%s: %s", path, strerror(-r));
                unlink(tmp);
                return r;
        }
        return 0;
}

int profile_disk_grow(const char *qemu_img, const char *path, uint64_t size, const uint8_t key[PROFILE_KEY_LEN],
                      char **ret_error)
{
        *ret_error = NULL;
        if (size % 4096 || path[0] != '/' || strchr(path, ',')) {
                *ret_error = xasprintf("%s: cannot grow to %llu bytes", path, (unsigned long long)size);
                return -EINVAL;
        }
        _cleanup_free_ char *opts = xasprintf("driver=qcow2,file.driver=file,file.filename=%s,encrypt.key-secret=sec0",
                                              path);
        _cleanup_free_ char *size_arg = xasprintf("%llu", (unsigned long long)size);
        const char *argv[] = { qemu_img, "resize", "-q", "--object", "secret,id=sec0,file=/dev/fd/3,format=raw",
                               "--image-opts", opts, size_arg, NULL };
        char pass[PROFILE_PASSPHRASE_LEN + 1];
        profile_passphrase(key, pass);
        _cleanup_free_ char *err = NULL;
        int r = qemu_img_run_keyed(argv, pass, PROFILE_PASSPHRASE_LEN, NULL, NULL, &err);
        secret_wipe(pass, sizeof pass);
        if (r < 0)
                *ret_error = xasprintf("qemu-img resize: %s", err && *err ? err : strerror(-r));
        return r;
}

int profile_disk_create_blank(const char *qemu_img, const char *path, uint64_t size, const uint8_t key[PROFILE_KEY_LEN],
                              uid_t owner, gid_t group, char **ret_error)
{
        *ret_error = NULL;
        _cleanup_free_ char *size_arg = xasprintf("%llu", (unsigned long long)size);
        const char *argv[] = { qemu_img, "create", "-q", "-f", "qcow2", "-o",
                               "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", "--object",
                               "secret,id=sec0,file=/dev/fd/3,format=raw", path, size_arg, NULL };
        char pass[PROFILE_PASSPHRASE_LEN + 1];
        profile_passphrase(key, pass);
        QemuImgPrecreate pc = { path, owner, group };
        _cleanup_free_ char *err = NULL;
        int r = qemu_img_run_keyed(argv, pass, PROFILE_PASSPHRASE_LEN, qemu_img_precreate, &pc, &err);
        secret_wipe(pass, sizeof pass);
        if (r < 0) {
                *ret_error = xasprintf("qemu-img create: %s", err && *err ? err : strerror(-r));
                unlink(path);
        }
        return r;
}

/* ---- spares ---- */

static char *spare_prefix(uint64_t size) { return xasprintf("spare-%lluM-", (unsigned long long)(size >> 20)); }

int profile_spare_make(const char *qemu_img, const char *dir, uint64_t size, const uint8_t host[PROFILE_KEY_LEN],
                       uid_t owner, gid_t group, char **ret_error)
{
        *ret_error = NULL;
        mkdir_p(dir, 0700);
        /* What a make cut short (slated killed) left: its hidden temporary files. */
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d)))
                if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp")) {
                        _cleanup_free_ char *p = xasprintf("%s/%s", dir, e->d_name);
                        unlink(p);
                }
        if (d)
                closedir(d);
        uint8_t rnd[6], key[PROFILE_KEY_LEN];
        char hex[13];
        random_bytes(rnd, sizeof rnd);
        hex_encode(rnd, sizeof rnd, hex);
        _cleanup_free_ char *prefix = spare_prefix(size);
        _cleanup_free_ char *base = xasprintf("%s%s.qcow2", prefix, hex);
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, base);
        _cleanup_free_ char *tmp = xasprintf("%s/.%s.tmp", dir, base);
        _cleanup_free_ char *keyfile = xasprintf("%s/%s.key", dir, base);
        random_bytes(key, sizeof key);
        int r = profile_disk_create(qemu_img, NULL, tmp, size, key, owner, group, ret_error);
        if (r == 0) {
                _cleanup_free_ char *aad = xasprintf("spare:%s", base);
                _cleanup_free_ char *w = profile_key_wrap(host, aad, key);
                /* The key first, then the disk under its name: a disk that is listed has its key. */
                r = write_file_atomic(keyfile, w, strlen(w), 0600);
                if (r == 0 && rename(tmp, path) < 0)
                        r = -errno;
                if (r < 0) {
                        *ret_error = xasprintf("storing the spare: %s", strerror(-r));
                        unlink(keyfile);
                        unlink(tmp);
                }
        }
        secret_wipe(key, sizeof key);
        return r;
}

unsigned profile_spare_count(const char *dir, uint64_t size)
{
        _cleanup_free_ char *prefix = spare_prefix(size);
        DIR *d = opendir(dir);
        unsigned n = 0;
        struct dirent *e;
        while (d && (e = readdir(d))) {
                size_t l = strlen(e->d_name);
                if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && l > 6 && strcmp(e->d_name + l - 6, ".qcow2") == 0)
                        n++;
        }
        if (d)
                closedir(d);
        return n;
}

int profile_spare_claim(const char *dir, uint64_t size, const uint8_t host[PROFILE_KEY_LEN], const char *path,
                        uint8_t key[PROFILE_KEY_LEN])
{
        _cleanup_free_ char *prefix = spare_prefix(size);
        DIR *d = opendir(dir);
        struct dirent *e;
        int r = -ENOENT;
        while (d && r < 0 && (e = readdir(d))) {
                size_t l = strlen(e->d_name);
                if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || l <= 6 || strcmp(e->d_name + l - 6, ".qcow2") != 0)
                        continue;
                _cleanup_free_ char *src = xasprintf("%s/%s", dir, e->d_name);
                _cleanup_free_ char *keyfile = xasprintf("%s.key", src);
                _cleanup_free_ char *w = NULL;
                size_t n;
                if (read_file_max(keyfile, PROFILE_WRAPPED_MAX, &w, &n) < 0)
                        continue;
                _cleanup_free_ char *aad = xasprintf("spare:%s", e->d_name);
                if (profile_key_unwrap(host, aad, w, key) < 0)
                        continue;       /* another host key's spare: not ours to use */
                /* The rename is the claim: two claims never get one disk. */
                if (rename(src, path) < 0) {
                        secret_wipe(key, PROFILE_KEY_LEN);
                        continue;
                }
                unlink(keyfile);
                r = 0;
        }
        if (d)
                closedir(d);
        return r;
}

int profile_bitmap(const char *qemu_img, const char *path, const uint8_t key[PROFILE_KEY_LEN], ProfileBitmapOp op,
                   char **ret_error)
{
        *ret_error = NULL;
        _cleanup_free_ char *opts =
                xasprintf("driver=qcow2,file.driver=file,file.filename=%s,encrypt.key-secret=sec0", path);
        char pass[PROFILE_PASSPHRASE_LEN + 1];
        profile_passphrase(key, pass);
        int r = 0;
        _cleanup_free_ char *err = NULL;
        if (op == PROFILE_BITMAP_RESET) {
                const char *rm[] = { qemu_img, "bitmap", "--object", "secret,id=sec0,file=/dev/fd/3,format=raw",
                                     "--image-opts", "--remove", opts, PROFILE_BITMAP, NULL };
                qemu_img_run_keyed(rm, pass, PROFILE_PASSPHRASE_LEN, NULL, NULL, &err);     /* may not exist */
                free(err);
                err = NULL;
        }
        bool clear = op == PROFILE_BITMAP_CLEAR;
        const char *what = clear ? "--clear" : "--add";
        const char *argv[16];
        size_t a = 0;
        argv[a++] = qemu_img;
        argv[a++] = "bitmap";
        argv[a++] = "--object";
        argv[a++] = "secret,id=sec0,file=/dev/fd/3,format=raw";
        argv[a++] = "--image-opts";
        argv[a++] = what;
        if (!clear) {
                argv[a++] = "--granularity";
                argv[a++] = "4096";
        }
        argv[a++] = opts;
        argv[a++] = PROFILE_BITMAP;
        argv[a] = NULL;
        r = qemu_img_run_keyed(argv, pass, PROFILE_PASSPHRASE_LEN, NULL, NULL, &err);
        secret_wipe(pass, sizeof pass);
        if (r < 0)
                *ret_error = xasprintf("qemu-img bitmap %s: %s", what, err && *err ? err : strerror(-r));
        return r;
}
