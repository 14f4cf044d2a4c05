/* Parsing and comparing the before/after listings of an app capture (capture_diff.h). The bytes
 * come from programs inside the image: nothing here trusts a length, a count or a path from them. */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/cleanup.h"
#include "common/util.h"
#include "imaging/capture_diff.h"
#include "imaging/gfs.h"

void capture_strv_free(char **v)
{
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

void capture_strv_push(CaptureStrv *s, char *str)
{
        if (s->n + 2 > s->cap) {
                s->cap = s->cap ? s->cap * 2 : 16;
                s->v = realloc(s->v, s->cap * sizeof *s->v);
                if (!s->v)
                        abort();
        }
        s->v[s->n++] = str;
        s->v[s->n] = NULL;
}

char **capture_strv_take(CaptureStrv *s)
{
        if (!s->v)
                s->v = xmalloc0(sizeof *s->v);
        return TAKE_PTR(s->v);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
        if (!*s || strlen(s) > 20)
                return -EBADMSG;
        uint64_t v = 0;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
                        return -EBADMSG;
                v = v * 10 + (uint64_t)(*s - '0');
        }
        if (v > max)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static bool mtime_ok(const char *s)
{
        size_t dots = 0, n = 0;
        for (; *s; s++, n++) {
                if (*s == '.')
                        dots++;
                else if (*s < '0' || *s > '9')
                        return false;
        }
        return n > 0 && n < 32 && dots <= 1;
}

/* Relative, no "." or ".." component, no empty component: what tar and the tree may hold. */
static bool path_ok(const char *p)
{
        if (strlen(p) >= GFS_PATH_MAX)
                return false;
        if (!*p)
                return true;
        for (const char *c = p;;) {
                const char *e = strchr(c, '/');
                size_t len = e ? (size_t)(e - c) : strlen(c);
                if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                if (!e)
                        return true;
                c = e + 1;
        }
}

static int cmp_file(const void *a, const void *b)
{
        return strcmp(((const CaptureFile *)a)->path, ((const CaptureFile *)b)->path);
}

/* One record: fields split at the first six spaces, LINK up to the NUL, then PATH up to the next. */
static int parse_record(char **cur, char *end, CaptureFile *f)
{
        char *fields[6];
        char *p = *cur;
        /* The six spaces come before the record's first NUL: no field holds one. */
        char *first_nul = memchr(p, '\0', (size_t)(end - p));
        if (!first_nul)
                return -EBADMSG;
        for (int i = 0; i < 6; i++) {
                char *sp = memchr(p, ' ', (size_t)(first_nul - p));
                if (!sp)
                        return -EBADMSG;
                *sp = '\0';
                fields[i] = p;
                p = sp + 1;
        }
        char *nul = memchr(p, '\0', (size_t)(end - p));
        if (!nul)
                return -EBADMSG;
        f->link = p;
        char *path = nul + 1;
        if (path >= end || !(nul = memchr(path, '\0', (size_t)(end - path))))
                return -EBADMSG;
        *cur = nul + 1;
        uint64_t mode, uid, gid;
        if (strlen(fields[0]) != 1 || !strchr("fdlcbps", fields[0][0]) || strlen(fields[1]) > 5 ||
            parse_u64(fields[2], UINT32_MAX, &uid) < 0 || parse_u64(fields[3], UINT32_MAX, &gid) < 0 ||
            parse_u64(fields[4], INT64_MAX, &f->size) < 0 || !mtime_ok(fields[5]))
                return -EBADMSG;
        /* find's %m is octal. */
        mode = 0;
        for (const char *m = fields[1]; *m; m++) {
                if (*m < '0' || *m > '7')
                        return -EBADMSG;
                mode = mode * 8 + (uint64_t)(*m - '0');
        }
        if (!fields[1][0] || mode > 07777 || path[0] != '/')
                return -EBADMSG;
        f->type = fields[0][0];
        f->mode = (unsigned)mode;
        f->uid = (uint32_t)uid;
        f->gid = (uint32_t)gid;
        f->mtime = fields[5];
        f->path = path + 1;
        if (!path_ok(f->path) || (f->type != 'l' && *f->link) || strlen(f->link) >= GFS_PATH_MAX)
                return -EBADMSG;
        return 0;
}

int capture_listing_parse(char *buf, size_t len, CaptureListing *ret, char **ret_error)
{
        *ret = (CaptureListing){ .buf = buf };
        if (len > CAPTURE_LISTING_MAX) {
                *ret_error = xasprintf("file listing of %zu bytes (more than %u)", len, CAPTURE_LISTING_MAX);
                return -EBADMSG;
        }
        size_t cap = 0;
        char *cur = buf, *end = buf + len;
        while (cur < end) {
                if (ret->n >= GFS_ENTRIES_MAX) {
                        *ret_error = xasprintf("file listing: more than %d entries", GFS_ENTRIES_MAX);
                        return -EBADMSG;
                }
                if (ret->n == cap) {
                        cap = cap ? cap * 2 : 1024;
                        ret->files = realloc(ret->files, cap * sizeof *ret->files);
                        if (!ret->files)
                                abort();
                }
                size_t at = (size_t)(cur - buf);
                if (parse_record(&cur, end, &ret->files[ret->n]) < 0) {
                        *ret_error = xasprintf("file listing: malformed record at byte %zu", at);
                        return -EBADMSG;
                }
                ret->n++;
        }
        if (ret->n)
                qsort(ret->files, ret->n, sizeof *ret->files, cmp_file);
        for (size_t i = 1; i < ret->n; i++)
                if (strcmp(ret->files[i - 1].path, ret->files[i].path) == 0) {
                        *ret_error = xasprintf("file listing: a path listed twice (%zu entries)", ret->n);
                        return -EBADMSG;
                }
        return 0;
}

void capture_listing_free(CaptureListing *l)
{
        free(l->buf);
        free(l->files);
        *l = (CaptureListing){ 0 };
}

/* Debian policy: names [a-z0-9][a-z0-9+.-]+ (":arch" in binary:Package); versions
 * [epoch:]upstream[-revision] from [A-Za-z0-9.+~:-]. */
static bool pkg_chars_ok(const char *s, const char *extra)
{
        if (!*s || strlen(s) > 256)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr(extra, *s)))
                        return false;
        return true;
}

