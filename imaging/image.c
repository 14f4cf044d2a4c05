/* Golden image files as an administrator publishes them: hostile input. qemu-img looks at them
 * only in its sandbox (the one file, read-only, by an fd opened here) and under CPU/memory limits;
 * anything that would make QEMU read another host file (backing file, qcow2 data file, vmdk
 * extent) is refused as well; imports leave nothing behind. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "common/cleanup.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "common/util.h"
#include "imaging/image.h"
#include "imaging/qemu_img.h"

/* `info` and `check` parse headers and metadata tables: 1 GiB and 30 s CPU are far beyond what an
 * honest image needs and stop a crafted one from eating the host. */
#define PROBE_LIMIT_AS (1ULL << 30)
#define PROBE_LIMIT_CPU_S 30
/* convert runs up to 64 I/O threads whose stacks and malloc arenas count against RLIMIT_AS: a
 * vmdk→qcow2 convert aborted at 1 GiB ("qemu_thread_create"), so it gets 4 GiB. No CPU limit:
 * its time grows with the image, and probe has already parsed the file under limits. */
#define CONVERT_LIMIT_AS (4ULL << 30)
/* qemu-img calls every file it does not recognise "raw" (a text file, a tarball, random bytes),
 * so "raw" alone says nothing. A real raw disk is a whole number of 512-byte sectors and holds at
 * least a partition table and a filesystem: anything smaller or oddly sized is refused. */
#define RAW_MIN_SIZE (1ULL << 20)
#define SHA256_CHUNK (1U << 20)

static const char *const supported_formats[] = { "qcow2", "raw", "vmdk", "vdi", "vhdx" };

static bool format_supported(const char *f)
{
        for (size_t i = 0; i < ELEMENTSOF(supported_formats); i++)
                if (strcmp(f, supported_formats[i]) == 0)
                        return true;
        return false;
}

/* qemu-img messages repeat "qemu-img: <path>: "; keep the first line, which says what failed. */
static char *first_line(const char *s)
{
        size_t n = strcspn(s, "\n");
        return xasprintf("%.*s", (int)n, s);
}

/* Set *ret_error, log once with the file's name, return r. */
static int probe_fail(int r, const char *path, char **ret_error, char *msg)
{
        log_error("image %s: %s", path, msg);
        *ret_error = msg;
        return r;
}

/* A string qemu-img copied from the file, for an error message: control bytes escaped (it goes
 * to the log and to the admin's terminal) and cut to about NAME_SHOW_MAX bytes. */
#define NAME_SHOW_MAX 256
static char *hostile_name(json_object *s)
{
        const char *p = json_object_get_string(s);
        size_t n = (size_t)json_object_get_string_len(s), i;
        char *out = xmalloc0(NAME_SHOW_MAX + sizeof "\\xff..."), *o = out;
        for (i = 0; i < n && o - out < NAME_SHOW_MAX; i++) {
                unsigned char c = (unsigned char)p[i];
                if (c < 0x20 || c == 0x7f)
                        o += sprintf(o, "\\x%02x", c);
                else
                        *o++ = (char)c;
        }
        strcpy(o, i < n ? "..." : "");
        return out;
}

/* The string value of key, or NULL when absent, null or not a string. */
static json_object *get_string_obj(json_object *o, const char *key)
{
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return v;
}

/* Every part of the image must live in the file itself: a vmdk descriptor can name any host
 * file as a flat extent, and qemu-img would read it as disk content. Returns the message's
 * name for the first foreign extent, or NULL. */
static char *vmdk_foreign_extent(json_object *info, const char *abs)
{
        json_object *fs, *data, *extents;
        if (!json_object_object_get_ex(info, "format-specific", &fs) ||
            !json_object_object_get_ex(fs, "data", &data) ||
            !json_object_object_get_ex(data, "extents", &extents) ||
            !json_object_is_type(extents, json_type_array))
                return NULL;
        size_t abs_len = strlen(abs);
        for (size_t i = 0; i < json_object_array_length(extents); i++) {
                json_object *f = get_string_obj(json_object_array_get_idx(extents, i), "filename");
                if (!f)
                        return xstrdup("(unnamed extent)");
                /* By length too: "\u0000" in a JSON string must not cut the comparison short. */
                if ((size_t)json_object_get_string_len(f) != abs_len ||
                    memcmp(json_object_get_string(f), abs, abs_len) != 0)
                        return hostile_name(f);
        }
        return NULL;
}

static json_object *qcow2_data_file(json_object *info)
{
        json_object *fs, *data;
        if (!json_object_object_get_ex(info, "format-specific", &fs) ||
            !json_object_object_get_ex(fs, "data", &data))
                return NULL;
        return get_string_obj(data, "data-file");
}

