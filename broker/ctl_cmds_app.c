/* slatectl app ..., profile ... and user show: app layers (add, list, show, current, retire,
 * gc, verify, entitle, revoke), roaming profiles (list, show, reset, quota, prune) and what one
 * user gets. Local paths are made absolute here; slated reads the files itself. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "broker/ctl_cmds.h"
#include "broker/ctl_format.h"
#include "common/util.h"

static void print_app_version(json_object *v, const char *what)
{
        _cleanup_free_ char *name = cell(v, "name"), *ver = cell(v, "version"), *img = cell(v, "image"),
                            *iv = cell(v, "image_version"), *size = cell_bytes(v, "size"),
                            *sha = cell_prefix(v, "sha256", 12);
        bool cur = false;
        jsonx_get_bool(v, "current", &cur);
        printf("%s:v%s %s (for %s:v%s, %s, sha256 %s)%s\n", name, ver, what, img, iv, size, sha,
               cur ? ", current" : "");
}

static int image_arg(Ctl *c, const char *s, json_object *args)
{
        _cleanup_free_ char *img = xstrdup(s);
        char *colon = strchr(img, ':');
        if (colon) {
                *colon = 0;
                json_object *tmp = json_object_new_object();
                if (parse_version(c, colon + 1, tmp) != 0) {
                        json_object_put(tmp);
                        return -1;
                }
                json_object *v;
                json_object_object_get_ex(tmp, "version", &v);
                json_object_object_add(args, "image_version", json_object_get(v));
                json_object_put(tmp);
        }
        json_object_object_add(args, "image", json_object_new_string(img));
        return 0;
}

static int cmd_app_add(Ctl *c, int argc, char **argv)
{
        const char *image = NULL;
        bool no_current = false;
        const Opt opts[] = { { "--image", &image, NULL }, { "--no-current", NULL, &no_current }, {} };
        char *pos[2];
        PARSE_OR_RETURN(c, argc, argv, opts, pos, 2, 2);
        if (!image)
                return usage_error(c, "--image IMAGE[:VERSION] is required (the golden image the tree was made for)");
        _cleanup_free_ char *path = realpath(pos[1], NULL);
        if (!path) {
                errorf("%s: %s", pos[1], strerror(errno));
                return EXIT_FAIL;
        }
        json_object *args = args_name(pos[0]);
        json_object_object_add(args, "path", json_object_new_string(path));
        if (image_arg(c, image, args) < 0) {
                json_object_put(args);
                return EXIT_USAGE;
        }
        if (no_current)
                json_object_object_add(args, "current", json_object_new_boolean(false));
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "app.add", args, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json)
                print_json(res);
        else
                print_app_version(res, "added");
        return EXIT_OK;
}

static int cmd_app_capture(Ctl *c, int argc, char **argv)
{
        const char *image = NULL, *packages = NULL, *deb_dir = NULL;
        bool no_current = false, allow = false;
        const Opt opts[] = { { "--image", &image, NULL }, { "--packages", &packages, NULL },
                             { "--deb-dir", &deb_dir, NULL }, { "--allow-overrides", NULL, &allow },
                             { "--no-current", NULL, &no_current }, {} };
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, opts, pos, 1, 1);
        if (!image || !packages)
                return usage_error(c, "--image IMAGE[:VERSION] and --packages PKG,... are required");
        json_object *args = args_name(pos[0]);
        json_object_object_add(args, "packages", json_object_new_string(packages));
        if (image_arg(c, image, args) < 0) {
                json_object_put(args);
                return EXIT_USAGE;
        }
        if (deb_dir) {
                char *d = realpath(deb_dir, NULL);
                if (!d) {
                        json_object_put(args);
                        errorf("--deb-dir %s: %s", deb_dir, strerror(errno));
                        return EXIT_FAIL;
                }
                json_object_object_add(args, "deb_dir", json_object_new_string(d));
                free(d);
        }
        if (allow)
                json_object_object_add(args, "allow_overrides", json_object_new_boolean(true));
        if (no_current)
                json_object_object_add(args, "current", json_object_new_boolean(false));
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "app.capture", args, &res);
        if (r != EXIT_OK)
                return r;
        if (c->json) {
                print_json(res);
                return EXIT_OK;
        }
        print_app_version(res, "captured");
        kv("packages:", cell_list(res, "packages", ", ", "-"));
        kv("programs:", cell_list(res, "executables", ", ", "-"));
        kv("menu:", cell_list(res, "menu_entries", ", ", "-"));
        kv("overrides:", cell_list(res, "overrides", ", ", "none"));
        return EXIT_OK;
}

static void app_row(Table *t, json_object *o)
{
        _cleanup_free_ char *img = cell(o, "image"), *iv = cell(o, "image_version");
        table_row(t, cell(o, "name"), cell(o, "current"), cell(o, "versions"), xasprintf("%s:v%s", img, iv),
                  cell_bytes(o, "size"), cell_list(o, "entitlements", ",", "nobody"));
}

static int cmd_app_list(Ctl *c, int argc, char **argv)
{
        PARSE_OR_RETURN(c, argc, argv, NULL, NULL, 0, 0);
        static const char *const hdr[] = { "NAME", "CURRENT", "VERSIONS", "FOR", "SIZE", "ENTITLED" };
        return ctl_cmd_list(c, "app.list", NULL, NULL, hdr, ELEMENTSOF(hdr), app_row);
}

static void print_app(json_object *res)
{
        kv("name:", cell(res, "name"));
        kv("current:", cell(res, "current"));
        kv("entitled:", cell_list(res, "entitlements", ", ", "nobody"));
        json_object *vs = NULL;
        json_object_object_get_ex(res, "versions", &vs);
        size_t n = vs && json_object_is_type(vs, json_type_array) ? json_object_array_length(vs) : 0;
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(vs, i);
                _cleanup_free_ char *ver = cell(v, "version"), *state = cell(v, "state"), *img = cell(v, "image"),
                                    *iv = cell(v, "image_version"), *src = cell(v, "source");
                printf("\nv%s (%s, %s, for %s:v%s)\n", ver, state, src, img, iv);
                kv("  size:", cell_bytes(v, "size"));
                kv("  sha256:", cell(v, "sha256"));
                kv("  files:", cell(v, "files"));
                kv("  packages:", cell_list(v, "packages", ", ", "-"));
                kv("  programs:", cell_list(v, "executables", ", ", "-"));
                kv("  menu:", cell_list(v, "menu_entries", ", ", "-"));
                kv("  overrides:", cell_list(v, "overrides", ", ", "none"));
        }
}

static int cmd_app_show(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        return ctl_cmd_show(c, "app.show", args_name(pos[0]), print_app);
}

static int app_version_cmd(Ctl *c, int argc, char **argv, const char *api, const char *what)
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
                print_app_version(res, what);
        return EXIT_OK;
}

static int cmd_app_current(Ctl *c, int argc, char **argv)
{
        return app_version_cmd(c, argc, argv, "app.current", "is now current");
}

static int cmd_app_retire(Ctl *c, int argc, char **argv) { return app_version_cmd(c, argc, argv, "app.retire", "retired"); }

static int cmd_app_gc(Ctl *c, int argc, char **argv)
{
        PARSE_OR_RETURN(c, argc, argv, NULL, NULL, 0, 0);
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "app.gc", json_object_new_object(), &res);
        if (r != EXIT_OK)
                return r;
        if (c->json) {
                print_json(res);
                return EXIT_OK;
        }
        size_t n = json_object_is_type(res, json_type_array) ? json_object_array_length(res) : 0;
        for (size_t j = 0; j < n; j++) {
                json_object *v = json_object_array_get_idx(res, j);
                _cleanup_free_ char *name = cell(v, "name"), *ver = cell(v, "version"), *size = cell_bytes(v, "bytes");
                printf("removed %s:v%s (%s)\n", name, ver, size);
        }
        if (n == 0)
                printf("nothing to remove: no app version is retired\n");
        return EXIT_OK;
}

static int cmd_app_verify(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        _cleanup_json_ json_object *res = NULL;
        int r = ctl_call(c, "app.verify", args_name(pos[0]), &res);
        if (r != EXIT_OK)
                return r;
        size_t n = json_object_is_type(res, json_type_array) ? json_object_array_length(res) : 0, bad = 0;
        static const char *const hdr[] = { "VER", "RESULT" };
        Table t = { .ncols = ELEMENTSOF(hdr), .header = hdr };
        for (size_t j = 0; j < n; j++) {
                json_object *v = json_object_array_get_idx(res, j);
                bool ok = false;
                jsonx_get_bool(v, "ok", &ok);
                bad += !ok;
                table_row(&t, cell(v, "version"), ok ? xstrdup("ok") : cell(v, "error"));
        }
        if (c->json)
                print_json(res);
        else
                table_print(&t, stdout);
        table_free(&t);
        if (bad) {
                _cleanup_free_ char *name = sanitize(pos[0]);
                fflush(stdout);
                errorf("app %s: %zu of %zu versions failed verification", name, bad, n);
                return EXIT_FAIL;
        }
        return EXIT_OK;
}

static int app_entitle_cmd(Ctl *c, int argc, char **argv, const char *api, const char *done)
{
        char *pos[2];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 2, 2);
        const char *why = principal_check(pos[1]);
        if (why)
                return usage_error(c, "principal \"%s\": %s", pos[1], why);
        json_object *args = args_name(pos[0]);
        json_object_object_add(args, "principal", json_object_new_string(pos[1]));
        return ctl_cmd_done(c, api, args, "app", pos[0], done);
}

static int cmd_app_entitle(Ctl *c, int argc, char **argv)
{
        return app_entitle_cmd(c, argc, argv, "app.entitle", "entitlement added (from the next logon)");
}

static int cmd_app_revoke(Ctl *c, int argc, char **argv)
{
        return app_entitle_cmd(c, argc, argv, "app.revoke", "entitlement removed (from the next logon)");
}

/* ---- profiles and users ---- */

