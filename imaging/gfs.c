/* libguestfs handles for imaging/: one configuration, one error style. The appliance is the
 * isolation for hostile filesystems; nothing here parses guest data on the host. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/cleanup.h"
#include "common/util.h"
#include "imaging/gfs.h"

int appliance_env_apply(const ApplianceConfig *cfg, char **ret_error)
{
        struct {
                const char *var, *value;
        } env[3] = { { "SUPERMIN_KERNEL", cfg->kernel }, { "SUPERMIN_MODULES", cfg->modules } };
        if (cfg->modules) {
                const char *slash = strrchr(cfg->modules, '/');
                env[2].var = "SUPERMIN_KERNEL_VERSION";
                env[2].value = slash && slash[1] ? slash + 1 : cfg->modules;
        }
        for (size_t i = 0; i < ELEMENTSOF(env); i++) {
                if (!env[i].var || !env[i].value)
                        continue;
                const char *cur = getenv(env[i].var);
                if (cur && strcmp(cur, env[i].value) == 0)
                        continue;
                if (setenv(env[i].var, env[i].value, 1) < 0) {
                        *ret_error = xasprintf("setenv %s: %s", env[i].var, strerror(errno));
                        return -errno;
                }
        }
        return 0;
}

guestfs_h *gfs_open(const ApplianceConfig *cfg, char **ret_error)
{
        guestfs_h *g = guestfs_create();
        if (!g) {
                *ret_error = xasprintf("libguestfs: cannot create a handle: %s", strerror(errno));
                return NULL;
        }
        /* Errors are collected by the caller (gfs_fail), once, with context. */
        guestfs_set_error_handler(g, NULL, NULL);
        if ((!getenv("LIBGUESTFS_BACKEND") && guestfs_set_backend(g, "direct") < 0) ||
            (cfg->force_tcg && guestfs_set_backend_setting(g, "force_tcg", "1") < 0)) {
                gfs_fail(g, ret_error, "libguestfs: configuring the backend");
                guestfs_close(g);
                return NULL;
        }
        return g;
}

void gfs_closep(guestfs_h **g)
{
        if (*g)
                guestfs_close(*g);
        *g = NULL;
}

int gfs_fail(guestfs_h *g, char **ret_error, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char *what;
        if (vasprintf(&what, fmt, ap) < 0)
                abort();
        va_end(ap);
        const char *e = g ? guestfs_last_error(g) : NULL;
        *ret_error = xasprintf("%s: %s", what, e && *e ? e : "libguestfs error");
        free(what);
        return -EIO;
}

void gfs_free_strings(char **l)
{
        if (!l)
                return;
        for (char **p = l; *p; p++)
                free(*p);
        free(l);
}

size_t gfs_count(char *const *l)
{
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

static int cmp_mountpoint(const void *a, const void *b)
{
        const char *const *x = a, *const *y = b;
        size_t lx = strlen(x[0]), ly = strlen(y[0]);
        return lx < ly ? -1 : lx > ly ? 1 : strcmp(x[0], y[0]);
}

int gfs_mount_os(guestfs_h *g, const char *root, const char *prefix, bool readonly, char **ret_error)
{
        char **mps = guestfs_inspect_get_mountpoints(g, root);
        if (!mps)
                return gfs_fail(g, ret_error, "listing the mountpoints of %s", root);
        size_t n = gfs_count(mps) / 2;
        /* Pairs (mountpoint, device): parents before children. */
        qsort(mps, n, 2 * sizeof *mps, cmp_mountpoint);
        int r = 0;
        for (size_t i = 0; i < n; i++) {
                const char *mp = mps[2 * i];
                char *dev = mps[2 * i + 1];
                bool is_root = strcmp(mp, "/") == 0;
                if (is_root)
                        dev = (char *)root;
                else if (strncmp(dev, "/dev/sd", 7) == 0 && strncmp(root, "/dev/sd", 7) == 0 && dev[7] && root[7])
                        dev[7] = root[7];
                _cleanup_free_ char *where = xasprintf("%s%s", prefix, is_root && *prefix ? "" : mp);
                if (!is_root && *prefix && guestfs_is_dir(g, where) <= 0)
                        continue;
                int m = readonly ? guestfs_mount_ro(g, dev, where) : guestfs_mount(g, dev, where);
                if (m < 0 && is_root) {
                        r = gfs_fail(g, ret_error, "mounting the root filesystem %s", dev);
                        break;
                }
        }
        gfs_free_strings(mps);
        return r;
}