static int info_fail(int r, char **ret_error, char *msg)
{
        if (ret_error)
                *ret_error = msg;
        else
                free(msg);
        return r;
}

int image_info_check(const char *json, size_t len, const char *abs_path, uint64_t file_size, ImageInfo *ret,
                     char **ret_error)
{
        if (ret_error)
                *ret_error = NULL;
        /* qemu-img writes one JSON object and a newline, never a NUL byte. */
        if (len > IMAGE_INFO_JSON_MAX || memchr(json, '\0', len))
                return info_fail(-EBADMSG, ret_error, xasprintf("qemu-img info gave unexpected output"));
        /* Parsed with an explicit nesting limit: the nesting qemu-img writes is shallow, and junk
         * nested deeper is refused before it costs anything. */
        json_tokener *tok = json_tokener_new_ex(32);
        if (!tok)
                return info_fail(-ENOMEM, ret_error, xasprintf("out of memory"));
        _cleanup_json_ json_object *info = json_tokener_parse_ex(tok, json, (int)len);
        size_t end = json_tokener_get_parse_end(tok);
        bool complete = json_tokener_get_error(tok) == json_tokener_success;
        json_tokener_free(tok);
        /* Nothing but whitespace may follow the object. */
        if (complete)
                for (size_t i = end; i < len; i++)
                        if (!strchr(" \t\r\n", json[i]))
                                complete = false;

        const char *format;
        int64_t vsize;
        if (!info || !complete || !json_object_is_type(info, json_type_object) ||
            jsonx_get_string(info, "format", &format) < 0 || jsonx_get_int64(info, "virtual-size", &vsize) < 0)
                return info_fail(-EBADMSG, ret_error, xasprintf("qemu-img info gave unexpected output"));

        if (!format_supported(format)) {
                _cleanup_free_ char *name = hostile_name(get_string_obj(info, "format"));
                return info_fail(-EINVAL, ret_error,
                                 xasprintf("unsupported image format %s (use qcow2, raw, vmdk, vdi or vhdx)", name));
        }
        /* Any backing-filename, even one that is not a string, means QEMU would open another file. */
        json_object *backing;
        if (json_object_object_get_ex(info, "backing-filename", &backing) &&
            !json_object_is_type(backing, json_type_null)) {
                _cleanup_free_ char *name = json_object_is_type(backing, json_type_string) ?
                        hostile_name(backing) : xstrdup("?");
                return info_fail(-EINVAL, ret_error,
                                 xasprintf("refusing an image with a backing file (%s): publish a flattened image",
                                           name));
        }
        bool encrypted = false;
        if (jsonx_get_bool(info, "encrypted", &encrypted) == 0 && encrypted)
                return info_fail(-EINVAL, ret_error, xasprintf("refusing an encrypted image: publish it decrypted"));
        json_object *df = qcow2_data_file(info);
        if (df) {
                _cleanup_free_ char *name = hostile_name(df);
                return info_fail(-EINVAL, ret_error,
                                 xasprintf("refusing a qcow2 with an external data file (%s): publish a "
                                           "self-contained image", name));
        }
        _cleanup_free_ char *ext = vmdk_foreign_extent(info, abs_path);
        if (ext)
                return info_fail(-EINVAL, ret_error,
                                 xasprintf("refusing a vmdk that refers to another file (%s): publish a "
                                           "single-file image", ext));
        if (strcmp(format, "raw") == 0 && (file_size % 512 != 0 || file_size < RAW_MIN_SIZE))
                return info_fail(-EINVAL, ret_error,
                                 xasprintf("not a disk image: no known format, and at %ju bytes it is not "
                                           "sized like a raw disk (a multiple of 512, at least 1 MiB)",
                                           (uintmax_t)file_size));
        if (vsize <= 0)
                return info_fail(-EINVAL, ret_error, xasprintf("not a disk image: virtual size is 0"));

        memset(ret, 0, sizeof *ret);
        snprintf(ret->format, sizeof ret->format, "%s", format);
        ret->virtual_size = (uint64_t)vsize;
        ret->file_size = file_size;
        return 0;
}