static void profile_row(Table *t, json_object *o)
{
        bool enc = false, clean = true;
        jsonx_get_bool(o, "encrypted", &enc);
        jsonx_get_bool(o, "clean", &clean);
        _cleanup_free_ char *att = cell(o, "attached_to");
        table_row(t, cell(o, "user"), cell(o, "generation"), cell_bytes(o, "size"), cell_bytes(o, "used"),
                  xstrdup(enc ? "yes" : "NO"), fmt_time(jsonx_int_or(o, "last_attach", 0)),
                  xstrdup(strcmp(att, "-") != 0 && *att ? att : clean ? "-" : "(not detached cleanly)"));
}

static int cmd_profile_list(Ctl *c, int argc, char **argv)
{
        bool all = false;
        const Opt opts[] = { { "--all", NULL, &all }, {} };
        PARSE_OR_RETURN(c, argc, argv, opts, NULL, 0, 0);
        json_object *args = json_object_new_object();
        if (all)
                json_object_object_add(args, "all", json_object_new_boolean(true));
        static const char *const hdr[] = { "USER", "GEN", "SIZE", "USED", "ENCRYPTED", "LAST ATTACH", "ATTACHED TO" };
        return ctl_cmd_list(c, "profile.list", args, NULL, hdr, ELEMENTSOF(hdr), profile_row);
}

