/* Internal to imaging/capture.c: the listings the capture takes inside the image before and after
 * `apt-get install` (find -printf, dpkg-query), parsed and compared on the host. The bytes come
 * from the image's own programs, so they are hostile: sizes are capped, every record is checked,
 * and a bad one refuses the whole listing. Pure functions (no I/O), unit-tested directly. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One file, as `find -printf CAPTURE_FIND_FORMAT` prints it: "T MODE UID GID SIZE MTIME LINK\0PATH\0"
 * with PATH absolute. The fixed fields come first so that LINK and PATH may hold any byte but NUL. */
#define CAPTURE_FIND_FORMAT "%y %m %U %G %s %T@ %l\\0%p\\0"
/* A listing larger than this is refused: a desktop image has ~150k entries of ~120 bytes. */
#define CAPTURE_LISTING_MAX (256u << 20)

typedef struct CaptureFile {
        char type;              /* find's %y: f d l c b p s */
        unsigned mode;          /* permission bits (07777) */
        uint32_t uid, gid;
        uint64_t size;
        const char *mtime;      /* as printed (seconds.fraction), compared as text */
        const char *link;       /* symlink target, "" otherwise */
        const char *path;       /* relative to / ("usr/bin/hello"); "" for / itself */
} CaptureFile;

typedef struct CaptureListing {
        char *buf;              /* owns the strings the entries point into */
        CaptureFile *files;     /* sorted by path */
        size_t n;
} CaptureListing;

/* Takes ownership of buf (len bytes, from the image). -EBADMSG with *ret_error on a malformed
 * record, a path with a ".." component, a duplicate path or more than GFS_ENTRIES_MAX entries. */
int capture_listing_parse(char *buf, size_t len, CaptureListing *ret, char **ret_error);
void capture_listing_free(CaptureListing *l);

/* A package line of `dpkg-query -W -f CAPTURE_DPKG_FORMAT`: status, the name dpkg-query -s
 * takes (with :arch for Multi-Arch: same), plain name, version. */
#define CAPTURE_DPKG_FORMAT "${db:Status-Abbrev}\\t${binary:Package}\\t${Package}\\t${Version}\\n"

/* Packages installed (status "ii") in after and not in before at that version: *ret_query gets
 * the binary:Package names, *ret_packages "name=version". Both NULL-terminated. -EBADMSG on a
 * line that is not four tab-separated fields with Debian's name and version characters. */
int capture_packages_added(const char *before, const char *after, char ***ret_query, char ***ret_packages,
                           size_t *ret_n, char **ret_error);

typedef struct CaptureDiff {
        char **keep;            /* what goes into the layer tree, sorted, with every parent dir */
        size_t n_keep;
        char **overrides;       /* golden paths the install changed or removed, not allow-listed */
        size_t n_overrides;
        size_t n_added, n_changed, n_removed;   /* for the log */
} CaptureDiff;

/* What the install added or changed. A path is changed when its type, permission bits, owner,
 * group, size, mtime or link target differ (directories: only type, bits and owners: a new
 * entry changes a directory's size and mtime). Paths never kept: dpkg's own database
 * (status, available, lock files, triggers, updates; the layer carries status-layer instead).
 * Kept but not overrides: what maintainer scripts and triggers regenerate for the whole system
 * (the alternatives, ld.so.cache, icon/mime/desktop/schema/module caches, info dir). */
int capture_diff(const CaptureListing *before, const CaptureListing *after, CaptureDiff *ret, char **ret_error);
void capture_diff_free(CaptureDiff *d);
/* 1 when path is one of the regenerated system caches above (exposed for the tests). */
bool capture_path_regenerated(const char *path);
/* NULL-terminated arrays of owned strings. */
typedef struct CaptureStrv {
        char **v;
        size_t n, cap;
} CaptureStrv;
void capture_strv_push(CaptureStrv *s, char *str);      /* takes str */
char **capture_strv_take(CaptureStrv *s);               /* never NULL */
void capture_strv_free(char **v);
