/* App capture engine: one networked libguestfs appliance installs Debian packages into a
 * throwaway overlay of a golden version; what the install added or changed leaves the appliance
 * as one tar and is unpacked on the host into work_dir/tree. The golden is only ever a backing
 * file. The image's programs (apt, dpkg, find, tar) run inside the appliance; everything they
 * hand back (listings, the tar) is parsed or unpacked on the host as hostile input.
 *
 * How changes are found: a `find -printf` listing (type, mode, owners, size, mtime, link) of the
 * image's root before and after the install, compared on the host (capture_diff.c). Measured
 * against the alternative, an overlayfs upper dir in the appliance: on the minimal Debian fixture
 * (7k entries, 686 KB listing) a listing costs 5.9 s cold / 2.1 s warm under TCG, about 10 % of a
 * capture. Overlayfs would save that, but needs guestfs_modprobe("overlay") plus the image's own
 * mount/chroot with hand-made /proc /dev /sys binds and resolv.conf, an upper dir outside the
 * lower (a scratch disk: the appliance's RAM is too small for big apps), and whiteouts, opaque
 * dirs and copy-ups without content change to interpret; the upper dir's entries still need a
 * lookup in the lower to tell new from override. The listing uses nothing but find and dpkg-query,
 * and also sees removals. Revisit if captures of big images spend minutes listing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/log.h"
#include "common/spawn.h"
#include "common/util.h"
#include "imaging/capture.h"
#include "imaging/capture_diff.h"
#include "imaging/gfs.h"
#include "imaging/qemu_img.h"

/* Inside the image: the capture's scratch dir. /var/tmp is pruned from the listings, and the
 * whole overlay is thrown away afterwards. */
#define GUEST_DIR "/var/tmp/slate-capture"
#define GUEST_ENV "export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive; "
/* What the listings leave out: kernel and runtime filesystems, scratch space, logs, apt's lists
 * and caches (175 MiB for one small package, research/app-capture.md), and the places an install
 * does not write to (homes, /boot: a layer carries no kernel). */
#define GUEST_FIND                                                                                            \
        "find / \\( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /var/tmp "   \
        "-o -path /var/log -o -path /var/cache -o -path /var/lib/apt -o -path /boot -o -path /home "          \
        "-o -path /root -o -path /lost+found -o -path /media -o -path /mnt -o -path /etc/resolv.conf"
#define GUEST_FIND_TAIL " \\) -prune -o -printf '" CAPTURE_FIND_FORMAT "'"
#define GUEST_DPKG "dpkg-query -W -f '" CAPTURE_DPKG_FORMAT "'"
/* apt's answer, cut to one line for *ret_error. */
#define LOG_LINE_MAX 300

static void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

typedef struct Run {
        const CaptureRequest *req;
        json_object *timings;
        const char *step;
        uint64_t step_start;
        guestfs_h *g;
        char *scratch;          /* work_dir/.capture: listings and the tar on the host */
        char *find;             /* GUEST_FIND for this image */
} Run;

static void step(Run *run, const char *name, int percent)
{
        uint64_t t = now_ms();
        if (run->step)
                json_object_object_add(run->timings, run->step, json_object_new_int64((int64_t)(t - run->step_start)));
        run->step = name;
        run->step_start = t;
        if (name && run->req->progress)
                run->req->progress(run->req->userdata, name, percent);
}

bool capture_package_name_ok(const char *name)
{
        size_t n = strlen(name);
        if (n == 0 || n > 128 || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || strchr("+.-", name[i])))
                        return false;
        return true;
}

/* A deb file name that is safe in a shell-free path: what Debian's pool uses. */
static bool deb_name_ok(const char *n)
{
        size_t len = strlen(n);
        if (len < 5 || len > 255 || strcmp(n + len - 4, ".deb") != 0 || n[0] == '.')
                return false;
        for (const char *c = n; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      strchr("+.~_:-", *c)))
                        return false;
        return true;
}

/* Printable ASCII only, for an error line made of the image's words. */
static char *clean_line(const char *s)
{
        char *out = xmalloc0(LOG_LINE_MAX + 1);
        size_t n = 0;
        for (; *s && n < LOG_LINE_MAX; s++)
                out[n++] = *s >= 0x20 && *s < 0x7f ? *s : '?';
        return out;
}