static json_object *args_user(const char *user)
{
        json_object *a = json_object_new_object();
        json_object_object_add(a, "user", json_object_new_string(user));
        return a;
}

static void print_profile(json_object *p)
{
        bool enc = false, clean = true;
        jsonx_get_bool(p, "encrypted", &enc);
        jsonx_get_bool(p, "clean", &clean);
        kv("generation:", cell(p, "generation"));
        kv("size:", cell_bytes(p, "size"));
        kv("used:", cell_bytes(p, "used"));
        kv("encrypted:", xstrdup(enc ? "yes (LUKS, key wrapped by the host key)" : "no"));
        kv("last attach:", fmt_time(jsonx_int_or(p, "last_attach", 0)));
        kv("attached to:", cell(p, "attached_to"));
        kv("last detach:", xstrdup(clean ? "clean" : "not clean (journal replay at the next attach)"));
        if (json_object_object_get_ex(p, "quota", NULL))
                kv("quota:", cell_bytes(p, "quota"));
}

static void print_profile_of(json_object *res)
{
        kv("user:", cell(res, "user"));
        print_profile(res);
}

static int cmd_profile_show(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        return ctl_cmd_show(c, "profile.show", args_user(pos[0]), print_profile_of);
}

static int cmd_profile_reset(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        return ctl_cmd_done(c, "profile.reset", args_user(pos[0]), "profile of", pos[0],
                            "reset: the next logon gets a fresh disk (the old one is kept until profile prune)");
}

