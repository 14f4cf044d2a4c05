/* Per-desktop qcow2 overlays over a golden version: plain, ram (tmpfs) and LUKS-encrypted.
 * Never writes the golden. The encrypted mode's key lives only in one mlock'd, non-dumpable page
 * of this process and reaches qemu-img through a pipe: never argv, environment, log or disk. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "imaging/luks.h"
#include "imaging/overlay.h"
#include "imaging/qemu_img.h"

#define OVERLAY_ID_MAX 128
/* The passphrase is 256 random bits, so PBKDF2 stretching adds nothing; 10 ms keeps the
 * overlay cheap to open (3.3 s → 19 ms). Create still pays qemu-img's benchmark. */
#define LUKS_CREATE_OPTIONS "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"
#define LUKS_SECRET_OBJECT "secret,id=sec0,file=/dev/fd/3,format=raw"
/* Encrypted overlays are copies of a blank, one per backing file, given keying of their own
 * (luks.h): a few ms instead of qemu-img's 2.5 s of CPU. The blanks live here, under the
 * overlay dir; slated empties it at start. */
#define OVERLAY_BLANKS_DIR ".blanks"

/* Tests define this to inspect the key page after the wipe and before it is unmapped; in
 * programs that do not define it the weak reference is NULL. */
void overlay_test_hook_release(const Overlay *o) __attribute__((weak));

static const char *const mode_names[] = {
        [OVERLAY_ENCRYPTED] = "encrypted",
        [OVERLAY_RAM] = "ram",
        [OVERLAY_PLAIN] = "plain",
};

int overlay_mode_from_string(const char *s, OverlayMode *ret)
{
        for (size_t i = 0; i < ELEMENTSOF(mode_names); i++)
                if (s && strcmp(s, mode_names[i]) == 0) {
                        *ret = (OverlayMode)i;
                        return 0;
                }
        return -EINVAL;
}

const char *overlay_mode_to_string(OverlayMode m)
{
        return (unsigned)m < ELEMENTSOF(mode_names) ? mode_names[m] : NULL;
}

static size_t page_size(void)
{
        return (size_t)sysconf(_SC_PAGESIZE);
}

/* The handle gets a page of its own so the key can be locked in RAM (no swap), kept out of
 * core dumps, and not copied into the children we fork before they exec. */
static Overlay *overlay_alloc(void)
{
        _Static_assert(sizeof(Overlay) <= 4096, "Overlay must fit one page");
        Overlay *o = mmap(NULL, page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (o == MAP_FAILED)
                return NULL;
        if (mlock(o, page_size()) < 0)
                log_debug("overlay: mlock: %s (key page may be swapped)", strerror(errno));
        (void)madvise(o, page_size(), MADV_DONTDUMP);
        (void)madvise(o, page_size(), MADV_WIPEONFORK);
        return o;
}

static void overlay_release(Overlay *o)
{
        secret_wipe(o->secret, sizeof o->secret);
        if (overlay_test_hook_release)
                overlay_test_hook_release(o);
        free(o->path);
        o->path = NULL;
        munlock(o, page_size());
        munmap(o, page_size());
}

static int overlay_qemu_img_create(const char *qemu_img, const Overlay *o, const char *golden, uid_t owner,
                                   gid_t group, char **ret_err)
{
        QemuImgPrecreate pc_ = { o->path, owner, group }, *pc = &pc_;
        const char *argv[20];
        size_t n = 0;
        argv[n++] = qemu_img;
        argv[n++] = "create";
        argv[n++] = "-q";
        argv[n++] = "-f";
        argv[n++] = "qcow2";
        /* Always name the backing format: a guessed or wrong one is silently accepted (§7). */
        argv[n++] = "-F";
        argv[n++] = "qcow2";
        argv[n++] = "-b";
        argv[n++] = golden;
        if (o->mode == OVERLAY_ENCRYPTED) {
                argv[n++] = "-o";
                argv[n++] = LUKS_CREATE_OPTIONS;
                argv[n++] = "--object";
                argv[n++] = LUKS_SECRET_OBJECT;
        }
        argv[n++] = o->path;
        argv[n] = NULL;

        if (o->mode == OVERLAY_ENCRYPTED)
                return qemu_img_run_keyed(argv, o->secret, OVERLAY_SECRET_LEN, qemu_img_precreate, pc, ret_err);
        int r = qemu_img_precreate(pc);
        if (r < 0) {
                *ret_err = xasprintf("creating %s: %s", o->path, strerror(-r));
                return r;
        }
        return qemu_img_run(argv, NULL, NULL, ret_err);
}

/* <dir>/.blanks/<hash>.qcow2: the blank for this backing file, named by its path, inode, size
 * and modification time (a file put in its place gets a blank of its own). */
static char *blank_path(const char *absdir, const char *golden)
{
        struct stat st;
        if (stat(golden, &st) < 0)
                return NULL;
        _cleanup_free_ char *key = xasprintf("%s|%llu|%llu|%lld.%09ld", golden, (unsigned long long)st.st_ino,
                                             (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec,
                                             st.st_mtim.tv_nsec);
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        if (!EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL) || mdlen < 16)
                return NULL;
        char hex[33];
        hex_encode(md, 16, hex);
        return xasprintf("%s/" OVERLAY_BLANKS_DIR "/%s.qcow2", absdir, hex);
}

/* Make the blank with qemu-img under a key nobody keeps, then rename it into place: two desktops
 * racing for it both make one and the last rename wins. */
static int blank_make(const char *qemu_img, const char *absdir, const char *golden, const char *path, char **ret_err)
{
        _cleanup_free_ char *dir = xasprintf("%s/" OVERLAY_BLANKS_DIR, absdir);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                int e = errno;
                *ret_err = xasprintf("%s: %s", dir, strerror(e));
                return -e;
        }
        Overlay *b = overlay_alloc();
        if (!b) {
                *ret_err = xasprintf("cannot map a key page: %s", strerror(errno));
                return -ENOMEM;
        }
        uint8_t key[OVERLAY_SECRET_LEN / 2], tag[6];
        int r = random_bytes(key, sizeof key);
        if (r == 0)
                r = random_bytes(tag, sizeof tag);
        char tag_hex[13];
        hex_encode(tag, sizeof tag, tag_hex);
        hex_encode(key, sizeof key, b->secret);
        secret_wipe(key, sizeof key);
        b->mode = OVERLAY_ENCRYPTED;
        b->path = xasprintf("%s.%s.tmp", path, tag_hex);
        if (r == 0)
                r = overlay_qemu_img_create(qemu_img, b, golden, (uid_t)-1, (gid_t)-1, ret_err);
        if (r == 0 && rename(b->path, path) < 0) {
                r = -errno;
                *ret_err = xasprintf("rename %s: %s", b->path, strerror(errno));
        }
        if (r < 0)
                (void)unlink(b->path);
        overlay_release(b);
        return r;
}

