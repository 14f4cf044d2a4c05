/* Start-up reconciliation: the database says what should exist, /proc and the state and run
 * dirs say what does. Adopt every running desktop we can, destroy the rest, and leave no
 * orphan QEMU, overlay or run dir behind. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/desktop.h"
#include "broker/diskloan.h"
#include "broker/reconcile.h"
#include "common/log.h"
#include "common/util.h"

static bool known_id(Broker *b, const char *id)
{
        for (Desktop *d = b->desktops; d; d = d->next)
                if (strcmp(d->id, id) == 0)
                        return true;
        return false;
}

/* Overlays are named <desktop id>.qcow2. */
static void sweep_overlays(Broker *b, const char *dir)
{
        DIR *dp = opendir(dir);
        if (!dp)
                return;
        struct dirent *de;
        while ((de = readdir(dp))) {
                size_t n = strlen(de->d_name);
                if (de->d_name[0] == '.' || n < 7 || strcmp(de->d_name + n - 6, ".qcow2") != 0)
                        continue;
                char id[256];
                snprintf(id, sizeof id, "%.*s", (int)(n - 6), de->d_name);
                if (known_id(b, id))
                        continue;
                _cleanup_free_ char *p = xasprintf("%s/%s", dir, de->d_name);
                log_info("reconcile: erasing orphan overlay %s", p);
                overlay_discard_path(p);
                db_audit(b->db, "desktop.orphan-overlay", id, p);
        }
        closedir(dp);
}

static void sweep_run_dirs(Broker *b)
{
        DIR *dp = opendir(b->desktop_run_dir);
        if (!dp)
                return;
        struct dirent *de;
        while ((de = readdir(dp))) {
                if (de->d_name[0] == '.' || known_id(b, de->d_name))
                        continue;
                _cleanup_free_ char *p = xasprintf("%s/%s", b->desktop_run_dir, de->d_name);
                log_info("reconcile: removing orphan run dir %s", p);
                rm_rf(p);
        }
        closedir(dp);
}

/* A QEMU whose command line points into our run dir but that no desktop owns. */
static void sweep_processes(Broker *b)
{
        DIR *dp = opendir("/proc");
        if (!dp)
                return;
        _cleanup_free_ char *needle = xasprintf("%s/", b->desktop_run_dir);
        struct dirent *de;
        while ((de = readdir(dp))) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 1 || pid == getpid())
                        continue;
                _cleanup_free_ char *path = xasprintf("/proc/%ld/cmdline", pid);
                char *buf;
                size_t len;
                if (read_file_max(path, 1 << 20, &buf, &len) < 0)
                        continue;
                bool ours = false, qemu = strstr(buf, "qemu-system") != NULL;
                const char *id = NULL;
                for (size_t off = 0; off < len && qemu; off += strlen(buf + off) + 1) {
                        const char *arg = buf + off;
                        const char *hit = strstr(arg, needle);
                        if (hit) {
                                ours = true;
                                id = hit + strlen(needle);
                                break;
                        }
                }
                if (ours) {
                        char idbuf[64];
                        snprintf(idbuf, sizeof idbuf, "%s", id);
                        char *slash = strchr(idbuf, '/');
                        if (slash)
                                *slash = 0;
                        bool owned = false;
                        for (Desktop *d = b->desktops; d; d = d->next)
                                if (strcmp(d->id, idbuf) == 0 && d->pid == (pid_t)pid)
                                        owned = true;
                        if (!owned) {
                                log_warn("reconcile: killing orphan QEMU pid %ld (desktop %s)", pid, idbuf);
                                kill((pid_t)pid, SIGKILL);
                                db_audit(b->db, "desktop.orphan-qemu", idbuf, "killed");
                        }
                }
                free(buf);
        }
        closedir(dp);
}

static void sweep_staging(Broker *b)
{
        DIR *dp = opendir(b->image_dir);
        if (!dp)
                return;
        struct dirent *de;
        while ((de = readdir(dp))) {
                if (strncmp(de->d_name, ".staging-", 9) != 0)
                        continue;
                _cleanup_free_ char *p = xasprintf("%s/%s", b->image_dir, de->d_name);
                log_info("reconcile: removing an interrupted publish %s", p);
                rm_rf(p);
        }
        closedir(dp);
}

/* A profile disk still owned by a desktop uid that no adopted desktop was lent it under (slated
 * stopped between the lend and the give-back): vm-user's again, before that uid is handed out. */
static void sweep_lent_disks(Broker *b)
{
        if (!b->vm_ids.count)
                return;
        DbProfile *all = NULL;
        size_t n = 0;
        if (db_profile_list(b->db, true, &all, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                if (!all[i].path || lstat(all[i].path, &st) < 0 || !idrange_contains(&b->vm_ids, st.st_uid))
                        continue;
                bool held = false;
                for (Desktop *d = b->desktops; d; d = d->next)
                        if (d->uid == st.st_uid && d->lent[HV_SLOT_PROFILE] &&
                            strcmp(d->lent[HV_SLOT_PROFILE], all[i].path) == 0)
                                held = true;
                if (held)
                        continue;
                log_info("reconcile: profile disk %s was still lent to uid %u; given back", all[i].path,
                         (unsigned)st.st_uid);
                diskloan_return(all[i].path, st.st_uid, b->vm_uid, b->vm_gid);
        }
        db_profile_free_array(all, n);
}

int reconcile_startup(Broker *b)
{
        DbDesktop *rows;
        size_t n;
        int r = db_desktop_list(b->db, &rows, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                desktop_adopt(b, &rows[i]);
        db_desktop_free_array(rows, n);
        sweep_processes(b);
        sweep_overlays(b, b->overlay_dir);
        overlay_blanks_clear(b->overlay_dir);   /* made again on first use, for the files of now */
        sweep_overlays(b, b->cfg->ram_dir);
        sweep_run_dirs(b);
        sweep_lent_disks(b);
        sweep_staging(b);
        return 0;
}