static int cmd_profile_quota(Ctl *c, int argc, char **argv)
{
        char *pos[2];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 2, 2);
        json_object *args = args_user(pos[0]);
        json_object_object_add(args, "size", json_object_new_string(pos[1]));
        return ctl_cmd_done(c, "profile.quota", args, "profile of", pos[0],
                            "quota set (a new disk gets this size: at the first logon, or after profile reset)");
}

static int cmd_profile_prune(Ctl *c, int argc, char **argv)
{
        char *pos[1] = { NULL };
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 0, 1);
        json_object *args = pos[0] ? args_user(pos[0]) : json_object_new_object();
        static const char *const hdr[] = { "USER", "GEN", "SIZE", "USED", "ENCRYPTED", "LAST ATTACH", "ATTACHED TO" };
        return ctl_cmd_list(c, "profile.prune", args, NULL, hdr, ELEMENTSOF(hdr), profile_row);
}

static void print_rotated(json_object *res)
{
        _cleanup_free_ char *path = cell(res, "key_file"), *n = cell(res, "rewrapped"), *bad = cell(res, "failed");
        printf("host key %s replaced: %s profile keys re-wrapped (%s could not be); back up the new key file\n",
               path, n, bad);
}

static int cmd_profile_rotate(Ctl *c, int argc, char **argv)
{
        PARSE_OR_RETURN(c, argc, argv, NULL, NULL, 0, 0);
        return ctl_cmd_show(c, "profile.rotate_host_key", json_object_new_object(), print_rotated);
}

static void print_user(json_object *res)
{
        kv("user:", cell(res, "user"));
        kv("pools:", cell_list(res, "pools", ", ", "none (no desktop)"));
        kv("apps:", cell_list(res, "apps", ", ", "none"));
        if (json_object_object_get_ex(res, "session", NULL))
                kv("session:", cell(res, "session"));
        json_object *p = NULL;
        if (json_object_object_get_ex(res, "profile", &p) && p)
                print_profile(p);
        else
                kv("profile:", xstrdup("none yet (made at the first logon)"));
}

static int cmd_user_show(Ctl *c, int argc, char **argv)
{
        char *pos[1];
        PARSE_OR_RETURN(c, argc, argv, NULL, pos, 1, 1);
        return ctl_cmd_show(c, "user.show", args_user(pos[0]), print_user);
}

#define PRINCIPAL_HELP_APP "PRINCIPAL is user:NAME, group:NAME or all.\n"