static bool version_ok(const char *s)
{
        if (!*s || strlen(s) > 256)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr(".+~:-", *s)))
                        return false;
        return true;
}

typedef struct PkgLine {
        char *status, *query, *name, *version;
} PkgLine;

/* Splits text into lines of four tab-separated fields (in place: text is a private copy). */
static int parse_pkgs(char *text, PkgLine **ret, size_t *ret_n, char **ret_error)
{
        size_t n = 0, cap = 0;
        PkgLine *l = NULL;
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                char *f[4];
                f[0] = line;
                for (int i = 1; i < 4; i++) {
                        char *t = strchr(f[i - 1], '\t');
                        if (!t) {
                                free(l);
                                *ret_error = xasprintf("package listing: line %zu has fewer than 4 fields", n + 1);
                                return -EBADMSG;
                        }
                        *t = '\0';
                        f[i] = t + 1;
                }
                if (strchr(f[3], '\t') || strlen(f[0]) > 3 || !pkg_chars_ok(f[1], "+.-:") ||
                    !pkg_chars_ok(f[2], "+.-") || !(version_ok(f[3]) || (f[0][0] != 'i' && !*f[3]))) {
                        free(l);
                        *ret_error = xasprintf("package listing: line %zu is not a Debian package", n + 1);
                        return -EBADMSG;
                }
                if (n >= GFS_ENTRIES_MAX) {
                        free(l);
                        *ret_error = xasprintf("package listing: more than %d lines", GFS_ENTRIES_MAX);
                        return -EBADMSG;
                }
                if (n == cap) {
                        cap = cap ? cap * 2 : 256;
                        l = realloc(l, cap * sizeof *l);
                        if (!l)
                                abort();
                }
                l[n++] = (PkgLine){ f[0], f[1], f[2], f[3] };
        }
        *ret = l;
        *ret_n = n;
        return 0;
}

int capture_packages_added(const char *before, const char *after, char ***ret_query, char ***ret_packages,
                           size_t *ret_n, char **ret_error)
{
        _cleanup_free_ char *b = xstrdup(before), *a = xstrdup(after);
        _cleanup_free_ PkgLine *lb = NULL, *la = NULL;
        size_t nb, na;
        int r;
        if ((r = parse_pkgs(b, &lb, &nb, ret_error)) < 0 || (r = parse_pkgs(a, &la, &na, ret_error)) < 0)
                return r;
        CaptureStrv q = { 0 }, p = { 0 };
        for (size_t i = 0; i < na; i++) {
                if (strcmp(la[i].status, "ii") != 0 && strcmp(la[i].status, "ii ") != 0)
                        continue;
                bool had = false;
                /* Quadratic, but both lists are a few thousand lines at most. */
                for (size_t j = 0; j < nb && !had; j++)
                        had = strncmp(lb[j].status, "ii", 2) == 0 && strcmp(lb[j].query, la[i].query) == 0 &&
                              strcmp(lb[j].version, la[i].version) == 0;
                if (had)
                        continue;
                capture_strv_push(&q, xstrdup(la[i].query));
                capture_strv_push(&p, xasprintf("%s=%s", la[i].name, la[i].version));
        }
        *ret_n = p.n;
        *ret_query = capture_strv_take(&q);
        *ret_packages = capture_strv_take(&p);
        return 0;
}

/* dpkg's own database: the status paragraphs travel as status-layer, the rest is state of
 * the capture's dpkg run. */
