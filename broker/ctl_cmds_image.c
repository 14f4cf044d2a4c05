/* slatectl image ...: golden images and their versions (publish, list, show, current, retire,
 * verify). Local paths are made absolute here; slated reads the files itself. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker/ctl_cmds.h"
#include "broker/ctl_format.h"
#include "common/util.h"

static void print_version_line(json_object *v, const char *what, bool say_current)
{
        _cleanup_free_ char *name = cell(v, "name"), *ver = cell(v, "version"), *fmt = cell(v, "format"),
                            *size = cell_bytes(v, "size"), *sha = cell_prefix(v, "sha256", 12);
        bool cur = false;
        if (say_current)
                jsonx_get_bool(v, "current", &cur);
        printf("%s:v%s %s (%s, %s, sha256 %s)%s\n", name, ver, what, fmt, size, sha, cur ? ", current" : "");
}

static int abs_path(const char *opt, const char *in, char **ret)
{
        char *p = realpath(in, NULL);
        if (!p) {
                errorf("%s%s%s: %s", opt ? opt : "", opt ? " " : "", in, strerror(errno));
                return EXIT_FAIL;
        }
        *ret = p;
        return EXIT_OK;
}

static int cmd_image_publish(Ctl *c, int argc, char **argv)
{
        const char *kernel = NULL, *initrd = NULL, *cmdline = NULL;
        bool current = false, as_is = false;
        const Opt opts[] = {
                { "--kernel", &kernel, NULL },
                { "--initrd", &initrd, NULL },
                { "--cmdline", &cmdline, NULL },
                { "--current", NULL, &current },
                { "--as-is", NULL, &as_is },
                {},
        };
        char *pos[2];
        PARSE_OR_RETURN(c, argc, argv, opts, pos, 2, 2);
        if ((initrd || cmdline) && !kernel)
                return usage_error(c, "--initrd and --cmdline need --kernel");

        _cleanup_free_ char *path = NULL, *k = NULL, *i = NULL;
        int r;
        if ((r = abs_path(NULL, pos[1], &path)) != EXIT_OK ||
            (kernel && (r = abs_path("--kernel", kernel, &k)) != EXIT_OK) ||
            (initrd && (r = abs_path("--initrd", initrd, &i)) != EXIT_OK))
                return r;
        json_object *args = args_name(pos[0]);
        json_object_object_add(args, "path", json_object_new_string(path));
        if (k)
                json_object_object_add(args, "kernel", json_object_new_string(k));
        if (i)
                json_object_object_add(args, "initrd", json_object_new_string(i));
        if (cmdline)
                json_object_object_add(args, "cmdline", json_object_new_string(cmdline));
        if (current)
                json_object_object_add(args, "current", json_object_new_boolean(true));
        if (as_is)
                json_object_object_add(args, "as_is", json_object_new_boolean(true));

        _cleanup_json_ json_object *res = NULL;
        r = ctl_call(c, "image.publish", args, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json)
                print_json(res);
        else
                print_version_line(res, "published", true);
        return EXIT_OK;
}

static void image_row(Table *t, json_object *o)
{
        table_row(t, cell(o, "name"), cell(o, "current"), cell(o, "versions"), cell(o, "latest"));
}

static int cmd_image_list(Ctl *c, int argc, char **argv)
{
        PARSE_OR_RETURN(c, argc, argv, NULL, NULL, 0, 0);
        static const char *const hdr[] = { "NAME", "CURRENT", "VERSIONS", "LATEST" };
        return ctl_cmd_list(c, "image.list", NULL, NULL, hdr, ELEMENTSOF(hdr), image_row);
}

static void version_row(Table *t, json_object *v)
{
        table_row(t, cell(v, "version"), cell(v, "current"), cell(v, "state"), cell(v, "format"),
                  cell_bytes(v, "size"), cell_prefix(v, "sha256", 12), cell(v, "boot"),
                  fmt_time(jsonx_int_or(v, "created", 0)), cell(v, "desktops"));
}

static int cmd_image_show(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        static const char *const hdr[] = { "VER",    "CURRENT", "STATE",   "FORMAT",  "SIZE",
                                           "SHA256", "BOOT",    "CREATED", "DESKTOPS" };
        return ctl_cmd_list(c, "image.show", args_name(pos[0]), "versions", hdr, ELEMENTSOF(hdr), version_row);
}

static int image_version_cmd(Ctl *c, int argc, char **argv, const char *api, const char *what)
{
        char *pos[2];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 2, 2);
        json_object *args = args_name(pos[0]);
        if (parse_version(c, pos[1], args) != 0) {
                json_object_put(args);
                return EXIT_USAGE;
        }
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, api, args, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json)
                print_json(res);
        else
                print_version_line(res, what, strcmp(api, "image.current") != 0);
        return EXIT_OK;
}

static int cmd_image_current(Ctl *c, int argc, char **argv)
{
        return image_version_cmd(c, argc, argv, "image.current", "is now current");
}

static int cmd_image_retire(Ctl *c, int argc, char **argv)
{
        return image_version_cmd(c, argc, argv, "image.retire", "retired");
}

static int cmd_image_verify(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "image.verify", args_name(pos[0]), &res);
        if (r != EXIT_OK)
                return r;
        static const char *const hdr[] = { "VER", "SHA256", "RESULT" };
        Table t = { .ncols = ELEMENTSOF(hdr), .header = hdr };
        size_t n = json_object_is_type(res, json_type_array) ? json_object_array_length(res) : 0, bad = 0;
        for (size_t j = 0; j < n; j++) {
                json_object *v = json_object_array_get_idx(res, j);
                bool ok = false;
                jsonx_get_bool(v, "ok", &ok);   /* missing or not a bool counts as a mismatch */
                bad += !ok;
                table_row(&t, cell(v, "version"), cell_prefix(v, "sha256", 12), xstrdup(ok ? "ok" : "MISMATCH"));
        }
        if (c->json)
                print_json(res);
        else
                table_print(&t, stdout);
        table_free(&t);
        if (bad) {
                _cleanup_free_ char *name = sanitize(pos[0]);
                fflush(stdout);
                errorf("image %s: %zu of %zu versions do not match their checksum", name, bad, n);
                return EXIT_FAIL;
        }
        return EXIT_OK;
}