/* Runs script in the image's root; output goes to GUEST_DIR/what.log, and on failure
 * *ret_error ends with its most telling line (apt's last "E:" line, else the last line). */
static int guest_sh(Run *run, const char *what, const char *script, char **ret_out, char **ret_error)
{
        _cleanup_free_ char *cmd = xasprintf(GUEST_ENV "{ %s ; } 2>" GUEST_DIR "/%s.log", script, what);
        char *out = guestfs_sh(run->g, cmd);
        if (out) {
                if (ret_out)
                        *ret_out = out;
                else
                        free(out);
                return 0;
        }
        _cleanup_free_ char *log_path = xasprintf(GUEST_DIR "/%s.log", what);
        char **tail = guestfs_tail(run->g, log_path);
        /* apt's last "E:" line, else the first line of the tail (tar's first complaint). */
        const char *pick = NULL;
        for (size_t i = 0; tail && tail[i]; i++)
                if (strncmp(tail[i], "E: ", 3) == 0 || (!pick && tail[i][0]))
                        pick = tail[i];
        if (pick) {
                _cleanup_free_ char *line = clean_line(pick);
                *ret_error = xasprintf("%s failed in the image: %s", what, line);
        } else
                gfs_fail(run->g, ret_error, "%s failed in the image", what);
        gfs_free_strings(tail);
        return -EIO;
}

/* A file the image's programs wrote, copied to the host and read whole, at most max bytes. */
static int guest_fetch(Run *run, const char *name, size_t max, char **ret, size_t *ret_len, char **ret_error)
{
        _cleanup_free_ char *src = xasprintf(GUEST_DIR "/%s", name), *dst = xasprintf("%s/%s", run->scratch, name);
        int64_t size = guestfs_filesize(run->g, src);
        if (size < 0)
                return gfs_fail(run->g, ret_error, "reading %s", src);
        if ((uint64_t)size > max) {
                *ret_error = xasprintf("%s: %lld bytes, more than %zu", src, (long long)size, max);
                return -EFBIG;
        }
        if (guestfs_download(run->g, src, dst) < 0)
                return gfs_fail(run->g, ret_error, "copying %s out of the image", src);
        if (!ret)
                return 0;
        int r = read_file_max(dst, max, ret, ret_len);
        if (r < 0) {
                *ret_error = xasprintf("%s: %s", dst, strerror(-r));
                return r;
        }
        return 0;
}

static int create_overlay(Run *run, const char *overlay, char **ret_error)
{
        char golden[PATH_MAX];
        if (!realpath(run->req->golden, golden)) {
                *ret_error = xasprintf("golden %s: %s", run->req->golden, strerror(errno));
                return -errno;
        }
        /* Absolute -b and an explicit -F (research/qemu.md §7): the golden is opened read-only. */
        const char *argv[] = { run->req->qemu_img, "create", "-q", "-f", "qcow2", "-b", golden, "-F", "qcow2",
                               overlay, NULL };
        _cleanup_free_ char *err = NULL;
        int r = qemu_img_run(argv, NULL, NULL, &err);
        if (r < 0)
                *ret_error = xasprintf("creating the overlay on %s: %s", golden, err && *err ? err : strerror(-r));
        return r;
}

static int launch(Run *run, const char *overlay, char **ret_error)
{
        run->g = gfs_open(&run->req->appliance, ret_error);
        if (!run->g)
                return -EIO;
        if (guestfs_set_network(run->g, 1) < 0 ||
            guestfs_add_drive_opts(run->g, overlay, GUESTFS_ADD_DRIVE_OPTS_FORMAT, "qcow2", -1) < 0)
                return gfs_fail(run->g, ret_error, "configuring the appliance");
        if (guestfs_launch(run->g) < 0)
                return gfs_fail(run->g, ret_error, "starting the libguestfs appliance");
        char **roots = guestfs_inspect_os(run->g);
        size_t n = gfs_count(roots);
        int r = 0;
        if (!roots)
                r = gfs_fail(run->g, ret_error, "inspecting the golden image");
        else if (n != 1) {
                *ret_error = xasprintf("the golden image has %zu operating systems, expected one", n);
                r = -EINVAL;
        } else
                r = gfs_mount_os(run->g, roots[0], "", false, ret_error);
        gfs_free_strings(roots);
        return r;
}