static const char *const dpkg_db[] = {
        "var/lib/dpkg/status", "var/lib/dpkg/status-old", "var/lib/dpkg/available", "var/lib/dpkg/available-old",
        "var/lib/dpkg/lock", "var/lib/dpkg/lock-frontend", "var/lib/dpkg/diversions-old",
        "var/lib/dpkg/statoverride-old", "var/lib/dpkg/triggers", "var/lib/dpkg/triggers/*", "var/lib/dpkg/updates",
        "var/lib/dpkg/updates/*", "var/lib/dpkg/tmp.ci", "var/lib/dpkg/tmp.ci/*",
};

/* Regenerated for the whole system by maintainer scripts and triggers when anything is
 * installed: a layer must carry them (golden + layer), but they are no override of the
 * golden's own choices. Patterns for fnmatch without FNM_PATHNAME ('*' spans '/'). */
static const char *const regenerated[] = {
        "etc/alternatives/*", "var/lib/dpkg/alternatives/*", "etc/ld.so.cache",
        "usr/share/icons/*/icon-theme.cache", "usr/share/applications/mimeinfo.cache",
        "usr/share/mime/*", "usr/share/glib-2.0/schemas/gschemas.compiled",
        "usr/lib/*/gdk-pixbuf-2.0/*/loaders.cache", "usr/lib/*/gio/modules/giomodule.cache",
        "usr/lib/*/gtk-3.0/*/immodules.cache", "usr/share/info/dir", "usr/share/info/dir.old",
        "etc/mailcap", "usr/lib/python3/dist-packages/*/__pycache__/*",
};

static bool matches(const char *path, const char *const *pats, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (fnmatch(pats[i], path, 0) == 0)
                        return true;
        return false;
}

bool capture_path_regenerated(const char *path)
{
        return matches(path, regenerated, ELEMENTSOF(regenerated));
}

static bool file_changed(const CaptureFile *a, const CaptureFile *b)
{
        if (a->type != b->type || a->mode != b->mode || a->uid != b->uid || a->gid != b->gid)
                return true;
        if (a->type == 'd')
                return false;
        return a->size != b->size || strcmp(a->mtime, b->mtime) != 0 || strcmp(a->link, b->link) != 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int capture_diff(const CaptureListing *before, const CaptureListing *after, CaptureDiff *ret, char **ret_error)
{
        (void)ret_error;
        CaptureStrv keep = { 0 }, over = { 0 };
        *ret = (CaptureDiff){ 0 };
        size_t i = 0, j = 0;
        /* Both sorted by path: one merge walk. */
        while (i < before->n || j < after->n) {
                int c = i == before->n ? 1 : j == after->n ? -1 : strcmp(before->files[i].path, after->files[j].path);
                if (c < 0) {
                        const char *p = before->files[i++].path;
                        ret->n_removed++;
                        if (!matches(p, dpkg_db, ELEMENTSOF(dpkg_db)) && !capture_path_regenerated(p))
                                capture_strv_push(&over, xstrdup(p));
                        continue;
                }
                const CaptureFile *a = &after->files[j++];
                const CaptureFile *b = c == 0 ? &before->files[i++] : NULL;
                if (!*a->path || (b && !file_changed(b, a)))
                        continue;
                if (matches(a->path, dpkg_db, ELEMENTSOF(dpkg_db)))
                        continue;
                if (b) {
                        ret->n_changed++;
                        if (!capture_path_regenerated(a->path))
                                capture_strv_push(&over, xstrdup(a->path));
                } else
                        ret->n_added++;
                capture_strv_push(&keep, xstrdup(a->path));
        }
        /* Every parent of a kept path, so the tar carries the directories' modes and owners. */
        size_t n_direct = keep.n;
        for (size_t k = 0; k < n_direct; k++) {
                _cleanup_free_ char *p = xstrdup(keep.v[k]);
                for (char *s; (s = strrchr(p, '/'));) {
                        *s = '\0';
                        capture_strv_push(&keep, xstrdup(p));
                }
        }
        if (keep.n)
                qsort(keep.v, keep.n, sizeof *keep.v, cmp_str);
        size_t w = 0;
        for (size_t k = 0; k < keep.n; k++) {
                if (w && strcmp(keep.v[w - 1], keep.v[k]) == 0)
                        free(keep.v[k]);
                else
                        keep.v[w++] = keep.v[k];
        }
        keep.n = w;
        if (keep.v)
                keep.v[w] = NULL;
        ret->n_keep = keep.n;
        ret->keep = capture_strv_take(&keep);
        ret->n_overrides = over.n;
        ret->overrides = capture_strv_take(&over);
        return 0;
}

void capture_diff_free(CaptureDiff *d)
{
        capture_strv_free(d->keep);
        capture_strv_free(d->overrides);
        *d = (CaptureDiff){ 0 };
}
