/* Inspection of a staged golden image with libguestfs' inspect_os, plus the few facts slated
 * needs that it does not report (init system, bootability). Reads guest files only through
 * the appliance and with size caps: the filesystem is hostile. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/cleanup.h"
#include "common/util.h"
#include "imaging/inspect.h"

/* /etc/os-release is a few hundred bytes; anything much bigger is not one. */
#define OS_RELEASE_MAX (64u << 10)

static void copy_str(char *dst, size_t n, const char *src)
{
        snprintf(dst, n, "%s", src ? src : "");
        /* Guest-provided text ends up in JSON and logs: keep it printable. */
        for (char *p = dst; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = '?';
}

/* VALUE of KEY=VALUE (quotes stripped) in os-release text, or NULL. */
static char *os_release_get(const char *text, size_t len, const char *key)
{
        size_t kl = strlen(key);
        for (size_t off = 0; off < len;) {
                const char *l = text + off, *nl = memchr(l, '\n', len - off);
                size_t n = nl ? (size_t)(nl - l) : len - off;
                off += n + 1;
                if (n > kl && memcmp(l, key, kl) == 0 && l[kl] == '=') {
                        const char *v = l + kl + 1;
                        size_t vn = n - kl - 1;
                        if (vn >= 2 && (v[0] == '"' || v[0] == '\'') && v[vn - 1] == v[0]) {
                                v++;
                                vn -= 2;
                        }
                        return strndup(v, vn);
                }
        }
        return NULL;
}

static void fill_from_os_release(guestfs_h *g, InspectInfo *info)
{
        const char *path = NULL;
        if (guestfs_is_file_opts(g, "/etc/os-release", GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) > 0)
                path = "/etc/os-release";
        else if (guestfs_is_file_opts(g, "/usr/lib/os-release", GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) > 0)
                path = "/usr/lib/os-release";
        if (!path)
                return;
        int64_t sz = guestfs_filesize(g, path);
        if (sz <= 0 || sz > OS_RELEASE_MAX)
                return;
        size_t len;
        _cleanup_free_ char *text = guestfs_read_file(g, path, &len);
        if (!text)
                return;
        if (strcmp(info->distro, "unknown") == 0 || !info->distro[0]) {
                _cleanup_free_ char *id = os_release_get(text, len, "ID");
                if (id && *id)
                        copy_str(info->distro, sizeof info->distro, id);
        }
        /* VERSION_ID is what the vendor calls the release ("12", "22.04"); libguestfs' major.minor
         * says "1.0" for "1". */
        _cleanup_free_ char *v = os_release_get(text, len, "VERSION_ID");
        if (v && *v)
                copy_str(info->version, sizeof info->version, v);
        if (!info->product[0] || strcmp(info->product, "unknown") == 0) {
                _cleanup_free_ char *p = os_release_get(text, len, "PRETTY_NAME");
                if (!p)
                        p = os_release_get(text, len, "NAME");
                if (p && *p)
                        copy_str(info->product, sizeof info->product, p);
        }
}

static bool exists_file(guestfs_h *g, const char *path)
{
        return guestfs_is_file_opts(g, path, GUESTFS_IS_FILE_OPTS_FOLLOWSYMLINKS, 1, -1) > 0;
}

static bool exists_dir(guestfs_h *g, const char *path)
{
        return guestfs_is_dir_opts(g, path, GUESTFS_IS_DIR_OPTS_FOLLOWSYMLINKS, 1, -1) > 0;
}

static const char *detect_init(guestfs_h *g)
{
        if (exists_file(g, "/lib/systemd/systemd") || exists_file(g, "/usr/lib/systemd/systemd"))
                return "systemd";
        /* busybox init, or an /sbin/init script on a busybox root (the test guest). */
        if (exists_file(g, "/bin/busybox") && !exists_file(g, "/etc/inittab"))
                return "busybox";
        return "sysv";
}

static const char *detect_bootloader(guestfs_h *g)
{
        static const struct {
                const char *path, *name;
        } files[] = {
                { "/boot/grub/grub.cfg", "grub" },       { "/boot/grub2/grub.cfg", "grub" },
                { "/boot/grub/menu.lst", "grub" },       { "/boot/grub/i386-pc/core.img", "grub" },
                { "/boot/extlinux/extlinux.conf", "extlinux" }, { "/boot/syslinux/syslinux.cfg", "extlinux" },
                { "/extlinux.conf", "extlinux" },
        };
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                if (exists_file(g, files[i].path))
                        return files[i].name;
        /* An EFI system partition the guest mounts (fstab) with a boot loader on it. */
        static const char *const esp[] = { "/boot/efi/EFI", "/efi/EFI", "/boot/EFI" };
        for (size_t i = 0; i < ELEMENTSOF(esp); i++)
                if (exists_dir(g, esp[i]))
                        return "efi";
        return NULL;
}

static bool has_kernel(guestfs_h *g)
{
        if (!exists_dir(g, "/boot"))
                return false;
        char **l = guestfs_ls(g, "/boot");
        bool found = false;
        for (size_t i = 0; l && l[i] && i < GFS_ENTRIES_MAX; i++)
                if (strncmp(l[i], "vmlinuz", 7) == 0 || strncmp(l[i], "vmlinux", 7) == 0 ||
                    strncmp(l[i], "bzImage", 7) == 0)
                        found = true;
        gfs_free_strings(l);
        return found;
}

int inspect_disk(guestfs_h *g, bool direct_kernel, bool readonly, InspectInfo *ret, char **ret_error)
{
        InspectInfo info = { 0 };
        char **roots = guestfs_inspect_os(g);
        if (!roots)
                return gfs_fail(g, ret_error, "inspecting the disk");
        size_t n = gfs_count(roots);
        if (n == 0) {
                gfs_free_strings(roots);
                *ret_error = xstrdup("no operating system found: is this a disk image with a root filesystem?");
                return -EMEDIUMTYPE;
        }
        if (n > 1) {
                *ret_error = xasprintf("%zu operating systems found (roots %s and %s): a golden image must hold "
                                       "exactly one", n, roots[0], roots[1]);
                gfs_free_strings(roots);
                return -EMEDIUMTYPE;
        }
        copy_str(info.root, sizeof info.root, roots[0]);
        gfs_free_strings(roots);

        _cleanup_free_ char *type = guestfs_inspect_get_type(g, info.root),
                            *arch = guestfs_inspect_get_arch(g, info.root),
                            *distro = guestfs_inspect_get_distro(g, info.root),
                            *product = guestfs_inspect_get_product_name(g, info.root);
        if (!type || !arch)
                return gfs_fail(g, ret_error, "inspecting %s", info.root);
        copy_str(info.os, sizeof info.os, type);
        copy_str(info.arch, sizeof info.arch, arch);
        copy_str(info.distro, sizeof info.distro, distro);
        if (product && strcmp(product, "unknown") != 0)
                copy_str(info.product, sizeof info.product, product);
        int major = guestfs_inspect_get_major_version(g, info.root),
            minor = guestfs_inspect_get_minor_version(g, info.root);
        if (major > 0)
                snprintf(info.version, sizeof info.version, "%d.%d", major, minor < 0 ? 0 : minor);
        if (strcmp(info.os, "linux") != 0) {
                *ret_error = xasprintf("the operating system on %s is %s, not Linux: slated runs Linux guests only",
                                       info.root, info.os);
                return -EMEDIUMTYPE;
        }
        if (strcmp(info.arch, "x86_64") != 0) {
                *ret_error = xasprintf("the guest's architecture is %s, not x86_64%s", info.arch,
                                       strcmp(info.arch, "unknown") == 0 ? " (no x86_64 binaries in /bin)" : "");
                return -EMEDIUMTYPE;
        }

        int r = gfs_mount_os(g, info.root, "", readonly, ret_error);
        if (r < 0)
                return r;
        fill_from_os_release(g, &info);
        copy_str(info.init, sizeof info.init, detect_init(g));
        if (direct_kernel) {
                copy_str(info.boot, sizeof info.boot, "kernel");
        } else {
                const char *bl = detect_bootloader(g);
                bool k = has_kernel(g);
                if (!bl || !k) {
                        *ret_error = xasprintf("not bootable: %s%s%s; publish it with --kernel (and --initrd, "
                                               "--cmdline) to boot it directly",
                                               bl ? "" : "no bootloader (no grub or extlinux files in /boot, no EFI "
                                                         "system partition)",
                                               !bl && !k ? " and " : "", k ? "" : "no kernel in /boot");
                        return -EMEDIUMTYPE;
                }
                copy_str(info.boot, sizeof info.boot, "disk");
                copy_str(info.bootloader, sizeof info.bootloader, bl);
        }
        *ret = info;
        return 0;
}
