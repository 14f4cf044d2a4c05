/* Sealing a staged golden image through the appliance. Every removal looks at the entry
 * itself (no following symlinks), so a hostile link cannot point a removal elsewhere in the
 * image; everything is relative to the guest's root as mounted in the appliance. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/cleanup.h"
#include "common/util.h"
#include "imaging/seal.h"

typedef struct Seal {
        guestfs_h *g;
        json_object *removed, *emptied;
        size_t count;
        bool truncated;
        char *error;
} Seal;

static void note(Seal *s, json_object *list, const char *path)
{
        s->count++;
        if (json_object_array_length(list) < SEAL_LIST_MAX)
                json_object_array_add(list, json_object_new_string(path));
        else
                s->truncated = true;
}

static int fail(Seal *s, const char *what, const char *path)
{
        if (!s->error)
                gfs_fail(s->g, &s->error, "seal: %s %s", what, path);
        return -EIO;
}

/* A regular file or a symlink (never followed): removed. Directories are left alone. */
static int remove_file(Seal *s, const char *path)
{
        int f = guestfs_is_file(s->g, path), l = f > 0 ? 0 : guestfs_is_symlink(s->g, path);
        if (f < 0 || l < 0)
                return 0;       /* does not exist (or a path component is not a directory) */
        if (!f && !l)
                return 0;
        if (guestfs_rm(s->g, path) < 0)
                return fail(s, "removing", path);
        note(s, s->removed, path);
        return 0;
}

/* Anything (directories recursively) — for temp and state directories. */
static int remove_any(Seal *s, const char *path)
{
        if (guestfs_rm_rf(s->g, path) < 0)
                return fail(s, "removing", path);
        note(s, s->removed, path);
        return 0;
}

static int empty_file(Seal *s, const char *path)
{
        if (guestfs_is_file(s->g, path) <= 0)
                return 0;
        int64_t size = guestfs_filesize(s->g, path);
        if (size == 0)
                return 0;
        if (guestfs_truncate(s->g, path) < 0)
                return fail(s, "emptying", path);
        note(s, s->emptied, path);
        return 0;
}

static int remove_glob(Seal *s, const char *pattern)
{
        char **l = guestfs_glob_expand(s->g, pattern);
        if (!l)
                return 0;       /* a missing parent directory is not an error */
        int r = 0;
        for (size_t i = 0; l[i] && r == 0 && i < GFS_ENTRIES_MAX; i++)
                if (strlen(l[i]) < GFS_PATH_MAX)
                        r = remove_file(s, l[i]);
        gfs_free_strings(l);
        return r;
}

/* Every entry of a real directory (not a symlink to one), dot files included. */
static int clear_dir(Seal *s, const char *dir)
{
        if (guestfs_is_dir(s->g, dir) <= 0)
                return 0;
        char **l = guestfs_ls(s->g, dir);
        if (!l)
                return fail(s, "listing", dir);
        int r = 0;
        size_t n = gfs_count(l);
        if (n > GFS_ENTRIES_MAX) {
                s->error = xasprintf("seal: %s has more than %d entries", dir, GFS_ENTRIES_MAX);
                r = -E2BIG;
        }
        for (size_t i = 0; i < n && r == 0; i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s", dir, l[i]);
                if (strlen(p) < GFS_PATH_MAX)
                        r = remove_any(s, p);
        }
        gfs_free_strings(l);
        return r;
}

/* Logs: every file under /var/log goes, directories stay (daemons expect them). The login
 * records are emptied instead: login and last need them to exist with their group and mode. */
static int clear_logs(Seal *s)
{
        static const char *const keep[] = { "/var/log/wtmp", "/var/log/btmp", "/var/log/lastlog",
                                            "/var/log/faillog" };
        if (guestfs_is_dir(s->g, "/var/log") <= 0)
                return 0;
        char **l = guestfs_find(s->g, "/var/log");
        if (!l)
                return fail(s, "listing", "/var/log");
        int r = 0;
        size_t n = gfs_count(l);
        if (n > GFS_ENTRIES_MAX) {
                s->error = xasprintf("seal: /var/log has more than %d entries", GFS_ENTRIES_MAX);
                r = -E2BIG;
        }
        for (size_t i = 0; i < n && r == 0; i++) {
                /* find's names are relative but start with a slash ("/syslog"). */
                _cleanup_free_ char *p = xasprintf("/var/log/%s", l[i] + (l[i][0] == '/'));
                if (strlen(p) >= GFS_PATH_MAX)
                        continue;
                bool k = false;
                for (size_t j = 0; j < ELEMENTSOF(keep); j++)
                        k |= strcmp(p, keep[j]) == 0;
                r = k ? empty_file(s, p) : remove_file(s, p);
        }
        gfs_free_strings(l);
        return r;
}

int seal_disk(guestfs_h *g, json_object **ret_report, char **ret_error)
{
        static const char *const histories[] = { ".bash_history", ".ash_history", ".zsh_history", ".python_history",
                                                 ".lesshst",      ".viminfo",     ".sh_history" };
        static const char *const globs[] = {
                "/etc/ssh/ssh_host_*",
                "/var/lib/dhcp/*",
                "/var/lib/dhclient/*",
                "/var/lib/NetworkManager/*.lease",
                "/var/lib/NetworkManager/*.leases",
                "/var/lib/systemd/random-seed",
                "/var/lib/urandom/random-seed",
                "/var/lib/random-seed",
        };
        Seal s = { .g = g, .removed = json_object_new_array(), .emptied = json_object_new_array() };
        /* machine-id: systemd makes a new one at first boot when the file is empty; keeping the
         * file (rather than removing it) keeps a read-only /etc working. */
        int r = empty_file(&s, "/etc/machine-id");
        if (r == 0)
                r = remove_file(&s, "/var/lib/dbus/machine-id");
        for (size_t i = 0; i < ELEMENTSOF(globs) && r == 0; i++)
                r = remove_glob(&s, globs[i]);
        for (size_t i = 0; i < ELEMENTSOF(histories) && r == 0; i++) {
                _cleanup_free_ char *root = xasprintf("/root/%s", histories[i]),
                                    *home = xasprintf("/home/*/%s", histories[i]);
                if ((r = remove_file(&s, root)) == 0)
                        r = remove_glob(&s, home);
        }
        if (r == 0)
                r = clear_logs(&s);
        if (r == 0)
                r = clear_dir(&s, "/tmp");
        if (r == 0)
                r = clear_dir(&s, "/var/tmp");
        if (r == 0)
                r = clear_dir(&s, "/var/lib/cloud");
        if (r < 0) {
                *ret_error = s.error ? s.error : xstrdup("seal failed");
                json_object_put(s.removed);
                json_object_put(s.emptied);
                return r;
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "count", json_object_new_int64((int64_t)s.count));
        json_object_object_add(o, "removed", s.removed);
        json_object_object_add(o, "emptied", s.emptied);
        if (s.truncated)
                json_object_object_add(o, "truncated", json_object_new_boolean(true));
        *ret_report = o;
        return 0;
}
