/* App layer images and manifests (layer.h). The tree an administrator hands over and the files
 * in the catalogue are hostile: the walk never follows a symlink, refuses device nodes, sockets
 * and fifos, and checks sizes before mkfs; the manifest is parsed with a size limit and every
 * field checked. Must never write a file outside the staging dir it was given. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>
#include "common/cleanup.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "common/util.h"
#include "imaging/image.h"
#include "imaging/qemu_img.h"
#include "streaming/layer.h"

/* ext4's own overhead (inode tables, bitmaps, directories) over the bytes of the files: 10 %
 * plus 16 MiB covers a tree of many small files; mkfs -d says so when it does not. */
#define LAYER_SLACK_BYTES (16ull << 20)
#define LAYER_SLACK_PCT 10
#define INODE_BYTES 256u
#define BLOCK 4096ull

bool layer_name_valid(const char *name) { return name && string_is_name(name, LAYER_NAME_MAX); }

void layer_list_free(LayerList *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
        l->v = NULL;
        l->n = 0;
}

static void list_add(LayerList *l, const char *s)
{
        char **v = realloc(l->v, (l->n + 1) * sizeof *v);
        if (!v)
                abort();
        l->v = v;
        l->v[l->n++] = xstrdup(s);
}

void layer_manifest_free(LayerManifest *m)
{
        free(m->name);
        free(m->image);
        free(m->source);
        layer_list_free(&m->packages);
        layer_list_free(&m->executables);
        layer_list_free(&m->menu_entries);
        layer_list_free(&m->overrides);
        *m = (LayerManifest){ 0 };
}

/* A path inside a layer as the manifest names it: relative, no "..", printable, bounded. */
static bool rel_path_ok(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > 4096 || s[0] == '/')
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        return false;
        for (const char *p = s; p; p = strchr(p, '/')) {
                if (*p == '/')
                        p++;
                if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == 0))
                        return false;
        }
        return true;
}

static bool package_ok(const char *s)
{
        /* name=version: Debian's rules, loosely (name [a-z0-9][a-z0-9+.-]*, version printable). */
        const char *eq = strchr(s, '=');
        if (!eq || eq == s || strlen(s) > 256)
                return false;
        for (const char *p = s; p < eq; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '+' || *p == '.' || *p == '-'))
                        return false;
        for (const char *p = eq + 1; *p; p++)
                if ((unsigned char)*p <= ' ' || *p == 0x7f)
                        return false;
        return eq[1] != 0;
}

static int get_list(json_object *o, const char *key, bool (*ok)(const char *), LayerList *ret, char **ret_error)
{
        json_object *a;
        if (!json_object_object_get_ex(o, key, &a))
                return 0;
        if (!json_object_is_type(a, json_type_array)) {
                *ret_error = xasprintf("\"%s\" is not a list", key);
                return -EBADMSG;
        }
        size_t n = json_object_array_length(a);
        if (n > LAYER_LIST_MAX) {
                *ret_error = xasprintf("\"%s\" has %zu entries (at most %u)", key, n, LAYER_LIST_MAX);
                return -EBADMSG;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(a, i);
                if (!json_object_is_type(e, json_type_string) || !ok(json_object_get_string(e))) {
                        *ret_error = xasprintf("\"%s\" entry %zu is not valid", key, i + 1);
                        return -EBADMSG;
                }
                list_add(ret, json_object_get_string(e));
        }
        return 0;
}