static int cmd_image_gc(Ctl *c, int argc, char **argv)
{
        PARSE_OR_RETURN(c, argc, argv, NULL, NULL, 0, 0);
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "image.gc", json_object_new_object(), &res);
        if (r != EXIT_OK)
                return r;
        if (c->json) {
                print_json(res);
                return EXIT_OK;
        }
        json_object *removed = NULL;
        json_object_object_get_ex(res, "removed", &removed);
        size_t n = removed && json_object_is_type(removed, json_type_array) ? json_object_array_length(removed) : 0;
        for (size_t j = 0; j < n; j++) {
                json_object *v = json_object_array_get_idx(removed, j);
                _cleanup_free_ char *name = cell(v, "name"), *ver = cell(v, "version"), *size = cell_bytes(v, "size");
                printf("removed %s:v%s (%s)\n", name, ver, size);
        }
        if (n == 0)
                printf("nothing to remove: no retired version is unused\n");
        return EXIT_OK;
}

/* v1 and v2 from two version arguments (parse_version writes "version": rename it). */
static int diff_versions(Ctl *c, char **pos, json_object *args)
{
        static const char *const keys[2] = { "v1", "v2" };
        for (int i = 0; i < 2; i++) {
                if (parse_version(c, pos[i], args) != 0)
                        return -1;
                json_object *v = NULL;
                json_object_object_get_ex(args, "version", &v);
                json_object_object_add(args, keys[i], json_object_get(v));
                json_object_object_del(args, "version");
        }
        return 0;
}

