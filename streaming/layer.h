/* App layers on disk (DESIGN.md "App layers"): a read-only ext4 image built from a tree that holds
 * /usr, /opt, /etc and dpkg's records, with a manifest, stored as <app_dir>/<name>/v<N>/
 * {layer.img, manifest.json, files.txt}, files 0444. The tree and the stored files are hostile
 * input (an administrator's, or written by a package's maintainer scripts): the manifest is read
 * only through layer_manifest_parse, with a size limit, and a layer is attached only while its
 * image is what the catalogue's hash says. No SQLite here, no QEMU: the broker keeps the catalogue. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LAYER_NAME_MAX 64
#define LAYER_SHA256_HEX 64
/* A manifest lists packages, executables and menu entries: a few thousand lines at most for a
 * large suite; anything past 1 MiB is not a manifest we wrote. */
#define LAYER_MANIFEST_MAX (1u << 20)
#define LAYER_LIST_MAX 20000
/* files.txt: one path per regular file/symlink; 64 MiB holds ~500,000 paths. */
#define LAYER_FILES_MAX (64u << 20)
#define LAYER_IMAGE_FILE "layer.img"
#define LAYER_MANIFEST_FILE "manifest.json"
#define LAYER_FILES_FILE "files.txt"

typedef struct LayerList {
        char **v;
        size_t n;
} LayerList;

typedef struct LayerManifest {
        char *name;
        int version;
        char *image;                    /* the golden image it was made against */
        int image_version;
        char *source;                   /* "capture" or "tree" */
        LayerList packages;             /* "name=version" */
        LayerList executables;          /* paths relative to / */
        LayerList menu_entries;         /* usr/share/applications/NAME.desktop */
        LayerList overrides;            /* files of the golden image the layer replaces */
        uint64_t size;                  /* bytes of layer.img */
        uint64_t content_bytes;         /* bytes of the files inside */
        uint64_t files;                 /* entries in files.txt */
        char sha256[LAYER_SHA256_HEX + 1];      /* of layer.img */
        int64_t created;
} LayerManifest;

/* Pure: parse a manifest (no I/O; fuzzed). -EBADMSG with *ret_error on anything malformed. */
int layer_manifest_parse(const char *json, size_t len, LayerManifest *ret, char **ret_error);
char *layer_manifest_format(const LayerManifest *m);
void layer_manifest_free(LayerManifest *m);
void layer_list_free(LayerList *l);
struct json_object;
struct json_object *layer_list_json(const LayerList *l);   /* a JSON array of the strings */
bool layer_name_valid(const char *name);

typedef struct LayerBuildRequest {
        const char *tree;               /* usr/, opt/, etc/, var/lib/dpkg/{info,status-layer} */
        const char *staging_dir;        /* empty dir: layer.img, manifest.json, files.txt go here */
        const char *name;
        const char *image;
        int image_version;
        const char *source;
        const LayerList *packages;      /* may be NULL: then read from var/lib/dpkg/status-layer */
        const LayerList *overrides;     /* may be NULL */
        uint64_t max_size;              /* refused when the files need more */
        const char *mkfs;               /* mkfs.ext4 path, NULL: from PATH */
} LayerBuildRequest;

/* Blocking: check the tree (only usr, opt, etc and var/lib/dpkg at the top; regular files,
 * dirs and symlinks only; nothing over max_size), build layer.img with mkfs.ext4 -d, hash it,
 * write files.txt and manifest.json (version is filled in later by layer_manifest_store).
 * On failure *ret_error says why in one line. */
int layer_build(const LayerBuildRequest *req, LayerManifest *ret, char **ret_error);
/* Write m as dir/manifest.json (0444), replacing what is there. */
int layer_manifest_store(const char *dir, const LayerManifest *m);
/* Read and parse dir/manifest.json (size-limited). */
int layer_manifest_load(const char *dir, LayerManifest *ret, char **ret_error);

/* What an image file looked like when it was last hashed: a write to it changes its ctime
 * (which nobody can set back), so an unchanged fingerprint means an unchanged file. */
typedef struct LayerFingerprint {
        uint64_t dev, ino, size;
        int64_t mtime_ns, ctime_ns;
} LayerFingerprint;
int layer_fingerprint(const char *path, LayerFingerprint *ret);
char *layer_fingerprint_format(const LayerFingerprint *fp);
int layer_fingerprint_parse(const char *s, LayerFingerprint *ret);
bool layer_fingerprint_equal(const LayerFingerprint *a, const LayerFingerprint *b);

/* Check a stored version dir against the catalogue's sha256 and size: the manifest parses and
 * names the same hash, and layer.img has that size and (unless its fingerprint equals *known)
 * that SHA-256. *ret_fp gets the fingerprint to remember. Blocking (hashes when needed). */
int layer_verify(const char *dir, const char *sha256, uint64_t size, const LayerFingerprint *known,
                 LayerFingerprint *ret_fp, bool *ret_hashed, char **ret_error);

/* A session's layers as one disk: writes path, a VMDK descriptor whose FLAT extents are the
 * images back to back (QEMU reads it read-only: the images are shared by every desktop and
 * nothing is copied). Each size must be a positive multiple of LAYER_STACK_ALIGN; image paths
 * absolute, without quotes or line breaks. The guest finds image i at the sum of the sizes
 * before it. */
#define LAYER_STACK_ALIGN 4096
int layer_stack_write(const char *path, const char *const *images, const uint64_t *sizes, unsigned n,
                      char **ret_error);

/* The paths in dir/files.txt, for conflict checks (sorted). */
int layer_files_load(const char *dir, LayerList *ret);
/* The first path both sorted lists hold, or NULL. */
const char *layer_files_common(const LayerList *a, const LayerList *b);