static bool sha_ok(const char *s)
{
        if (strlen(s) != LAYER_SHA256_HEX)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

int layer_manifest_parse(const char *json, size_t len, LayerManifest *ret, char **ret_error)
{
        *ret = (LayerManifest){ 0 };
        *ret_error = NULL;
        if (len > LAYER_MANIFEST_MAX) {
                *ret_error = xasprintf("manifest of %zu bytes (at most %u)", len, LAYER_MANIFEST_MAX);
                return -EBADMSG;
        }
        json_tokener *tok = json_tokener_new_ex(16);
        if (!tok)
                return -ENOMEM;
        json_object *o = json_tokener_parse_ex(tok, json, (int)len);
        bool complete = json_tokener_get_error(tok) == json_tokener_success &&
                        json_tokener_get_parse_end(tok) == len;
        json_tokener_free(tok);
        _cleanup_(json_object_putp) json_object *root = o;
        if (!o || !complete || !json_object_is_type(o, json_type_object)) {
                *ret_error = xasprintf("manifest is not one JSON object");
                return -EBADMSG;
        }
        LayerManifest m = { 0 };
        const char *name = NULL, *image = NULL, *sha = NULL, *source = NULL;
        int64_t version = 0, image_version = 0, size = -1, content = 0, files = 0, created = 0;
        if (jsonx_get_string(o, "name", &name) < 0 || !layer_name_valid(name) ||
            jsonx_get_string(o, "image", &image) < 0 || !string_is_name(image, LAYER_NAME_MAX) ||
            jsonx_get_string(o, "sha256", &sha) < 0 || !sha_ok(sha) ||
            jsonx_get_int64(o, "image_version", &image_version) < 0 || image_version < 1 || image_version > 1000000 ||
            jsonx_get_int64(o, "size", &size) < 0 || size < 0) {
                *ret_error = xasprintf("manifest lacks a valid name, image, image_version, size or sha256");
                return -EBADMSG;
        }
        if ((jsonx_get_int64(o, "version", &version) < 0 && json_object_object_get_ex(o, "version", NULL)) ||
            version < 0 || version > 1000000 ||
            (jsonx_get_int64(o, "content_bytes", &content) < 0 && json_object_object_get_ex(o, "content_bytes", NULL)) ||
            content < 0 ||
            (jsonx_get_int64(o, "files", &files) < 0 && json_object_object_get_ex(o, "files", NULL)) || files < 0 ||
            (jsonx_get_int64(o, "created", &created) < 0 && json_object_object_get_ex(o, "created", NULL))) {
                *ret_error = xasprintf("manifest has a malformed number");
                return -EBADMSG;
        }
        source = jsonx_string_or(o, "source", "tree");
        if (strcmp(source, "tree") != 0 && strcmp(source, "capture") != 0) {
                *ret_error = xasprintf("manifest source must be tree or capture");
                return -EBADMSG;
        }
        m.name = xstrdup(name);
        m.image = xstrdup(image);
        m.source = xstrdup(source);
        m.version = (int)version;
        m.image_version = (int)image_version;
        m.size = (uint64_t)size;
        m.content_bytes = (uint64_t)content;
        m.files = (uint64_t)files;
        m.created = created;
        memcpy(m.sha256, sha, LAYER_SHA256_HEX + 1);
        int r;
        if ((r = get_list(o, "packages", package_ok, &m.packages, ret_error)) < 0 ||
            (r = get_list(o, "executables", rel_path_ok, &m.executables, ret_error)) < 0 ||
            (r = get_list(o, "menu_entries", rel_path_ok, &m.menu_entries, ret_error)) < 0 ||
            (r = get_list(o, "overrides", rel_path_ok, &m.overrides, ret_error)) < 0) {
                layer_manifest_free(&m);
                return r;
        }
        *ret = m;
        return 0;
}

json_object *layer_list_json(const LayerList *l)
{
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < l->n; i++)
                json_object_array_add(a, json_object_new_string(l->v[i]));
        return a;
}