static int qcow2_check(const char *qemu_img, int fd, const char *path, char **ret_error)
{
        const char *argv[] = { qemu_img, "check", "-f", "qcow2", QEMU_IMG_INPUT, NULL };
        QemuImgSandbox sb = { .input_fd = fd };
        QemuImgRun opts = { .fd3 = -1, .limit_as = PROBE_LIMIT_AS, .limit_cpu_s = PROBE_LIMIT_CPU_S, .sandbox = &sb };
        _cleanup_free_ char *err = NULL;
        int r = qemu_img_run(argv, &opts, NULL, &err);
        /* Exit 3: only leaked clusters. Wasted space, not damage; import compacts it away. */
        if (r == -EIO && opts.exit_code == 3) {
                log_info("image %s: qcow2 has leaked clusters (harmless; import drops them)", path);
                return 0;
        }
        if (r < 0) {
                _cleanup_free_ char *line = first_line(err);
                return probe_fail(r == -EIO ? -EINVAL : r, path, ret_error,
                                  xasprintf("corrupt qcow2: %s", *line ? line : "qemu-img check failed"));
        }
        return 0;
}

int image_probe(const char *qemu_img, const char *path, ImageInfo *ret, char **ret_error)
{
        _cleanup_free_ char *discard_error = NULL;
        if (!ret_error)
                ret_error = &discard_error;
        *ret_error = NULL;

        /* Opened once, here: qemu-img gets this file through the fd, under a name of the
         * sandbox's (never "json:{…}", "nbd://…" or "file:…" that it would parse as options or a
         * protocol), whatever the path names by then. */
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                int e = errno;
                return probe_fail(-e, path, ret_error, xasprintf("%s", strerror(e)));
        }
        if (!S_ISREG(st.st_mode))
                return probe_fail(-EINVAL, path, ret_error, xasprintf("not a regular file"));
        if (st.st_size == 0)
                return probe_fail(-EINVAL, path, ret_error, xasprintf("not a disk image: the file is empty"));

        const char *argv[] = { qemu_img, "info", "--output=json", QEMU_IMG_INPUT, NULL };
        QemuImgSandbox sb = { .input_fd = fd };
        QemuImgRun opts = { .fd3 = -1, .limit_as = PROBE_LIMIT_AS, .limit_cpu_s = PROBE_LIMIT_CPU_S,
                            .stdout_max = IMAGE_INFO_JSON_MAX, .sandbox = &sb };
        _cleanup_free_ char *out = NULL, *err = NULL;
        int r = qemu_img_run(argv, &opts, &out, &err);
        if (r < 0) {
                _cleanup_free_ char *line = first_line(err);
                return probe_fail(r == -EIO ? -EINVAL : r, path, ret_error, xasprintf("not a disk image: %s", line));
        }

        ImageInfo info;
        _cleanup_free_ char *msg = NULL;
        r = image_info_check(out, out ? strlen(out) : 0, QEMU_IMG_INPUT, (uint64_t)st.st_size, &info, &msg);
        if (r < 0)
                return probe_fail(r, path, ret_error, TAKE_PTR(msg));
        if (strcmp(info.format, "qcow2") == 0) {
                r = qcow2_check(qemu_img, fd, path, ret_error);
                if (r < 0)
                        return r;
        }
        *ret = info;
        return 0;
}