static int copy_fd(int in, int out)
{
        for (;;) {
                ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 20, 0);
                if (n == 0)
                        return 0;
                if (n > 0)
                        continue;
                if (errno == EINTR)
                        continue;
                if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
                        return -errno;
                break;          /* not between these files: copy by hand from where it got to */
        }
        char buf[65536];
        for (;;) {
                ssize_t n = read(in, buf, sizeof buf);
                if (n == 0)
                        return 0;
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (ssize_t done = 0; done < n;) {
                        ssize_t w = write(out, buf + done, (size_t)(n - done));
                        if (w < 0 && errno != EINTR)
                                return -errno;
                        done += w > 0 ? w : 0;
                }
        }
}

/* The encrypted overlay as a copy of the blank, rekeyed. -EPROTO: the blank is not the shape
 * luks.c knows (another qemu-img): the caller makes the overlay with qemu-img instead. */
static int overlay_from_blank(const char *qemu_img, const Overlay *o, const char *golden, const char *absdir,
                              uid_t owner, gid_t group, char **ret_err)
{
        _cleanup_free_ char *blank = blank_path(absdir, golden);
        if (!blank) {
                int e = errno ? errno : EIO;
                *ret_err = xasprintf("backing file %s: %s", golden, strerror(e));
                return -e;
        }
        int r = 0;
        if (access(blank, R_OK) < 0)
                r = blank_make(qemu_img, absdir, golden, blank, ret_err);
        if (r < 0)
                return r;
        _cleanup_close_ int in = open(blank, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (in < 0) {
                int e = errno;
                *ret_err = xasprintf("%s: %s", blank, strerror(e));
                return -e;
        }
        QemuImgPrecreate pc = { o->path, owner, group };
        r = qemu_img_precreate(&pc);
        _cleanup_close_ int out = r < 0 ? -1 : open(o->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (r == 0 && out < 0)
                r = -errno;
        if (r == 0)
                r = copy_fd(in, out);
        if (r < 0) {
                *ret_err = xasprintf("copying %s to %s: %s", blank, o->path, strerror(-r));
                return r;
        }
        return luks_qcow2_rekey(out, o->secret, OVERLAY_SECRET_LEN, ret_err);
}

int overlay_blanks_clear(const char *overlay_dir)
{
        _cleanup_free_ char *dir = xasprintf("%s/" OVERLAY_BLANKS_DIR, overlay_dir);
        return rm_rf(dir);
}

int overlay_create(const char *qemu_img, OverlayMode mode, const char *golden, const char *dir, const char *id,
                   uid_t owner, gid_t group, Overlay **ret, char **ret_error)
{
        _cleanup_free_ char *discard_error = NULL;
        if (!ret_error)
                ret_error = &discard_error;
        *ret_error = NULL;

        if (!overlay_mode_to_string(mode)) {
                *ret_error = xasprintf("unknown overlay mode %d", (int)mode);
                return log_error_errno(-EINVAL, "overlay: %s", *ret_error);
        }
        /* A relative backing path is resolved against the overlay's directory (§7). */
        if (!golden || golden[0] != '/') {
                *ret_error = xasprintf("golden image path %s is not absolute", golden ? golden : "(null)");
                return log_error_errno(-EINVAL, "overlay: %s", *ret_error);
        }
        if (!id || !string_is_name(id, OVERLAY_ID_MAX)) {
                *ret_error = xasprintf("invalid overlay id \"%s\"", id ? id : "(null)");
                return log_error_errno(-EINVAL, "overlay: %s", *ret_error);
        }
        char absdir[PATH_MAX];
        if (!realpath(dir, absdir)) {
                int e = errno;
                *ret_error = xasprintf("overlay dir %s: %s", dir, strerror(e));
                return log_error_errno(-e, "%s", *ret_error);
        }
        if (mode == OVERLAY_RAM) {
                int t = fs_is_tmpfs(absdir);
                if (t <= 0) {
                        *ret_error = t < 0 ? xasprintf("ram overlay dir %s: %s", absdir, strerror(-t))
                                           : xasprintf("ram overlay dir %s is not on tmpfs", absdir);
                        return log_error_errno(t < 0 ? t : -EXDEV, "%s", *ret_error);
                }
        }

        Overlay *o = overlay_alloc();
        if (!o) {
                *ret_error = xasprintf("cannot map the overlay key page: %s", strerror(errno));
                return log_error_errno(-ENOMEM, "overlay %s: %s", id, *ret_error);
        }
        o->mode = mode;
        o->path = xasprintf("%s/%s.qcow2", absdir, id);

        int r = 0;
        if (mode == OVERLAY_ENCRYPTED) {
                uint8_t key[OVERLAY_SECRET_LEN / 2];
                r = random_bytes(key, sizeof key);
                if (r == 0)
                        hex_encode(key, sizeof key, o->secret);
                secret_wipe(key, sizeof key);
                if (r < 0)
                        *ret_error = xasprintf("getrandom: %s", strerror(-r));
        }
        if (r == 0 && mode == OVERLAY_ENCRYPTED) {
                _cleanup_free_ char *err = NULL;
                r = overlay_from_blank(qemu_img, o, golden, absdir, owner, group, &err);
                if (r == -EPROTO) {
                        log_warn("overlay %s: the blank overlay is not what Slate can rekey (%s); qemu-img makes "
                                 "this one (2-3 s)", o->path, err);
                        (void)unlink(o->path);
                        r = 1;
                } else if (r < 0) {
                        *ret_error = xasprintf("%s", err ? err : strerror(-r));
                }
        }
        if (r == 1 || (r == 0 && mode != OVERLAY_ENCRYPTED)) {
                _cleanup_free_ char *err = NULL;
                r = overlay_qemu_img_create(qemu_img, o, golden, owner, group, &err);
                if (r < 0)
                        *ret_error = xasprintf("qemu-img create: %s", err);
        }
        if (r < 0) {
                log_error("overlay %s (%s over %s): %s", o->path, mode_names[mode], golden, *ret_error);
                (void)unlink(o->path);
                overlay_release(o);
                return r;
        }
        log_debug("overlay %s: created (%s over %s)", o->path, mode_names[mode], golden);
        *ret = o;
        return 0;
}

int overlay_destroy(Overlay *o)
{
        if (!o)
                return 0;
        int r = 0;
        if (unlink(o->path) < 0 && errno != ENOENT)
                r = log_error_errno(-errno, "overlay %s: unlink: %s", o->path, strerror(errno));
        overlay_release(o);
        return r;
}

void overlay_forget(Overlay *o)
{
        if (o)
                overlay_release(o);
}

int overlay_discard_path(const char *path)
{
        if (unlink(path) < 0 && errno != ENOENT)
                return log_error_errno(-errno, "overlay %s: unlink: %s", path, strerror(errno));
        return 0;
}

int overlay_bytes(const char *path, uint64_t *ret)
{
        struct stat st;
        if (stat(path, &st) < 0) {
                if (errno == ENOENT)
                        return -ENOENT;         /* not made yet (or erased): nothing to say */
                return log_error_errno(-errno, "overlay %s: %s", path, strerror(errno));
        }
        *ret = (uint64_t)st.st_blocks * 512;
        return 0;
}