static int cmd_image_diff(Ctl *c, int argc, char **argv)
{
        char *pos[3];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 3, 3);
        json_object *args = args_name(pos[0]);
        if (diff_versions(c, pos + 1, args) != 0) {
                json_object_put(args);
                return EXIT_USAGE;
        }
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "image.diff", args, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json) {
                print_json(res);
                return EXIT_OK;
        }
        /* One line per path, like diff --brief: "+ added", "- removed", "M changed". */
        static const struct {
                const char *key, *mark;
        } lists[] = { { "added", "+" }, { "removed", "-" }, { "changed", "M" } };
        for (size_t k = 0; k < ELEMENTSOF(lists); k++) {
                json_object *l = NULL;
                json_object_object_get_ex(res, lists[k].key, &l);
                size_t n = json_object_is_type(l, json_type_array) ? json_object_array_length(l) : 0;
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *p = sanitize(json_object_get_string(json_object_array_get_idx(l, i)));
                        printf("%s %s\n", lists[k].mark, p);
                }
        }
        bool truncated = false;
        jsonx_get_bool(res, "truncated", &truncated);
        if (truncated)
                printf("(lists truncated; see --json counts)\n");
        return EXIT_OK;
}

const Command ctl_cmds_image[] = {
        { "image", "publish", "NAME FILE|DIR [--kernel FILE [--initrd FILE] [--cmdline TEXT]] [--current] [--as-is]",
          "\nPublish FILE (qcow2, raw, vmdk, vdi or vhdx) as the next version of golden image NAME.\n"
          "FILE may also be a directory holding a root filesystem (packed into ext4).\n"
          "slated converts, inspects (OS, bootability), seals (machine-id, host keys, logs, histories,\n"
          "temp files), installs slate-agent and checksums it; progress is shown on stderr.\n\n"
          "Options:\n"
          "  --kernel FILE   boot desktops of this version with this kernel (direct boot)\n"
          "  --initrd FILE   initial ramdisk for --kernel\n"
          "  --cmdline TEXT  kernel command line for --kernel\n"
          "  --current       make the new version current at once\n"
          "  --as-is         publish the file as it is: no inspection, sealing or agent install\n"
          "                  (for images your own pipeline prepared; a directory cannot be)\n" COMMON_OPTS,
          cmd_image_publish },
        { "image", "list", "", "\nList golden images with their current and latest version.\n\nOptions:\n" COMMON_OPTS,
          cmd_image_list },
        { "image", "show", "NAME", "\nShow every version of image NAME.\n\nOptions:\n" COMMON_OPTS, cmd_image_show },
        { "image", "current", "NAME VERSION",
          "\nMake VERSION (3 or v3) the current version of NAME: new desktops boot from it,\n"
          "running ones keep theirs. Making an older version current is a rollback.\n\nOptions:\n" COMMON_OPTS,
          cmd_image_current },
        { "image", "retire", "NAME VERSION",
          "\nRetire VERSION of NAME; refused while a desktop or pool uses it.\n\nOptions:\n" COMMON_OPTS,
          cmd_image_retire },
        { "image", "gc", "",
          "\nRemove retired versions that no desktop uses any more (files and catalogue entries).\n\n"
          "Options:\n" COMMON_OPTS,
          cmd_image_gc },
        { "image", "verify", "NAME",
          "\nRecompute the checksum of every version of NAME. Exits 1 if any does not match.\n\n"
          "Options:\n" COMMON_OPTS,
          cmd_image_verify },
        { "image", "diff", "NAME V1 V2",
          "\nList the files added (+), removed (-) and changed (M) from version V1 to V2 of NAME.\n"
          "Both disks are read in a libguestfs appliance; /proc, /sys and /dev contents are skipped.\n"
          "A regular file counts as changed when its size, type, mode or owner differ, or when only\n"
          "its mtime differs and its sha256 does too.\n\n"
          "Options:\n" COMMON_OPTS,
          cmd_image_diff },
        {},
};
