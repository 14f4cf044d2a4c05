/* image diff: both versions in one appliance, mounted read-only under /a and /b; every entry's
 * metadata is fetched per directory (lstatnslist, readlinklist) and the two sorted lists are
 * merged. Guest paths and counts are capped (GFS_PATH_MAX, GFS_ENTRIES_MAX). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "imaging/gfs.h"
#include "imaging/image_diff.h"

/* find0's output for GFS_ENTRIES_MAX paths of typical length; beyond it the image is refused. */
#define FIND_OUTPUT_MAX (256u << 20)

typedef struct Entry {
        char *path;             /* relative to the root, no leading slash */
        int64_t mode, size, uid, gid, rdev, mtime_s, mtime_ns;
        char *link;             /* symlink target */
} Entry;

typedef struct Tree {
        Entry *e;
        size_t n;
} Tree;

static void tree_free(Tree *t)
{
        for (size_t i = 0; i < t->n; i++) {
                free(t->e[i].path);
                free(t->e[i].link);
        }
        free(t->e);
        t->e = NULL;
        t->n = 0;
}

static bool skipped(const char *p)
{
        return strncmp(p, "proc/", 5) == 0 || strncmp(p, "sys/", 4) == 0 || strncmp(p, "dev/", 4) == 0;
}

/* Sort by parent directory, then name: each directory's entries become one run. */
static int cmp_parent(const void *a, const void *b)
{
        const Entry *x = a, *y = b;
        const char *sx = strrchr(x->path, '/'), *sy = strrchr(y->path, '/');
        size_t px = sx ? (size_t)(sx - x->path) : 0, py = sy ? (size_t)(sy - y->path) : 0;
        int c = memcmp(x->path, y->path, px < py ? px : py);
        if (c)
                return c;
        if (px != py)
                return px < py ? -1 : 1;
        return strcmp(x->path + px, y->path + py);
}

static int cmp_path(const void *a, const void *b)
{
        return strcmp(((const Entry *)a)->path, ((const Entry *)b)->path);
}

static int list_paths(guestfs_h *g, const char *top, Tree *t, char **ret_error)
{
        char tmpl[] = "/tmp/slate-diff-XXXXXX";
        _cleanup_close_ int fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd < 0) {
                *ret_error = xasprintf("diff: temporary file: %s", strerror(errno));
                return -errno;
        }
        unlink(tmpl);
        _cleanup_free_ char *dev = xasprintf("/dev/fd/%d", fd);
        if (guestfs_find0(g, top, dev) < 0)
                return gfs_fail(g, ret_error, "diff: listing %s", top);
        off_t size = lseek(fd, 0, SEEK_END);
        if (size < 0 || (uint64_t)size > FIND_OUTPUT_MAX) {
                *ret_error = xasprintf("diff: the file list of %s is larger than %u MiB", top, FIND_OUTPUT_MAX >> 20);
                return -E2BIG;
        }
        _cleanup_free_ char *buf = xmalloc0((size_t)size + 1);
        if (pread(fd, buf, (size_t)size, 0) != size) {
                *ret_error = xasprintf("diff: reading the file list: %s", strerror(errno));
                return -EIO;
        }
        size_t cap = 0;
        for (size_t off = 0; off < (size_t)size;) {
                size_t len = strnlen(buf + off, (size_t)size - off);
                const char *p = buf + off;
                off += len + 1;
                /* find0's names are relative but start with a slash ("/etc"). */
                if (len > 0 && p[0] == '/') {
                        p++;
                        len--;
                }
                if (len == 0 || skipped(p))
                        continue;
                if (len >= GFS_PATH_MAX || t->n >= GFS_ENTRIES_MAX) {
                        *ret_error = len >= GFS_PATH_MAX ? xasprintf("diff: a path in %s is longer than %d bytes", top,
                                                                     GFS_PATH_MAX)
                                                         : xasprintf("diff: %s has more than %d entries", top,
                                                                     GFS_ENTRIES_MAX);
                        return -E2BIG;
                }
                if (t->n == cap) {
                        cap = cap ? cap * 2 : 1024;
                        t->e = realloc(t->e, cap * sizeof *t->e);
                        if (!t->e)
                                abort();
                }
                t->e[t->n++] = (Entry){ .path = strndup(p, len) };
        }
        return 0;
}