char *layer_manifest_format(const LayerManifest *m)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(m->name));
        json_object_object_add(o, "version", json_object_new_int(m->version));
        json_object_object_add(o, "image", json_object_new_string(m->image));
        json_object_object_add(o, "image_version", json_object_new_int(m->image_version));
        json_object_object_add(o, "source", json_object_new_string(m->source ? m->source : "tree"));
        json_object_object_add(o, "packages", layer_list_json(&m->packages));
        json_object_object_add(o, "executables", layer_list_json(&m->executables));
        json_object_object_add(o, "menu_entries", layer_list_json(&m->menu_entries));
        json_object_object_add(o, "overrides", layer_list_json(&m->overrides));
        json_object_object_add(o, "size", json_object_new_int64((int64_t)m->size));
        json_object_object_add(o, "content_bytes", json_object_new_int64((int64_t)m->content_bytes));
        json_object_object_add(o, "files", json_object_new_int64((int64_t)m->files));
        json_object_object_add(o, "sha256", json_object_new_string(m->sha256));
        json_object_object_add(o, "created", json_object_new_int64(m->created));
        char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return s;
}

int layer_manifest_store(const char *dir, const LayerManifest *m)
{
        _cleanup_free_ char *path = xasprintf("%s/" LAYER_MANIFEST_FILE, dir);
        _cleanup_free_ char *s = layer_manifest_format(m);
        return write_file_atomic(path, s, strlen(s), 0444);
}

int layer_manifest_load(const char *dir, LayerManifest *ret, char **ret_error)
{
        _cleanup_free_ char *path = xasprintf("%s/" LAYER_MANIFEST_FILE, dir);
        _cleanup_free_ char *s = NULL;
        size_t n = 0;
        int r = read_file_max(path, LAYER_MANIFEST_MAX, &s, &n);
        if (r < 0) {
                *ret_error = xasprintf("%s: %s", path, r == -EFBIG ? "larger than a manifest can be" : strerror(-r));
                return r;
        }
        return layer_manifest_parse(s, n, ret, ret_error);
}

/* ---- building ---- */

typedef struct Walk {
        const char *root;
        size_t root_len;
        FILE *files;
        uint64_t bytes, entries;
        uint64_t max;
        LayerManifest *m;
        char *error;
} Walk;

/* nftw has no user pointer: one walk at a time per thread. */
static __thread Walk *walk_cur;

static bool top_allowed(const char *rel)
{
        static const char *const tops[] = { "usr", "opt", "etc", "var", "var/lib", "var/lib/dpkg" };
        for (size_t i = 0; i < ELEMENTSOF(tops); i++) {
                size_t n = strlen(tops[i]);
                if (strcmp(rel, tops[i]) == 0)
                        return true;
                if (strncmp(rel, tops[i], n) == 0 && rel[n] == '/' &&
                    (strcmp(tops[i], "usr") == 0 || strcmp(tops[i], "opt") == 0 || strcmp(tops[i], "etc") == 0 ||
                     strcmp(tops[i], "var/lib/dpkg") == 0))
                        return true;
        }
        return false;
}

static bool is_executable_path(const char *rel)
{
        static const char *const dirs[] = { "usr/bin/", "usr/sbin/", "usr/games/", "usr/local/bin/" };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
                if (strncmp(rel, dirs[i], strlen(dirs[i])) == 0 && !strchr(rel + strlen(dirs[i]), '/'))
                        return true;
        /* opt/VENDOR/bin/PROG */
        if (strncmp(rel, "opt/", 4) == 0) {
                const char *vendor_end = strchr(rel + 4, '/');
                return vendor_end && strncmp(vendor_end, "/bin/", 5) == 0 && vendor_end[5] &&
                       !strchr(vendor_end + 5, '/');
        }
        return false;
}