static int fsync_path(const char *path, int flags)
{
        _cleanup_close_ int fd = open(path, flags | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

static char *dir_of(const char *path)
{
        const char *slash = strrchr(path, '/');
        return slash == path ? xstrdup("/") : xasprintf("%.*s", (int)(slash - path), path);
}

#define CONVERT_OUT "disk.qcow2"

/* What the sandboxed convert wrote in outdir becomes partial: a regular file with one link,
 * slated's own, 0444. Nothing of the sandbox runs any more (its PID namespace died with it). */
static int take_output(const char *outdir, const char *partial)
{
        _cleanup_free_ char *out = xasprintf("%s/" CONVERT_OUT, outdir);
        _cleanup_close_ int fd = open(out, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
                return -EINVAL;
        if (fchown(fd, getuid(), getgid()) < 0 || fchmod(fd, 0444) < 0 || fsync(fd) < 0)
                return -errno;
        if (rename(out, partial) < 0)
                return -errno;
        return 0;
}

/* Convert into place; on failure the partial file is gone and *ret_error says why. */
static int import_to_partial(const char *qemu_img, int fd, const ImageInfo *info, const char *partial,
                             char **ret_error)
{
        /* The sandbox writes only here; made fresh, emptied and removed whatever happens. */
        _cleanup_free_ char *outdir = xasprintf("%s.out", partial);
        (void)rm_rf(outdir);
        if (mkdir(outdir, 0700) < 0) {
                int e = errno;
                *ret_error = xasprintf("%s: %s", outdir, strerror(e));
                return -e;
        }
        /* Always -f: on a write path qemu-img must never guess the format (a raw file that looks
         * like a qcow2 header would be interpreted instead of copied). */
        const char *argv[] = { qemu_img, "convert", "-q", "-f", info->format, "-O", "qcow2", QEMU_IMG_INPUT,
                               QEMU_IMG_OUTPUT_DIR "/" CONVERT_OUT, NULL };
        QemuImgSandbox sb = { .input_fd = fd, .output_dir = outdir };
        QemuImgRun opts = { .fd3 = -1, .limit_as = CONVERT_LIMIT_AS, .sandbox = &sb };
        _cleanup_free_ char *err = NULL;
        int r = qemu_img_run(argv, &opts, NULL, &err);
        if (r < 0) {
                (void)rm_rf(outdir);
                *ret_error = xasprintf("qemu-img convert: %s", err);
                return r == -EIO ? -EINVAL : r;
        }
        r = take_output(outdir, partial);
        (void)rm_rf(outdir);
        if (r < 0) {
                *ret_error = xasprintf("%s: %s", partial, strerror(-r));
                return r;
        }
        /* What we publish must itself pass the checks: standalone qcow2, consistent. */
        ImageInfo out;
        _cleanup_free_ char *perr = NULL;
        r = image_probe(qemu_img, partial, &out, &perr);
        if (r == 0 && strcmp(out.format, "qcow2") != 0)
                r = -EINVAL;
        if (r < 0) {
                *ret_error = xasprintf("converted image failed its check: %s", perr ? perr : out.format);
                return r;
        }
        return 0;
}

int image_import(const char *qemu_img, const char *path, const ImageInfo *info, const char *dest,
                 char **ret_error)
{
        _cleanup_free_ char *discard_error = NULL;
        if (!ret_error)
                ret_error = &discard_error;
        *ret_error = NULL;

        if (!info || !format_supported(info->format)) {
                *ret_error = xasprintf("unsupported source format %s", info ? info->format : "(none)");
                return log_error_errno(-EINVAL, "image %s: %s", path, *ret_error);
        }
        if (!dest || dest[0] != '/') {
                *ret_error = xasprintf("destination %s is not an absolute path", dest ? dest : "(null)");
                return log_error_errno(-EINVAL, "image %s: %s", path, *ret_error);
        }
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                int e = errno;
                *ret_error = xasprintf("%s", strerror(e));
                return log_error_errno(-e, "image %s: %s", path, *ret_error);
        }
        struct stat st;
        if (lstat(dest, &st) == 0) {
                *ret_error = xasprintf("%s already exists (image versions are never overwritten)", dest);
                return log_error_errno(-EEXIST, "image %s: %s", path, *ret_error);
        }

        _cleanup_free_ char *partial = xasprintf("%s.partial", dest);
        _cleanup_free_ char *dir = dir_of(dest);
        /* A partial left by a crash is ours and worthless; qemu-img must not write through a
         * symlink planted there either. */
        (void)unlink(partial);
        int r = import_to_partial(qemu_img, fd, info, partial, ret_error);
        if (r == 0 && renameat2(AT_FDCWD, partial, AT_FDCWD, dest, RENAME_NOREPLACE) < 0) {
                r = -errno;
                *ret_error = xasprintf("rename to %s: %s", dest, strerror(-r));
        }
        if (r < 0) {
                (void)unlink(partial);
                log_error("image %s: import to %s: %s", path, dest, *ret_error);
                return r;
        }
        r = fsync_path(dir, O_RDONLY | O_DIRECTORY);
        if (r < 0)
                log_warn("image %s: fsync %s: %s", dest, dir, strerror(-r));
        log_info("image %s: imported as %s (%s, %ju bytes virtual)", path, dest, info->format,
                 (uintmax_t)info->virtual_size);
        return 0;
}

int image_sha256(const char *path, char ret[IMAGE_SHA256_HEX + 1])
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(-errno, "image %s: %s", path, strerror(errno));
        _cleanup_free_ uint8_t *buf = malloc(SHA256_CHUNK);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int r = 0;
        if (!buf || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
                r = log_error_errno(-ENOMEM, "image %s: cannot set up SHA-256", path);
        while (r == 0) {
                ssize_t k = read(fd, buf, SHA256_CHUNK);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = log_error_errno(-errno, "image %s: read: %s", path, strerror(errno));
                        break;
                }
                if (k == 0)
                        break;
                if (EVP_DigestUpdate(ctx, buf, (size_t)k) != 1)
                        r = log_error_errno(-EIO, "image %s: SHA-256 update failed", path);
        }
        uint8_t md[32];
        unsigned mdlen = 0;
        if (r == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != sizeof md))
                r = log_error_errno(-EIO, "image %s: SHA-256 final failed", path);
        EVP_MD_CTX_free(ctx);
        if (r == 0)
                hex_encode(md, sizeof md, ret);
        return r;
}