/* Offer deb_dir's packages to apt: copied into its archive cache, which apt checks (name,
 * version, size, hash against its lists) before downloading. */
static int offer_debs(Run *run, char **ret_error)
{
        _cleanup_(closedirp) DIR *d = NULL;
        if (!(d = opendir(run->req->deb_dir))) {
                *ret_error = xasprintf("deb dir %s: %s", run->req->deb_dir, strerror(errno));
                return -errno;
        }
        if (guestfs_mkdir_p(run->g, "/var/cache/apt/archives") < 0)
                return gfs_fail(run->g, ret_error, "creating apt's archive cache");
        size_t n = 0;
        for (struct dirent *e; (e = readdir(d));) {
                if (!deb_name_ok(e->d_name))
                        continue;
                if (++n > 4 * CAPTURE_PACKAGES_MAX) {
                        *ret_error = xasprintf("deb dir %s: more than %d .deb files", run->req->deb_dir,
                                               4 * CAPTURE_PACKAGES_MAX);
                        return -E2BIG;
                }
                _cleanup_free_ char *src = xasprintf("%s/%s", run->req->deb_dir, e->d_name),
                                    *dst = xasprintf("/var/cache/apt/archives/%s", e->d_name);
                if (guestfs_upload(run->g, src, dst) < 0)
                        return gfs_fail(run->g, ret_error, "copying %s into the image", src);
        }
        return 0;
}

/* Before the install: the scratch dir, the offered debs, no service starts, the listings. */
static int prepare(Run *run, bool *ret_policy, bool *ret_update, char **ret_error)
{
        int r;
        if (guestfs_mkdir_p(run->g, GUEST_DIR) < 0 || guestfs_chmod(run->g, 0700, GUEST_DIR) < 0)
                return gfs_fail(run->g, ret_error, "creating %s in the image", GUEST_DIR);
        if (run->req->deb_dir && (r = offer_debs(run, ret_error)) < 0)
                return r;
        /* With network on, the appliance's daemon swaps its own resolv.conf in for each command
         * and renames the image's to a random /etc name until the command ends: both are left
         * out of the listings, the renamed one by its inode (read now, between commands). */
        struct guestfs_statns *st = guestfs_exists(run->g, "/etc/resolv.conf") > 0 ||
                                                    guestfs_is_symlink(run->g, "/etc/resolv.conf") > 0
                                            ? guestfs_lstatns(run->g, "/etc/resolv.conf") : NULL;
        _cleanup_free_ char *inum = st ? xasprintf(" -o -path '/etc/*' -inum %lld", (long long)st->st_ino) : xstrdup("");
        guestfs_free_statns(st);
        run->find = xasprintf("%s%s%s", GUEST_FIND, inum, GUEST_FIND_TAIL);
        _cleanup_free_ char *lists = NULL,
                            *cmd = xasprintf("%s >" GUEST_DIR "/before.files && " GUEST_DPKG " >" GUEST_DIR
                                             "/before.pkgs && for f in /var/lib/apt/lists/*_Packages*; do [ -s \"$f\" ] "
                                             "&& { echo lists; break; }; done; true", run->find);
        if ((r = guest_sh(run, "listing", cmd, &lists, ret_error)) < 0)
                return r;
        /* Maintainer scripts must not start daemons in the appliance (invoke-rc.d asks this);
         * written after the listing and removed before the next, so it is in neither. */
        *ret_policy = guestfs_exists(run->g, "/usr/sbin/policy-rc.d") == 0;
        if (*ret_policy) {
                static const char policy[] = "#!/bin/sh\nexit 101\n";
                if (guestfs_write(run->g, "/usr/sbin/policy-rc.d", policy, sizeof policy - 1) < 0 ||
                    guestfs_chmod(run->g, 0755, "/usr/sbin/policy-rc.d") < 0)
                        return gfs_fail(run->g, ret_error, "writing policy-rc.d");
        }
        *ret_update = !(run->req->deb_dir && strncmp(lists, "lists", 5) == 0);
        return 0;
}

