/* Reading a closed profile disk for backup (profile_read.h): qemu-nbd + libnbd. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libnbd.h>
#include "common/cleanup.h"
#include "common/spawn.h"
#include "common/util.h"
#include "imaging/qemu_img.h"
#include "streaming/profile_read.h"

#define NBD_SOCKET "nbd.sock"
#define NBD_START_MS 10000      /* qemu-nbd opens the image (LUKS: ~10 ms of PBKDF2) and listens */
#define NBD_READ_MAX (32u << 20) /* qemu-nbd's largest request */
#define DIRTY_CONTEXT "qemu:dirty-bitmap:" PROFILE_BITMAP
#define ALLOC_CONTEXT "base:allocation"
#define NBD_FLAG_DIRTY 1u       /* qemu:dirty-bitmap: the block was written */
#define NBD_FLAG_ZERO 2u        /* base:allocation: NBD_STATE_ZERO, reads as zeros */

struct ProfileReader {
        struct nbd_handle *nbd;
        pid_t pid;
        int err_fd;             /* qemu-nbd's stderr: kept open (a closed pipe would kill it on a warning) */
        char *sock;
        uint64_t size;
};

static char *image_opts(const char *path)
{
        return xasprintf("driver=qcow2,file.driver=file,file.filename=%s,encrypt.key-secret=sec0", path);
}

/* qemu-nbd on the image, the passphrase on fd 3; with_bitmap: exporting the dirty bitmap too. */
static int nbd_start(const char *qemu_nbd, const char *path, const char *pass, const char *sock, bool with_bitmap,
                     bool writable, pid_t *ret_pid, int *ret_err_fd, char **ret_error)
{
        _cleanup_free_ char *opts = image_opts(path);
        const char *argv[16];
        size_t a = 0;
        argv[a++] = qemu_nbd;
        if (!writable)
                argv[a++] = "--read-only";
        argv[a++] = "--object";
        argv[a++] = "secret,id=sec0,file=/dev/fd/3,format=raw";
        argv[a++] = "--socket";
        argv[a++] = sock;
        if (with_bitmap) {
                argv[a++] = "--bitmap";
                argv[a++] = PROFILE_BITMAP;
        }
        argv[a++] = "--image-opts";
        argv[a++] = opts;
        argv[a] = NULL;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        ssize_t k = write(p[1], pass, strlen(pass));
        close(p[1]);
        if (k != (ssize_t)strlen(pass)) {
                close(p[0]);
                return -EIO;
        }
        int errp[2];
        if (pipe2(errp, O_CLOEXEC) < 0) {
                close(p[0]);
                return -errno;
        }
        SpawnOpts so = { .argv = argv, .fd3 = p[0], .new_pgroup = true, .default_signals = true,
                         .stdio = { SPAWN_STDIO_NULL, SPAWN_STDIO_NULL, SPAWN_STDIO_FD }, .stdio_fd = { -1, -1, errp[1] } };
        SpawnChild child;
        int r = spawn_start(&so, &child);
        close(p[0]);
        close(errp[1]);
        if (r < 0) {
                close(errp[0]);
                *ret_error = xasprintf("%s: %s", qemu_nbd, strerror(-r));
                return r;
        }
        /* Up when the socket is there; gone early means it refused (its stderr says why). */
        uint64_t deadline = now_ms() + NBD_START_MS;
        struct stat st;
        int status;
        while (stat(sock, &st) < 0) {
                if (spawn_wait(child.pid, WNOHANG, &status) == 1 || now_ms() >= deadline) {
                        char msg[512] = "";
                        fcntl(errp[0], F_SETFL, O_NONBLOCK);
                        ssize_t n = read(errp[0], msg, sizeof msg - 1);
                        msg[n > 0 ? n : 0] = 0;
                        msg[strcspn(msg, "\n")] = 0;
                        if (now_ms() >= deadline) {
                                kill(child.pid, SIGKILL);
                                spawn_wait(child.pid, 0, &status);
                        }
                        close(errp[0]);
                        *ret_error = xasprintf("qemu-nbd: %s", msg[0] ? msg : "did not start");
                        return -EIO;
                }
                usleep(5000);
        }
        *ret_err_fd = errp[0];
        *ret_pid = child.pid;
        return 0;
}