/* Metadata for one run of entries sharing a parent directory. */
static int stat_run(guestfs_h *g, const char *top, Entry *e, size_t n, char **ret_error)
{
        const char *slash = strrchr(e[0].path, '/');
        size_t plen = slash ? (size_t)(slash - e[0].path) : 0;
        _cleanup_free_ char *dir = xasprintf("%s%s%.*s", top, plen ? "/" : "", (int)plen, e[0].path);
        _cleanup_free_ char **names = xmalloc0((n + 1) * sizeof *names);
        for (size_t i = 0; i < n; i++)
                names[i] = e[i].path + (slash ? plen + 1 : 0);
        struct guestfs_statns_list *st = guestfs_lstatnslist(g, dir, names);
        if (!st || st->len != n) {
                if (st)
                        guestfs_free_statns_list(st);
                return gfs_fail(g, ret_error, "diff: reading the metadata in %s", dir);
        }
        size_t links = 0;
        for (size_t i = 0; i < n; i++) {
                struct guestfs_statns *s = &st->val[i];
                e[i].mode = s->st_mode;
                e[i].size = s->st_size;
                e[i].uid = s->st_uid;
                e[i].gid = s->st_gid;
                e[i].rdev = s->st_rdev;
                e[i].mtime_s = s->st_mtime_sec;
                e[i].mtime_ns = s->st_mtime_nsec;
                if (S_ISLNK((mode_t)s->st_mode))
                        names[links++] = names[i];
        }
        guestfs_free_statns_list(st);
        if (links == 0)
                return 0;
        names[links] = NULL;
        char **targets = guestfs_readlinklist(g, dir, names);
        if (!targets || gfs_count(targets) != links) {
                gfs_free_strings(targets);
                return gfs_fail(g, ret_error, "diff: reading the symlinks in %s", dir);
        }
        for (size_t i = 0, k = 0; i < n; i++)
                if (S_ISLNK((mode_t)e[i].mode)) {
                        e[i].link = targets[k];
                        targets[k++] = NULL;
                }
        gfs_free_strings(targets);
        return 0;
}

static int walk(guestfs_h *g, const char *top, Tree *t, char **ret_error)
{
        int r = list_paths(g, top, t, ret_error);
        if (r < 0)
                return r;
        qsort(t->e, t->n, sizeof *t->e, cmp_parent);
        for (size_t i = 0; i < t->n;) {
                const char *s = strrchr(t->e[i].path, '/');
                size_t plen = s ? (size_t)(s - t->e[i].path) : 0, j = i + 1;
                while (j < t->n) {
                        const char *sj = strrchr(t->e[j].path, '/');
                        size_t pj = sj ? (size_t)(sj - t->e[j].path) : 0;
                        if (pj != plen || memcmp(t->e[j].path, t->e[i].path, plen) != 0)
                                break;
                        j++;
                }
                if ((r = stat_run(g, top, t->e + i, j - i, ret_error)) < 0)
                        return r;
                i = j;
        }
        qsort(t->e, t->n, sizeof *t->e, cmp_path);
        return 0;
}

typedef struct Out {
        json_object *list[3];   /* added, removed, changed */
        size_t count[3];
        size_t checksummed;
        bool truncated;
} Out;

static void emit(Out *o, int which, const char *path)
{
        o->count[which]++;
        if (json_object_array_length(o->list[which]) >= DIFF_LIST_MAX) {
                o->truncated = true;
                return;
        }
        _cleanup_free_ char *abs = xasprintf("/%s", path);
        json_object_array_add(o->list[which], json_object_new_string(abs));
}

static int differs(guestfs_h *g, const Entry *a, const Entry *b, Out *o, bool *ret, char **ret_error)
{
        *ret = true;
        if ((a->mode & S_IFMT) != (b->mode & S_IFMT) || (a->mode & 07777) != (b->mode & 07777) || a->uid != b->uid ||
            a->gid != b->gid)
                return 0;
        mode_t m = (mode_t)a->mode;
        if (S_ISLNK(m)) {
                *ret = strcmp(a->link ? a->link : "", b->link ? b->link : "") != 0;
                return 0;
        }
        if (S_ISCHR(m) || S_ISBLK(m)) {
                *ret = a->rdev != b->rdev;
                return 0;
        }
        if (!S_ISREG(m)) {
                *ret = false;
                return 0;
        }
        if (a->size != b->size)
                return 0;
        if (a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns) {
                *ret = false;
                return 0;
        }
        _cleanup_free_ char *pa = xasprintf("/a/%s", a->path), *pb = xasprintf("/b/%s", b->path);
        _cleanup_free_ char *ca = guestfs_checksum(g, "sha256", pa), *cb = ca ? guestfs_checksum(g, "sha256", pb) : NULL;
        if (!ca || !cb)
                return gfs_fail(g, ret_error, "diff: checksumming /%s", a->path);
        o->checksummed++;
        *ret = strcmp(ca, cb) != 0;
        return 0;
}

