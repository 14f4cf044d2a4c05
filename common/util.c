/* Shared helpers. Keep each one small and free of logging. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>
#include "common/cleanup.h"
#include "common/util.h"

char *xasprintf(const char *fmt, ...)
{
        va_list ap;
        char *s;
        va_start(ap, fmt);
        int r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                abort();
        return s;
}

void *xmalloc0(size_t n)
{
        void *p = calloc(1, n ? n : 1);
        if (!p)
                abort();
        return p;
}

void *xrealloc(void *p, size_t n)
{
        void *q = realloc(p, n ? n : 1);
        if (!q)
                abort();
        return q;
}

char *xstrdup(const char *s)
{
        char *p = strdup(s);
        if (!p)
                abort();
        return p;
}

int mkdir_p(const char *path, mode_t mode)
{
        char buf[PATH_MAX];
        if (strlen(path) >= sizeof buf)
                return -ENAMETOOLONG;
        strcpy(buf, path);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(buf, mode) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Deep enough for any tree we make (run dirs, staging, captured app files); one fd per level. */
#define RM_RF_DEPTH_MAX 256

/* Empties the directory open at dfd (closed here). Works only through directory fds: an entry is
 * looked at with fstatat(AT_SYMLINK_NOFOLLOW), opened with O_NOFOLLOW and removed with unlinkat,
 * so a symlink swapped in for a subdirectory mid-walk is removed as a link, never followed; a
 * directory on another filesystem (st_dev) is left alone. Goes on past errors; returns the first. */
static int rm_rf_children(int dfd, dev_t dev, unsigned depth)
{
        DIR *d = fdopendir(dfd);
        if (!d) {
                int r = -errno;
                close(dfd);
                return r;
        }
        int ret = 0;
        struct dirent *de;
        for (errno = 0; (de = readdir(d)); errno = 0) {
                const char *n = de->d_name;
                if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
                        continue;
                struct stat st;
                int r = 0;
                if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT && ret == 0)
                                ret = -errno;
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        if (st.st_dev != dev)
                                r = -EXDEV;
                        else if (depth >= RM_RF_DEPTH_MAX)
                                r = -ELOOP;
                        else {
                                int cfd = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                                struct stat cst;
                                if (cfd < 0)
                                        r = -errno;
                                /* Swapped for another directory since fstatat: not the one we saw. */
                                else if (fstat(cfd, &cst) < 0 || cst.st_dev != st.st_dev || cst.st_ino != st.st_ino) {
                                        close(cfd);
                                        r = -EBUSY;
                                } else
                                        r = rm_rf_children(cfd, dev, depth + 1);
                                if (unlinkat(dirfd(d), n, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                                        r = -errno;
                        }
                } else if (unlinkat(dirfd(d), n, 0) < 0 && errno != ENOENT)
                        r = -errno;
                if (r < 0 && ret == 0)
                        ret = r;
        }
        if (errno != 0 && ret == 0)
                ret = -errno;
        closedir(d);
        return ret;
}

int rm_rf(const char *path)
{
        struct stat st;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISDIR(st.st_mode))
                return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        struct stat fst;
        if (fstat(fd, &fst) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        int r = rm_rf_children(fd, fst.st_dev, 1);
        if (rmdir(path) < 0 && errno != ENOENT && r == 0)
                r = -errno;
        return r;
}

int read_file_max(const char *path, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
                return -EFBIG;
        size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096, len = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len + 1 >= cap) {
                        if (cap > max)
                                return -EFBIG;
                        char *n = realloc(buf, cap * 2);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        cap *= 2;
                }
                ssize_t k = read(fd, buf + len, cap - len - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t)k;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
        _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
        /* The directory may be someone else's (a VM's run dir) and the name is guessable: a file
         * or symlink found there is removed, never written through. */
        if (unlink(tmp) < 0 && errno != ENOENT)
                return -errno;
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        const char *p = data;
        while (len > 0) {
                ssize_t k = write(fd, p, len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int e = -errno;
                        unlink(tmp);
                        return e;
                }
                p += k;
                len -= (size_t)k;
        }
        if (fsync(fd) < 0 || rename(tmp, path) < 0) {
                int e = -errno;
                unlink(tmp);
                return e;
        }
        return 0;
}

int random_bytes(void *buf, size_t n)
{
        uint8_t *p = buf;
        while (n > 0) {
                ssize_t k = getrandom(p, n, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

void hex_encode(const uint8_t *in, size_t n, char *out)
{
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * n] = 0;
}

void secret_wipe(void *p, size_t n)
{
        if (p)
                explicit_bzero(p, n);
}

uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t now_realtime_s(void) { return (uint64_t)time(NULL); }

bool string_is_name(const char *s, size_t max)
{
        size_t n = strlen(s);
        if (n == 0 || n > max)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
                        return false;
        }
        return true;
}

int parse_size(const char *s, uint64_t *ret)
{
        char *end;
        if (!*s || *s == '-')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s)
                return -EINVAL;
        uint64_t mul = 1;
        if (*end) {
                switch (*end) {
                case 'k': case 'K': mul = 1ULL << 10; break;
                case 'm': case 'M': mul = 1ULL << 20; break;
                case 'g': case 'G': mul = 1ULL << 30; break;
                case 't': case 'T': mul = 1ULL << 40; break;
                default: return -EINVAL;
                }
                end++;
                if (*end == 'i')
                        end++;
                if (*end == 'B' || *end == 'b')
                        end++;
                if (*end)
                        return -EINVAL;
        }
        if (v > UINT64_MAX / mul)
                return -ERANGE;
        *ret = v * mul;
        return 0;
}

int parse_uint(const char *s, unsigned max, unsigned *ret)
{
        char *end;
        if (!*s || *s == '-' || *s == '+')
                return -EINVAL;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || *end || end == s)
                return -EINVAL;
        if (v > max)
                return -ERANGE;
        *ret = (unsigned)v;
        return 0;
}

int fs_is_tmpfs(const char *path)
{
        struct statfs sf;
        if (statfs(path, &sf) < 0)
                return -errno;
        return sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC;
}

void strv_free(char **v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

int proc_cpu_ms(pid_t pid, uint64_t *ret_ms)
{
        char path[64], *buf = NULL;
        size_t len;
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        int r = read_file_max(path, 4096, &buf, &len);
        if (r < 0)
                return r;
        /* The name (field 2) is in parentheses and may hold anything: count from the last ')'. */
        const char *p = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        r = p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2 ? 0 : -EBADMSG;
        free(buf);
        if (r < 0)
                return r;
        long hz = sysconf(_SC_CLK_TCK);
        *ret_ms = (ut + st) * 1000 / (uint64_t)(hz > 0 ? hz : 100);
        return 0;
}