static void nbd_stop(pid_t pid)
{
        int status;
        if (pid <= 0)
                return;
        /* qemu-nbd ends when its one client goes; a bound all the same. */
        for (int i = 0; i < 200 && spawn_wait(pid, WNOHANG, &status) == 0; i++)
                usleep(5000);
        if (spawn_wait(pid, WNOHANG, &status) == 0) {
                kill(pid, SIGKILL);
                spawn_wait(pid, 0, &status);
        }
}

static int reader_open(const char *qemu_nbd, const char *path, const uint8_t key[PROFILE_KEY_LEN],
                       const char *sock_dir, bool writable, ProfileReader **ret, bool *ret_bitmap, char **ret_error)
{
        *ret_error = NULL;
        ProfileReader *r = xmalloc0(sizeof *r);
        r->err_fd = -1;
        r->sock = xasprintf("%s/" NBD_SOCKET, sock_dir);
        unlink(r->sock);
        char pass[PROFILE_PASSPHRASE_LEN + 1];
        profile_passphrase(key, pass);
        /* With the bitmap first; qemu-nbd refuses one that is missing or inconsistent (after it
         * made its socket, so a failed connect says so too): then without, not trusted. */
        bool bitmap = false;
        int e = -EIO;
        for (int attempt = writable ? 1 : 0; attempt < 2 && e < 0; attempt++) {
                bitmap = attempt == 0;
                free(*ret_error);
                *ret_error = NULL;
                if (r->nbd) {
                        nbd_close(r->nbd);
                        r->nbd = NULL;
                }
                nbd_stop(r->pid);
                r->pid = 0;
                if (r->err_fd >= 0)
                        close(r->err_fd);
                r->err_fd = -1;
                unlink(r->sock);
                e = nbd_start(qemu_nbd, path, pass, r->sock, bitmap, writable, &r->pid, &r->err_fd, ret_error);
                if (e < 0)
                        continue;
                /* qemu-nbd binds its socket before it listens: a connect in between is refused,
                 * so that one is tried again (a handle is spent by a failed connect). */
                uint64_t deadline = now_ms() + NBD_START_MS;
                for (;;) {
                        r->nbd = nbd_create();
                        if (r->nbd && (!bitmap || nbd_add_meta_context(r->nbd, DIRTY_CONTEXT) == 0) &&
                            nbd_add_meta_context(r->nbd, ALLOC_CONTEXT) == 0 && nbd_connect_unix(r->nbd, r->sock) == 0)
                                break;
                        int status;
                        bool refused = r->nbd && nbd_get_errno() == ECONNREFUSED;
                        bool gone = refused && spawn_wait(r->pid, WNOHANG, &status) == 1;
                        if (gone)
                                r->pid = 0;     /* reaped: nothing for nbd_stop to wait for */
                        if (!refused || gone || now_ms() >= deadline) {
                                *ret_error = xasprintf("nbd: %s", nbd_get_error() ? nbd_get_error() : "connect failed");
                                e = -EIO;
                                break;
                        }
                        nbd_close(r->nbd);
                        r->nbd = NULL;
                        usleep(5000);
                }
        }
        secret_wipe(pass, sizeof pass);
        if (e < 0)
                goto fail;
        int64_t size = nbd_get_size(r->nbd);
        if (size <= 0 || size % STORE_BLOCK) {
                *ret_error = xasprintf("nbd: the disk's size (%lld) is not whole 4 KiB blocks", (long long)size);
                e = -EIO;
                goto fail;
        }
        r->size = (uint64_t)size;
        *ret_bitmap = bitmap && nbd_can_meta_context(r->nbd, DIRTY_CONTEXT) == 1;
        *ret = r;
        return 0;
fail:
        profile_reader_close(r);
        return e;
}

int profile_reader_open(const char *qemu_nbd, const char *path, const uint8_t key[PROFILE_KEY_LEN],
                        const char *sock_dir, ProfileReader **ret, bool *ret_bitmap, char **ret_error)
{
        return reader_open(qemu_nbd, path, key, sock_dir, false, ret, ret_bitmap, ret_error);
}