static int walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        Walk *w = walk_cur;
        if (strlen(path) <= w->root_len)
                return 0;
        const char *rel = path + w->root_len + 1;
        if (flag == FTW_DNR || flag == FTW_NS) {
                w->error = xasprintf("%s: cannot be read", rel);
                return 1;
        }
        if (!top_allowed(rel)) {
                w->error = xasprintf("%s: a layer holds only usr/, opt/, etc/ and var/lib/dpkg/", rel);
                return 1;
        }
        if (!rel_path_ok(rel) || strchr(rel, '\n')) {
                w->error = xasprintf("a path in the tree has control characters");
                return 1;
        }
        if (!S_ISDIR(st->st_mode) && !S_ISREG(st->st_mode) && !S_ISLNK(st->st_mode)) {
                w->error = xasprintf("%s: not a file, directory or symlink", rel);
                return 1;
        }
        w->entries++;
        w->bytes += ((uint64_t)st->st_size + BLOCK - 1) / BLOCK * BLOCK + INODE_BYTES;
        if (w->bytes > w->max) {
                w->error = xasprintf("the tree needs more than %llu MiB (the layer size limit)",
                                     (unsigned long long)(w->max >> 20));
                return 1;
        }
        if (S_ISDIR(st->st_mode))
                return 0;
        fprintf(w->files, "%s\n", rel);
        w->m->files++;
        w->m->content_bytes += (uint64_t)st->st_size;
        if (S_ISREG(st->st_mode) && (st->st_mode & 0111) && is_executable_path(rel))
                list_add(&w->m->executables, rel);
        else if (S_ISLNK(st->st_mode) && is_executable_path(rel))
                list_add(&w->m->executables, rel);
        size_t n = strlen(rel);
        if (strncmp(rel, "usr/share/applications/", 23) == 0 && n > 8 && strcmp(rel + n - 8, ".desktop") == 0)
                list_add(&w->m->menu_entries, rel);
        return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* "Package: x" + "Version: y" paragraphs of var/lib/dpkg/status-layer, as name=version. */
static void packages_from_status(const char *tree, LayerList *ret)
{
        _cleanup_free_ char *path = xasprintf("%s/var/lib/dpkg/status-layer", tree);
        _cleanup_free_ char *s = NULL;
        size_t n;
        if (read_file_max(path, LAYER_MANIFEST_MAX, &s, &n) < 0)
                return;
        char pkg[128] = "";
        for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
                if (strncmp(line, "Package: ", 9) == 0)
                        snprintf(pkg, sizeof pkg, "%s", line + 9);
                else if (strncmp(line, "Version: ", 9) == 0 && pkg[0]) {
                        _cleanup_free_ char *e = xasprintf("%s=%s", pkg, line + 9);
                        if (package_ok(e) && ret->n < LAYER_LIST_MAX)
                                list_add(ret, e);
                        pkg[0] = 0;
                }
        }
}