static int install(Run *run, char **ret_error)
{
        /* Names were checked against Debian's charset: safe in the command line as they are. */
        size_t len = 0;
        for (size_t i = 0; i < run->req->n_packages; i++)
                len += strlen(run->req->packages[i]) + 1;
        _cleanup_free_ char *names = xmalloc0(len + 1);
        for (size_t i = 0; i < run->req->n_packages; i++) {
                strcat(names, " ");
                strcat(names, run->req->packages[i]);
        }
        _cleanup_free_ char *cmd = xasprintf(
                "apt-get -q -y --no-install-recommends -o Dpkg::Options::=--force-confdef "
                "-o Dpkg::Options::=--force-confold install%s >" GUEST_DIR "/install.out",
                names);
        return guest_sh(run, "install", cmd, NULL, ret_error);
}

static int write_keep_list(Run *run, char *const *keep, char **ret_error)
{
        _cleanup_free_ char *path = xasprintf("%s/keep.list", run->scratch);
        _cleanup_fclose_ FILE *f = fopen(path, "we");
        if (!f) {
                *ret_error = xasprintf("%s: %s", path, strerror(errno));
                return -errno;
        }
        for (size_t i = 0; keep[i]; i++)
                fwrite(keep[i], 1, strlen(keep[i]) + 1, f);
        if (fflush(f) != 0 || ferror(f)) {
                *ret_error = xasprintf("%s: %s", path, strerror(errno));
                return -EIO;
        }
        if (guestfs_upload(run->g, path, GUEST_DIR "/keep.list") < 0)
                return gfs_fail(run->g, ret_error, "copying the file list into the image");
        return 0;
}

/* After the install: which packages are new, their status paragraphs, what changed. */
static int collect(Run *run, bool remove_policy, CaptureResult *ret, CaptureDiff *diff, char **ret_error)
{
        int r;
        if (remove_policy && guestfs_rm_f(run->g, "/usr/sbin/policy-rc.d") < 0)
                return gfs_fail(run->g, ret_error, "removing policy-rc.d");
        if ((r = guest_sh(run, "listing", GUEST_DPKG " >" GUEST_DIR "/after.pkgs", NULL, ret_error)) < 0)
                return r;
        _cleanup_free_ char *before = NULL, *after = NULL;
        size_t len;
        if ((r = guest_fetch(run, "before.pkgs", CAPTURE_LISTING_MAX, &before, &len, ret_error)) < 0 ||
            (r = guest_fetch(run, "after.pkgs", CAPTURE_LISTING_MAX, &after, &len, ret_error)) < 0)
                return r;
        char **query = NULL;
        if ((r = capture_packages_added(before, after, &query, &ret->packages, &ret->n_packages, ret_error)) < 0)
                return r;
        if (ret->n_packages == 0) {
                capture_strv_free(query);
                *ret_error = xstrdup("the install added no package (already in the golden image?)");
                return -EEXIST;
        }
        size_t qlen = 0;
        for (size_t i = 0; query[i]; i++)
                qlen += strlen(query[i]) + 1;
        _cleanup_free_ char *names = xmalloc0(qlen + 1);
        for (size_t i = 0; query[i]; i++) {
                strcat(names, " ");
                strcat(names, query[i]);
        }
        capture_strv_free(query);
        /* Written before the listing, so it is in the tree as a new file. */
        _cleanup_free_ char *cmd = xasprintf("dpkg-query -s%s >/var/lib/dpkg/status-layer && %s >" GUEST_DIR
                                             "/after.files", names, run->find);
        if ((r = guest_sh(run, "listing", cmd, NULL, ret_error)) < 0)
                return r;
        char *b = NULL, *a = NULL;
        size_t blen, alen;
        if ((r = guest_fetch(run, "before.files", CAPTURE_LISTING_MAX, &b, &blen, ret_error)) < 0)
                return r;
        if ((r = guest_fetch(run, "after.files", CAPTURE_LISTING_MAX, &a, &alen, ret_error)) < 0) {
                free(b);
                return r;
        }
        _cleanup_(capture_listing_free) CaptureListing lb = { 0 }, la = { 0 };
        if ((r = capture_listing_parse(b, blen, &lb, ret_error)) < 0) {
                free(a);
                return r;
        }
        if ((r = capture_listing_parse(a, alen, &la, ret_error)) < 0 || (r = capture_diff(&lb, &la, diff, ret_error)) < 0)
                return r;
        log_info("capture: %zu packages, %zu paths added, %zu changed, %zu removed, %zu overrides", ret->n_packages,
                 diff->n_added, diff->n_changed, diff->n_removed, diff->n_overrides);
        for (size_t i = 0; i < diff->n_overrides && i < 20; i++) {
                _cleanup_free_ char *p = clean_line(diff->overrides[i]);
                log_info("capture: override /%s", p);
        }
        return write_keep_list(run, diff->keep, ret_error);
}

