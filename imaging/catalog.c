/* Golden image store. Everything slow or hostile happens in a staging dir under image_dir (same
 * filesystem, so commit is an atomic rename); a failed publish leaves nothing behind. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/log.h"
#include "common/util.h"
#include "imaging/catalog.h"

/* A boot kernel or initrd bigger than this is not a kernel. */
#define BOOT_FILE_MAX (512ull << 20)

static int copy_boot_file(const char *src, const char *dst, char **ret_error)
{
        _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
        if (in < 0) {
                *ret_error = xasprintf("%s: %s", src, strerror(errno));
                return -errno;
        }
        struct stat st;
        if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > BOOT_FILE_MAX || st.st_size == 0) {
                *ret_error = xasprintf("%s: not a regular file of at most 512 MiB", src);
                return -EINVAL;
        }
        _cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
        if (out < 0) {
                *ret_error = xasprintf("%s: %s", dst, strerror(errno));
                return -errno;
        }
        char buf[1 << 16];
        for (;;) {
                ssize_t n = read(in, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        *ret_error = xasprintf("%s: read: %s", src, strerror(errno));
                        return -errno;
                }
                if (n == 0)
                        break;
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(out, buf + off, (size_t)(n - off));
                        if (w < 0) {
                                *ret_error = xasprintf("%s: write: %s", dst, strerror(errno));
                                return -errno;
                        }
                        off += w;
                }
        }
        if (fsync(out) < 0) {
                *ret_error = xasprintf("%s: fsync: %s", dst, strerror(errno));
                return -errno;
        }
        return 0;
}

void catalog_staged_free(CatalogStaged *s)
{
        if (!s)
                return;
        if (s->dir)
                rm_rf(s->dir);
        free(s->dir);
        free(s);
}

int catalog_staging_new(const char *image_dir, CatalogStaged **ret, char **ret_error)
{
        uint8_t rnd[6];
        char hex[13];
        random_bytes(rnd, sizeof rnd);
        hex_encode(rnd, sizeof rnd, hex);
        CatalogStaged *s = xmalloc0(sizeof *s);
        s->dir = xasprintf("%s/.staging-%s", image_dir, hex);
        if (mkdir(s->dir, 0755) < 0) {
                int r = -errno;
                *ret_error = xasprintf("%s: %s", s->dir, strerror(errno));
                free(s->dir);
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int catalog_staged_add_boot(CatalogStaged *s, const char *kernel, const char *initrd, char **ret_error)
{
        int r;
        if (kernel) {
                _cleanup_free_ char *k = xasprintf("%s/vmlinux", s->dir);
                if ((r = copy_boot_file(kernel, k, ret_error)) < 0)
                        return r;
                s->has_kernel = true;
        }
        if (initrd) {
                _cleanup_free_ char *i = xasprintf("%s/initrd", s->dir);
                if ((r = copy_boot_file(initrd, i, ret_error)) < 0)
                        return r;
                s->has_initrd = true;
        }
        return 0;
}

int catalog_staged_finish(CatalogStaged *s, char **ret_error)
{
        _cleanup_free_ char *disk = xasprintf("%s/disk.qcow2", s->dir);
        struct stat st;
        int r;
        if (stat(disk, &st) < 0) {
                r = -errno;
                *ret_error = xasprintf("%s: %s", disk, strerror(errno));
                return r;
        }
        s->size = (uint64_t)st.st_size;
        if ((r = image_sha256(disk, s->sha256)) < 0) {
                *ret_error = xasprintf("hashing %s: %s", disk, strerror(-r));
                return r;
        }
        return 0;
}

int catalog_stage(const char *qemu_img, const char *image_dir, const char *src, const char *kernel,
                  const char *initrd, CatalogStaged **ret, char **ret_error)
{
        CatalogStaged *s;
        int r = catalog_staging_new(image_dir, &s, ret_error);
        if (r < 0)
                return r;
        _cleanup_free_ char *disk = xasprintf("%s/disk.qcow2", s->dir);
        if ((r = image_probe(qemu_img, src, &s->info, ret_error)) < 0 ||
            (r = image_import(qemu_img, src, &s->info, disk, ret_error)) < 0 ||
            (r = catalog_staged_add_boot(s, kernel, initrd, ret_error)) < 0 ||
            (r = catalog_staged_finish(s, ret_error)) < 0) {
                catalog_staged_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int catalog_commit(CatalogStaged *s, const char *image_dir, const char *name, int version, char **ret_disk,
                   char **ret_kernel, char **ret_initrd)
{
        _cleanup_free_ char *parent = xasprintf("%s/%s", image_dir, name);
        _cleanup_free_ char *dest = xasprintf("%s/v%d", parent, version);
        if (mkdir(parent, 0755) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "image store %s: %m", parent);
        if (rename(s->dir, dest) < 0)
                return log_error_errno(-errno, "image store: rename %s → %s: %m", s->dir, dest);
        chmod(dest, 0555);
        free(s->dir);
        s->dir = NULL;
        *ret_disk = xasprintf("%s/disk.qcow2", dest);
        *ret_kernel = s->has_kernel ? xasprintf("%s/vmlinux", dest) : NULL;
        *ret_initrd = s->has_initrd ? xasprintf("%s/initrd", dest) : NULL;
        return 0;
}

int catalog_remove(const char *image_dir, const char *name, int version)
{
        _cleanup_free_ char *dir = xasprintf("%s/%s/v%d", image_dir, name, version);
        chmod(dir, 0755);
        return rm_rf(dir);
}