int layer_build(const LayerBuildRequest *req, LayerManifest *ret, char **ret_error)
{
        *ret = (LayerManifest){ 0 };
        *ret_error = NULL;
        struct stat st;
        if (lstat(req->tree, &st) < 0 || !S_ISDIR(st.st_mode)) {
                *ret_error = xasprintf("%s: not a directory", req->tree);
                return -ENOTDIR;
        }
        LayerManifest m = {
                .name = xstrdup(req->name), .image = xstrdup(req->image), .image_version = req->image_version,
                .source = xstrdup(req->source ? req->source : "tree"), .created = (int64_t)now_realtime_s(),
        };
        _cleanup_free_ char *files_path = xasprintf("%s/" LAYER_FILES_FILE, req->staging_dir);
        _cleanup_free_ char *img = xasprintf("%s/" LAYER_IMAGE_FILE, req->staging_dir);
        Walk w = { .root = req->tree, .root_len = strlen(req->tree), .m = &m,
                   .max = req->max_size ? req->max_size : (8ull << 30) };
        while (w.root_len > 1 && req->tree[w.root_len - 1] == '/')
                w.root_len--;
        w.files = fopen(files_path, "we");
        if (!w.files) {
                *ret_error = xasprintf("%s: %m", files_path);
                layer_manifest_free(&m);
                return -errno;
        }
        walk_cur = &w;
        int wr = nftw(req->tree, walk_one, 32, FTW_PHYS);
        walk_cur = NULL;
        fclose(w.files);
        if (wr != 0 || w.error) {
                *ret_error = w.error ? w.error : xasprintf("walking %s: %m", req->tree);
                layer_manifest_free(&m);
                return -EINVAL;
        }
        if (m.files == 0) {
                *ret_error = xasprintf("%s: no files under usr/, opt/ or etc/", req->tree);
                layer_manifest_free(&m);
                return -EINVAL;
        }
        /* files.txt sorted, so that two layers are compared by one merge pass. */
        LayerList fl = { 0 };
        layer_files_load(req->staging_dir, &fl);
        qsort(fl.v, fl.n, sizeof *fl.v, cmp_str);
        FILE *f = fopen(files_path, "we");
        for (size_t i = 0; f && i < fl.n; i++)
                fprintf(f, "%s\n", fl.v[i]);
        if (f)
                fclose(f);
        layer_list_free(&fl);
        chmod(files_path, 0444);

        if (req->packages)
                for (size_t i = 0; i < req->packages->n; i++)
                        list_add(&m.packages, req->packages->v[i]);
        else
                packages_from_status(req->tree, &m.packages);
        if (req->overrides)
                for (size_t i = 0; i < req->overrides->n; i++)
                        list_add(&m.overrides, req->overrides->v[i]);

        uint64_t size = (w.bytes + w.bytes * LAYER_SLACK_PCT / 100 + LAYER_SLACK_BYTES + BLOCK - 1) / BLOCK * BLOCK;
        _cleanup_free_ char *size_arg = xasprintf("%lluk", (unsigned long long)(size >> 10));
        /* No journal: the layer is never written once built. root_owner: the tree's top dir as
         * root's, whoever ran the build; files keep their owners (capture extracts as root). */
        const char *argv[] = { req->mkfs ? req->mkfs : "/sbin/mkfs.ext4", "-q", "-F", "-t", "ext4", "-b", "4096",
                               "-m", "0", "-O", "^has_journal", "-E", "root_owner=0:0", "-L", "slate-layer",
                               "-d", req->tree, img, size_arg, NULL };
        _cleanup_free_ char *err = NULL;
        QemuImgRun opts = { .fd3 = -1 };
        int r = qemu_img_run(argv, &opts, NULL, &err);
        if (r < 0) {
                *ret_error = xasprintf("mkfs.ext4 -d: %s", err && *err ? err : strerror(-r));
                layer_manifest_free(&m);
                return r;
        }
        if (stat(img, &st) < 0 || (r = image_sha256(img, m.sha256)) < 0) {
                *ret_error = xasprintf("%s: cannot hash", img);
                layer_manifest_free(&m);
                return -EIO;
        }
        m.size = (uint64_t)st.st_size;
        chmod(img, 0444);
        if ((r = layer_manifest_store(req->staging_dir, &m)) < 0) {
                *ret_error = xasprintf("writing the manifest: %s", strerror(-r));
                layer_manifest_free(&m);
                return r;
        }
        *ret = m;
        return 0;
}

/* ---- verification ---- */

int layer_fingerprint(const char *path, LayerFingerprint *ret)
{
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        *ret = (LayerFingerprint){
                .dev = (uint64_t)st.st_dev, .ino = (uint64_t)st.st_ino, .size = (uint64_t)st.st_size,
                .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
                .ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec,
        };
        return 0;
}

char *layer_fingerprint_format(const LayerFingerprint *fp)
{
        return xasprintf("%llu:%llu:%llu:%lld:%lld", (unsigned long long)fp->dev, (unsigned long long)fp->ino,
                         (unsigned long long)fp->size, (long long)fp->mtime_ns, (long long)fp->ctime_ns);
}

int layer_fingerprint_parse(const char *s, LayerFingerprint *ret)
{
        unsigned long long d, i, z;
        long long m, c;
        int end = 0;
        if (!s || sscanf(s, "%llu:%llu:%llu:%lld:%lld%n", &d, &i, &z, &m, &c, &end) != 5 || s[end])
                return -EINVAL;
        *ret = (LayerFingerprint){ d, i, z, m, c };
        return 0;
}

bool layer_fingerprint_equal(const LayerFingerprint *a, const LayerFingerprint *b)
{
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns &&
               a->ctime_ns == b->ctime_ns;
}