/* The host side of the tree is built as hostile: see extract_tar and sanitize. */
static _Thread_local struct {
        size_t prefix;          /* strlen of the tree path + '/' */
        char *bad;              /* first entry that is not a dir, file or symlink */
        CaptureStrv stripped;  /* relative paths */
        int error;
} walk;

static int sanitize_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)ftw;
        if (flag == FTW_NS || flag == FTW_DNR) {
                walk.error = errno ? errno : EACCES;
                return 1;
        }
        if (!S_ISDIR(st->st_mode) && !S_ISREG(st->st_mode) && !S_ISLNK(st->st_mode)) {
                walk.bad = xstrdup(path + MIN(strlen(path), walk.prefix));
                return 1;
        }
        /* A layer grants no privilege the golden image did not: setuid/setgid programs come from
         * the golden or not at all (a setgid directory only means group inheritance: kept). */
        if (S_ISREG(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID))) {
                if (chmod(path, st->st_mode & 01777) < 0) {
                        walk.error = errno;
                        return 1;
                }
                capture_strv_push(&walk.stripped, xstrdup(path + MIN(strlen(path), walk.prefix)));
        }
        return 0;
}

/* After tar: only directories, regular files and symlinks, no setuid/setgid file. */
static int sanitize(const char *dir, CaptureResult *ret, char **ret_error)
{
        walk.prefix = strlen(dir) + 1;
        walk.bad = NULL;
        walk.stripped = (CaptureStrv){ 0 };
        walk.error = 0;
        int r = nftw(dir, sanitize_one, 64, FTW_PHYS | FTW_MOUNT);
        ret->n_setid_stripped = walk.stripped.n;
        ret->setid_stripped = capture_strv_take(&walk.stripped);
        if (walk.bad) {
                *ret_error = xasprintf("the layer holds /%.200s, which is not a file, directory or symlink", walk.bad);
                free(walk.bad);
                return -EPERM;
        }
        if (r < 0 || walk.error) {
                int e = walk.error ? walk.error : errno;
                *ret_error = xasprintf("%s: checking the tree: %s", dir, strerror(e));
                return -e;
        }
        if (ret->n_setid_stripped)
                log_warn("capture: setuid/setgid removed from %zu files (first: /%s)", ret->n_setid_stripped,
                         ret->setid_stripped[0]);
        return 0;
}

/* GNU tar refuses members with "..", strips leading "/", and makes a symlink a placeholder
 * until the end, so nothing is written through one; owners are kept by number (the layer is
 * mounted into the same system the ids came from). Without CAP_MKNOD in its bounding set it
 * cannot create device nodes (it fails, and so does the capture); xattrs, ACLs and SELinux
 * labels (file capabilities among them) are not restored. */
static int extract_tar(const char *tar, const char *dir, char **ret_error)
{
        const char *argv[] = { "setpriv", "--bounding-set", "-mknod", "--", "tar", "-x", "--numeric-owner",
                               "--same-owner", "--same-permissions", "--no-xattrs", "--no-acls", "--no-selinux",
                               "--no-overwrite-dir", "-f", tar, "-C", dir, NULL };
        SpawnOpts so = { .argv = argv, .search_path = true, .stdio = { [0] = SPAWN_STDIO_NULL, [1] = SPAWN_STDIO_PIPE,
                         [2] = SPAWN_STDIO_STDOUT }, .fd3 = -1, .default_signals = true };
        SpawnChild c;
        int r = spawn_start(&so, &c);
        if (r < 0) {
                *ret_error = xasprintf("cannot run setpriv/tar: %s", strerror(-r));
                return r;
        }
        /* Its first lines say why; the rest is drained so tar never blocks on the pipe. */
        char out[4096], sink[4096];
        size_t n = 0;
        for (ssize_t k;;) {
                bool full = n == sizeof out - 1;
                k = read(c.fds[1], full ? sink : out + n, full ? sizeof sink : sizeof out - 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                if (!full)
                        n += (size_t)k;
        }
        out[n] = '\0';
        spawn_child_close(&c);
        int status = 0;
        spawn_wait(c.pid, 0, &status);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                char *nl = strchr(out, '\n');
                if (nl)
                        *nl = '\0';
                _cleanup_free_ char *line = clean_line(out);
                *ret_error = xasprintf("unpacking the layer: tar %s %d: %s", WIFEXITED(status) ? "exited with" : "killed by signal",
                                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), line);
                return -EIO;
        }
        return 0;
}