/* Which of the roots inspection found lives on disk index (0 = /dev/sda, 1 = /dev/sdb). */
static const char *root_on_disk(char **roots, int index)
{
        for (size_t i = 0; roots[i]; i++)
                if (strncmp(roots[i], "/dev/sd", 7) == 0 && roots[i][7] == 'a' + index)
                        return roots[i];
        return NULL;
}

int image_diff(const ApplianceConfig *cfg, const char *disk1, const char *disk2, json_object **ret, char **ret_error)
{
        _cleanup_(gfs_closep) guestfs_h *g = gfs_open(cfg, ret_error);
        if (!g)
                return -EIO;
        const char *disks[2] = { disk1, disk2 };
        for (int i = 0; i < 2; i++)
                if (guestfs_add_drive_opts(g, disks[i], GUESTFS_ADD_DRIVE_OPTS_FORMAT, "qcow2",
                                           GUESTFS_ADD_DRIVE_OPTS_READONLY, 1, -1) < 0)
                        return gfs_fail(g, ret_error, "diff: adding %s", disks[i]);
        uint64_t t0 = now_ms();
        if (guestfs_launch(g) < 0)
                return gfs_fail(g, ret_error, "diff: starting the libguestfs appliance");
        uint64_t t1 = now_ms();
        char **roots = guestfs_inspect_os(g);
        uint64_t t2 = now_ms();
        if (!roots)
                return gfs_fail(g, ret_error, "diff: inspecting the disks");
        const char *r1 = root_on_disk(roots, 0), *r2 = root_on_disk(roots, 1);
        int r = 0;
        if (!r1 || !r2) {
                *ret_error = xasprintf("diff: found %zu root filesystems, cannot tell one per version (roots on "
                                       "LVM are not supported)",
                                       gfs_count(roots));
                r = -EMEDIUMTYPE;
        } else if (guestfs_mkmountpoint(g, "/a") < 0 || guestfs_mkmountpoint(g, "/b") < 0) {
                r = gfs_fail(g, ret_error, "diff: preparing mountpoints");
        } else if ((r = gfs_mount_os(g, r1, "/a", true, ret_error)) == 0) {
                r = gfs_mount_os(g, r2, "/b", true, ret_error);
        }
        gfs_free_strings(roots);
        if (r < 0)
                return r;

        Tree ta = { 0 }, tb = { 0 };
        Out o = { .list = { json_object_new_array(), json_object_new_array(), json_object_new_array() } };
        if ((r = walk(g, "/a", &ta, ret_error)) == 0 && (r = walk(g, "/b", &tb, ret_error)) == 0) {
                size_t i = 0, j = 0;
                while (r == 0 && (i < ta.n || j < tb.n)) {
                        int c = i >= ta.n ? 1 : j >= tb.n ? -1 : strcmp(ta.e[i].path, tb.e[j].path);
                        if (c < 0) {
                                emit(&o, 1, ta.e[i++].path);
                        } else if (c > 0) {
                                emit(&o, 0, tb.e[j++].path);
                        } else {
                                bool d;
                                if ((r = differs(g, &ta.e[i], &tb.e[j], &o, &d, ret_error)) == 0 && d)
                                        emit(&o, 2, ta.e[i].path);
                                i++;
                                j++;
                        }
                }
        }
        size_t na = ta.n, nb = tb.n;
        log_debug("image diff: launch %llu ms, inspect %llu ms, walk and compare %llu ms", (unsigned long long)(t1 - t0),
                  (unsigned long long)(t2 - t1), (unsigned long long)(now_ms() - t2));
        tree_free(&ta);
        tree_free(&tb);
        if (r < 0) {
                for (int k = 0; k < 3; k++)
                        json_object_put(o.list[k]);
                return r;
        }
        guestfs_umount_all(g);
        json_object *res = json_object_new_object(), *counts = json_object_new_object(), *entries = json_object_new_array();
        static const char *const names[3] = { "added", "removed", "changed" };
        for (int k = 0; k < 3; k++) {
                json_object_object_add(res, names[k], o.list[k]);
                json_object_object_add(counts, names[k], json_object_new_int64((int64_t)o.count[k]));
        }
        json_object_array_add(entries, json_object_new_int64((int64_t)na));
        json_object_array_add(entries, json_object_new_int64((int64_t)nb));
        json_object_object_add(res, "counts", counts);
        json_object_object_add(res, "entries", entries);
        json_object_object_add(res, "checksummed", json_object_new_int64((int64_t)o.checksummed));
        json_object_object_add(res, "truncated", json_object_new_boolean(o.truncated));
        *ret = res;
        return 0;
}