int profile_writer_open(const char *qemu_nbd, const char *path, const uint8_t key[PROFILE_KEY_LEN],
                        const char *sock_dir, ProfileReader **ret, char **ret_error)
{
        bool bitmap;
        return reader_open(qemu_nbd, path, key, sock_dir, true, ret, &bitmap, ret_error);
}

int profile_writer_write(void *userdata, uint64_t offset, const void *buf, size_t len)
{
        ProfileReader *r = userdata;
        return nbd_pwrite(r->nbd, buf, len, offset, 0) < 0 ? -EIO : 0;
}

int profile_writer_flush(ProfileReader *r) { return nbd_flush(r->nbd, 0) < 0 ? -EIO : 0; }

uint64_t profile_reader_size(ProfileReader *r) { return r->size; }

static int extents(ProfileReader *r, const char *ctx, bool zero_flag, StoreExtent **ret, size_t *ret_n);

int profile_reader_dirty(ProfileReader *r, StoreExtent **ret, size_t *ret_n)
{
        return extents(r, DIRTY_CONTEXT, false, ret, ret_n);
}

int profile_reader_allocated(ProfileReader *r, StoreExtent **ret, size_t *ret_n)
{
        if (nbd_can_meta_context(r->nbd, ALLOC_CONTEXT) != 1)
                return -EOPNOTSUPP;
        return extents(r, ALLOC_CONTEXT, true, ret, ret_n);
}

typedef struct Extents {
        const char *ctx;
        bool zero_flag;         /* keep extents without NBD_FLAG_ZERO (else: with NBD_FLAG_DIRTY) */
        StoreExtent *v;
        size_t n, cap;
        uint64_t next;          /* where the next reply starts */
} Extents;

static int on_extents(void *ud, const char *ctx, uint64_t offset, uint32_t *entries, size_t n, int *error)
{
        Extents *x = ud;
        if (strcmp(ctx, x->ctx) != 0)
                return 0;
        uint64_t at = offset;
        for (size_t i = 0; i + 1 < n; i += 2) {
                uint64_t len = entries[i];
                if (x->zero_flag ? !(entries[i + 1] & NBD_FLAG_ZERO) : (entries[i + 1] & NBD_FLAG_DIRTY)) {
                        if (x->n && x->v[x->n - 1].offset + x->v[x->n - 1].length == at) {
                                x->v[x->n - 1].length += len;
                        } else {
                                if (x->n == x->cap) {
                                        x->cap = x->cap ? x->cap * 2 : 64;
                                        x->v = xrealloc(x->v, sizeof *x->v * x->cap);
                                }
                                x->v[x->n++] = (StoreExtent){ at, len };
                        }
                }
                at += len;
        }
        x->next = at;
        return 0;
}

static int extents(ProfileReader *r, const char *ctx, bool zero_flag, StoreExtent **ret, size_t *ret_n)
{
        Extents x = { .ctx = ctx, .zero_flag = zero_flag };
        for (uint64_t off = 0; off < r->size;) {
                uint64_t count = MIN(r->size - off, (uint64_t)UINT32_MAX & ~(uint64_t)(STORE_BLOCK - 1));
                x.next = off;
                if (nbd_block_status(r->nbd, count, off, (nbd_extent_callback){ .callback = on_extents, .user_data = &x },
                                     0) < 0 ||
                    x.next <= off) {
                        free(x.v);
                        return -EIO;
                }
                off = x.next;
        }
        *ret = x.v;
        *ret_n = x.n;
        return 0;
}

int profile_reader_read(void *userdata, uint64_t offset, void *buf, size_t len)
{
        ProfileReader *r = userdata;
        for (size_t done = 0; done < len;) {
                size_t n = MIN(len - done, (size_t)NBD_READ_MAX);
                if (nbd_pread(r->nbd, (uint8_t *)buf + done, n, offset + done, 0) < 0)
                        return -EIO;
                done += n;
        }
        return 0;
}

void profile_reader_close(ProfileReader *r)
{
        if (!r)
                return;
        if (r->nbd) {
                nbd_shutdown(r->nbd, 0);
                nbd_close(r->nbd);
        }
        nbd_stop(r->pid);
        if (r->err_fd >= 0)
                close(r->err_fd);
        if (r->sock)
                unlink(r->sock);
        free(r->sock);
        free(r);
}