/* Resolved inside the tree only (absolute symlinks against the tree's root): a link into the
 * golden image's part of the system counts as not executable here. */
static bool tree_executable(int tree_fd, const char *rel)
{
        struct open_how how = { .flags = O_PATH | O_CLOEXEC,
                                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV };
        _cleanup_close_ int fd = (int)syscall(SYS_openat2, tree_fd, rel, &how, sizeof how);
        struct stat st;
        return fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

static bool in_bin_dir(const char *p)
{
        if (fnmatch("usr/bin/*", p, FNM_PATHNAME) == 0 || fnmatch("usr/sbin/*", p, FNM_PATHNAME) == 0 ||
            fnmatch("usr/games/*", p, FNM_PATHNAME) == 0)
                return true;
        const char *slash = strrchr(p, '/');
        return strncmp(p, "opt/", 4) == 0 && slash && slash - p >= 8 && strncmp(slash - 4, "/bin", 4) == 0;
}

static int list_entries(const char *tree, char *const *keep, CaptureResult *ret, char **ret_error)
{
        _cleanup_close_ int fd = open(tree, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                *ret_error = xasprintf("%s: %s", tree, strerror(errno));
                return -errno;
        }
        CaptureStrv exe = { 0 }, menu = { 0 };
        for (size_t i = 0; keep[i]; i++) {
                struct stat st;
                if (fstatat(fd, keep[i], &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode))
                        continue;
                if (in_bin_dir(keep[i]) && tree_executable(fd, keep[i]))
                        capture_strv_push(&exe, xstrdup(keep[i]));
                if (fnmatch("usr/share/applications/*.desktop", keep[i], FNM_PATHNAME) == 0)
                        capture_strv_push(&menu, xstrdup(keep[i]));
        }
        ret->n_executables = exe.n;
        ret->executables = capture_strv_take(&exe);
        ret->n_menu_entries = menu.n;
        ret->menu_entries = capture_strv_take(&menu);
        return 0;
}

static int extract(Run *run, const CaptureDiff *diff, CaptureResult *ret, char **ret_error)
{
        int r;
        if ((r = guest_sh(run, "tar", "cd / && tar --null --no-recursion --numeric-owner -T " GUEST_DIR
                          "/keep.list -cf " GUEST_DIR "/layer.tar", NULL, ret_error)) < 0 ||
            (r = guest_fetch(run, "layer.tar", CAPTURE_TAR_MAX, NULL, NULL, ret_error)) < 0)
                return r;
        /* The overlay has served: the appliance goes before the host work. */
        guestfs_close(TAKE_PTR(run->g));
        _cleanup_free_ char *tar = xasprintf("%s/layer.tar", run->scratch), *partial = xasprintf("%s/tree.partial",
                                                                                                   run->req->work_dir);
        if (mkdir(partial, 0700) < 0) {
                *ret_error = xasprintf("%s: %s", partial, strerror(errno));
                return -errno;
        }
        if ((r = extract_tar(tar, partial, ret_error)) < 0 || (r = sanitize(partial, ret, ret_error)) < 0 ||
            (r = list_entries(partial, diff->keep, ret, ret_error)) < 0)
                return r;
        /* The layer's root directory, as mkfs.ext4 -d will take it. */
        if (chmod(partial, 0755) < 0) {
                *ret_error = xasprintf("%s: %s", partial, strerror(errno));
                return -errno;
        }
        ret->tree = xasprintf("%s/tree", run->req->work_dir);
        if (rename(partial, ret->tree) < 0) {
                *ret_error = xasprintf("%s: %s", ret->tree, strerror(errno));
                return -errno;
        }
        return 0;
}

static int check_request(const CaptureRequest *req, char **ret_error)
{
        if (req->n_packages == 0 || req->n_packages > CAPTURE_PACKAGES_MAX) {
                *ret_error = xasprintf("give 1 to %d packages", CAPTURE_PACKAGES_MAX);
                return -EINVAL;
        }
        for (size_t i = 0; i < req->n_packages; i++)
                if (!capture_package_name_ok(req->packages[i])) {
                        _cleanup_free_ char *name = clean_line(req->packages[i]);
                        *ret_error = xasprintf("\"%s\" is not a Debian package name ([a-z0-9][a-z0-9+.-]*)", name);
                        return -EINVAL;
                }
        _cleanup_(closedirp) DIR *d = opendir(req->work_dir);
        if (!d) {
                *ret_error = xasprintf("work dir %s: %s", req->work_dir, strerror(errno));
                return -errno;
        }
        for (struct dirent *e; (e = readdir(d));)
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                        *ret_error = xasprintf("work dir %s is not empty", req->work_dir);
                        return -ENOTEMPTY;
                }
        if (access(req->golden, R_OK) < 0) {
                *ret_error = xasprintf("golden %s: %s", req->golden, strerror(errno));
                return -errno;
        }
        return 0;
}