const Command ctl_cmds_app[] = {
        { "app", "add", "NAME DIR --image IMAGE[:VERSION] [--no-current]",
          "\nAdd the tree DIR as the next version of app layer NAME. DIR holds usr/, opt/, etc/ and\n"
          "optionally var/lib/dpkg/{info/,status-layer} as they should appear in the desktop; nothing\n"
          "else. Files keep their owners and modes (prepare the tree as root). slated builds a\n"
          "read-only ext4 image and a manifest (programs, menu entries, packages, sha256).\n\n"
          "Options:\n"
          "  --image IMAGE[:VERSION]  the golden image (version; default its current one) the tree was\n"
          "                           made for: desktops of other images do not get the layer\n"
          "  --no-current             keep the current version; make this one current later\n" COMMON_OPTS,
          cmd_app_add },
        { "app", "capture", "NAME --image IMAGE[:VERSION] --packages PKG,... [--allow-overrides] [--deb-dir DIR] [--no-current]",
          "\nInstall Debian packages into a throwaway copy of the golden image version (one libguestfs\n"
          "appliance with network: apt-get update, apt-get install --no-install-recommends) and keep\n"
          "what the install added under /usr, /opt and /etc, with dpkg's records of the new packages,\n"
          "as the next version of app layer NAME. The golden image is never written. Progress is\n"
          "shown on stderr. Files the package writes elsewhere (/var/lib state) are left out.\n\n"
          "Options:\n"
          "  --image IMAGE[:VERSION]  the golden image version to install into (default: current)\n"
          "  --packages PKG,...       Debian packages (their new dependencies come along)\n"
          "  --allow-overrides        keep the layer even when the install changed files the image\n"
          "                           already has (listed in the manifest); refused otherwise\n"
          "  --deb-dir DIR            offer these .deb files to apt first (offline captures)\n"
          "  --no-current             keep the current version\n" COMMON_OPTS,
          cmd_app_capture },
        { "app", "list", "", "\nList app layers: current version, the image they are for, who is entitled.\n\n"
          "Options:\n" COMMON_OPTS, cmd_app_list },
        { "app", "show", "NAME", "\nShow every version of app NAME with its manifest.\n\nOptions:\n" COMMON_OPTS,
          cmd_app_show },
        { "app", "current", "NAME VERSION",
          "\nMake VERSION the one attached at logon (from the next logon; older is a rollback).\n\n"
          "Options:\n" COMMON_OPTS, cmd_app_current },
        { "app", "retire", "NAME VERSION",
          "\nRetire VERSION: no longer attached; app gc removes it.\n\nOptions:\n" COMMON_OPTS, cmd_app_retire },
        { "app", "gc", "", "\nRemove retired app versions (files and catalogue entries).\n\nOptions:\n" COMMON_OPTS,
          cmd_app_gc },
        { "app", "verify", "NAME",
          "\nRecompute the checksum of every version of NAME. Exits 1 if any does not match.\n\n"
          "Options:\n" COMMON_OPTS, cmd_app_verify },
        { "app", "entitle", "NAME PRINCIPAL",
          "\nAttach app NAME at the logons of PRINCIPAL. Refused when a layer the same users get\n"
          "owns one of its files.\n" PRINCIPAL_HELP_APP "\nOptions:\n" COMMON_OPTS, cmd_app_entitle },
        { "app", "revoke", "NAME PRINCIPAL",
          "\nWithdraw an entitlement given with app entitle.\n" PRINCIPAL_HELP_APP "\nOptions:\n" COMMON_OPTS,
          cmd_app_revoke },
        {},
};

const Command ctl_cmds_profile[] = {
        { "profile", "list", "[--all]",
          "\nList users' profile disks (--all: older generations kept after a reset too).\n\nOptions:\n"
          "  --all           include older generations\n" COMMON_OPTS, cmd_profile_list },
        { "profile", "show", "USER", "\nShow USER's profile disk.\n\nOptions:\n" COMMON_OPTS, cmd_profile_show },
        { "profile", "reset", "USER",
          "\nGive USER a fresh, empty profile at the next logon. The old disk is kept (profile list\n"
          "--all) until profile prune. Refused while the profile is attached.\n\nOptions:\n" COMMON_OPTS,
          cmd_profile_reset },
        { "profile", "quota", "USER SIZE",
          "\nSet the size of USER's profile disk (\"2G\"): a new disk is made this size; a disk can\n"
          "grow but never shrink.\n\nOptions:\n" COMMON_OPTS, cmd_profile_quota },
        { "profile", "prune", "[USER]",
          "\nRemove older generations of USER's (or every user's) profile.\n\nOptions:\n" COMMON_OPTS,
          cmd_profile_prune },
        { "profile", "rotate-host-key", "",
          "\nReplace the host key (profile-key-file) with a new random one and re-wrap every user's\n"
          "profile key with it; the disks are not re-encrypted. Spare disks are dropped and made\n"
          "again. The old key no longer opens anything: back up the new key file.\n\nOptions:\n" COMMON_OPTS,
          cmd_profile_rotate },
        { "user", "show", "USER",
          "\nWhat USER gets at logon: pools, app layers, profile disk, running session.\n\nOptions:\n" COMMON_OPTS,
          cmd_user_show },
        {},
};