int layer_stack_write(const char *path, const char *const *images, const uint64_t *sizes, unsigned n,
                      char **ret_error)
{
        *ret_error = NULL;
        if (n == 0) {
                *ret_error = xstrdup("no layers");
                return -EINVAL;
        }
        _cleanup_free_ char *text = xstrdup("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
                                            "createType=\"monolithicFlat\"\n\n# Extent description\n");
        for (unsigned i = 0; i < n; i++) {
                if (images[i][0] != '/' || strpbrk(images[i], "\"\r\n") || sizes[i] == 0 ||
                    sizes[i] % LAYER_STACK_ALIGN) {
                        *ret_error = xasprintf("%s: not a layer image for a stack (path, or a size of %llu bytes "
                                               "that is not a multiple of %d)", images[i],
                                               (unsigned long long)sizes[i], LAYER_STACK_ALIGN);
                        return -EINVAL;
                }
                /* "RW" is the only access QEMU parses; the node itself is opened read-only. */
                char *t = xasprintf("%sRW %llu FLAT \"%s\" 0\n", text, (unsigned long long)(sizes[i] / 512), images[i]);
                free(text);
                text = t;
        }
        int r = write_file_atomic(path, text, strlen(text), 0644);
        if (r < 0)
                *ret_error = xasprintf("%s: %s", path, strerror(-r));
        return r;
}

int layer_verify(const char *dir, const char *sha256, uint64_t size, const LayerFingerprint *known,
                 LayerFingerprint *ret_fp, bool *ret_hashed, char **ret_error)
{
        *ret_error = NULL;
        if (ret_hashed)
                *ret_hashed = false;
        LayerManifest m;
        int r = layer_manifest_load(dir, &m, ret_error);
        if (r < 0)
                return r;
        bool same = strcmp(m.sha256, sha256) == 0 && m.size == size;
        layer_manifest_free(&m);
        if (!same) {
                *ret_error = xasprintf("the manifest does not name the catalogue's image");
                return -EBADMSG;
        }
        _cleanup_free_ char *img = xasprintf("%s/" LAYER_IMAGE_FILE, dir);
        LayerFingerprint fp;
        if ((r = layer_fingerprint(img, &fp)) < 0) {
                *ret_error = xasprintf("%s: %s", img, strerror(-r));
                return r;
        }
        if (fp.size != size) {
                *ret_error = xasprintf("layer.img is %llu bytes, the catalogue says %llu",
                                       (unsigned long long)fp.size, (unsigned long long)size);
                return -EBADMSG;
        }
        if (!known || !layer_fingerprint_equal(known, &fp)) {
                char hex[LAYER_SHA256_HEX + 1];
                if ((r = image_sha256(img, hex)) < 0) {
                        *ret_error = xasprintf("%s: cannot hash", img);
                        return r;
                }
                if (ret_hashed)
                        *ret_hashed = true;
                if (strcmp(hex, sha256) != 0) {
                        *ret_error = xasprintf("layer.img is not what its hash says (sha256 %.12s…, expected %.12s…)",
                                               hex, sha256);
                        return -EBADMSG;
                }
        }
        if (ret_fp)
                *ret_fp = fp;
        return 0;
}

int layer_files_load(const char *dir, LayerList *ret)
{
        *ret = (LayerList){ 0 };
        _cleanup_free_ char *path = xasprintf("%s/" LAYER_FILES_FILE, dir);
        _cleanup_free_ char *s = NULL;
        size_t n;
        int r = read_file_max(path, LAYER_FILES_MAX, &s, &n);
        if (r < 0)
                return r;
        for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n"))
                list_add(ret, line);
        return 0;
}

const char *layer_files_common(const LayerList *a, const LayerList *b)
{
        size_t i = 0, j = 0;
        while (i < a->n && j < b->n) {
                int c = strcmp(a->v[i], b->v[j]);
                if (c == 0)
                        return a->v[i];
                if (c < 0)
                        i++;
                else
                        j++;
        }
        return NULL;
}