static void remove_in(const char *dir, const char *name)
{
        _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
        rm_rf(p);
}

int capture_run(const CaptureRequest *req, CaptureResult *ret, char **ret_error)
{
        *ret = (CaptureResult){ 0 };
        int r = check_request(req, ret_error);
        if (r < 0)
                return r;
        Run run = { .req = req, .timings = json_object_new_object(),
                    .scratch = xasprintf("%s/.capture", req->work_dir) };
        _cleanup_free_ char *overlay = xasprintf("%s/overlay.qcow2", req->work_dir);
        CaptureDiff diff = { 0 };
        bool policy = false, update = true;
        if (mkdir(run.scratch, 0700) < 0) {
                r = -errno;
                *ret_error = xasprintf("%s: %s", run.scratch, strerror(errno));
                goto done;
        }
        step(&run, "overlay", 0);
        if ((r = create_overlay(&run, overlay, ret_error)) < 0)
                goto done;
        step(&run, "launch", 5);
        if ((r = launch(&run, overlay, ret_error)) < 0)
                goto done;
        step(&run, "prepare", 25);
        if ((r = prepare(&run, &policy, &update, ret_error)) < 0)
                goto done;
        if (update) {
                step(&run, "update", 35);
                if ((r = guest_sh(&run, "update", "apt-get -q -o Acquire::Languages=none update >" GUEST_DIR
                                  "/update.out", NULL, ret_error)) < 0)
                        goto done;
        }
        step(&run, "install", 50);
        if ((r = install(&run, ret_error)) < 0)
                goto done;
        step(&run, "collect", 75);
        if ((r = collect(&run, policy, ret, &diff, ret_error)) < 0)
                goto done;
        step(&run, "extract", 85);
        r = extract(&run, &diff, ret, ret_error);
done:
        step(&run, NULL, 100);
        gfs_closep(&run.g);
        rm_rf(run.scratch);
        unlink(overlay);
        if (r < 0) {
                remove_in(req->work_dir, "tree.partial");
                remove_in(req->work_dir, "tree");
                json_object_put(run.timings);
                capture_result_free(ret);
        } else {
                ret->overrides = TAKE_PTR(diff.overrides);
                ret->n_overrides = diff.n_overrides;
                ret->timings_ms = TAKE_PTR(run.timings);
        }
        capture_diff_free(&diff);
        free(run.scratch);
        free(run.find);
        return r;
}

void capture_result_free(CaptureResult *r)
{
        free(r->tree);
        capture_strv_free(r->packages);
        capture_strv_free(r->overrides);
        capture_strv_free(r->executables);
        capture_strv_free(r->menu_entries);
        capture_strv_free(r->setid_stripped);
        json_object_put(r->timings_ms);
        *r = (CaptureResult){ 0 };
}
