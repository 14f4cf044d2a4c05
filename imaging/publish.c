/* Publishing pipeline: everything slow and hostile runs here, in the catalog's staging dir, on
 * the staged copy (never the source). One appliance launch does inspect, seal and agent; a
 * directory source is packed into ext4 on that same launch. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/cleanup.h"
#include "common/jsonx.h"
#include "common/util.h"
#include "imaging/agent_install.h"
#include "imaging/gfs.h"
#include "imaging/inspect.h"
#include "imaging/pack.h"
#include "imaging/publish.h"
#include "imaging/seal.h"

typedef struct Run {
        const PublishRequest *p;
        json_object *timings;
        const char *step;
        uint64_t step_start;
} Run;

static void step(Run *run, const char *name, int percent)
{
        uint64_t t = now_ms();
        if (run->step)
                json_object_object_add(run->timings, run->step, json_object_new_int64((int64_t)(t - run->step_start)));
        run->step = name;
        run->step_start = t;
        if (name && percent >= 0 && run->p->progress)
                run->p->progress(run->p->userdata, name, percent);
}

static int write_info(const char *dir, json_object *info, char **ret_error)
{
        _cleanup_free_ char *path = xasprintf("%s/" PUBLISH_INFO_FILE, dir);
        const char *text = json_object_to_json_string_ext(info, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
        size_t len = strlen(text);
        if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
                *ret_error = xasprintf("%s: %s", path, strerror(errno));
                return -errno;
        }
        return 0;
}

/* The appliance part: launch, [pack], inspect, seal, agent, flush. */
static int run_appliance(Run *run, const char *disk, bool is_dir, uint64_t entries, json_object *info,
                         char **ret_error)
{
        const PublishRequest *p = run->p;
        _cleanup_(gfs_closep) guestfs_h *g = gfs_open(&p->appliance, ret_error);
        if (!g)
                return -EIO;
        if (guestfs_add_drive_opts(g, disk, GUESTFS_ADD_DRIVE_OPTS_FORMAT, "qcow2", GUESTFS_ADD_DRIVE_OPTS_READONLY, 0,
                                   -1) < 0)
                return gfs_fail(g, ret_error, "adding the staged disk");
        /* Timings only (no progress event): the launch is most of a small image's publish. */
        step(run, "launch", -1);
        if (guestfs_launch(g) < 0)
                return gfs_fail(g, ret_error, "starting the libguestfs appliance (is a kernel available? see "
                                              "slate.conf guestfs-kernel)");
        int r;
        if (is_dir) {
                step(run, "pack", -1);
                if ((r = pack_fill(g, "/dev/sda", p->src, entries, ret_error)) < 0)
                        return r;
        }

        step(run, "inspect", 20);
        InspectInfo ii;
        if ((r = inspect_disk(g, p->kernel != NULL, false, &ii, ret_error)) < 0)
                return r;
        json_object_object_add(info, "os", json_object_new_string(ii.os));
        json_object_object_add(info, "distro", json_object_new_string(ii.distro));
        json_object_object_add(info, "os_version", json_object_new_string(ii.version));
        json_object_object_add(info, "product", json_object_new_string(ii.product));
        json_object_object_add(info, "arch", json_object_new_string(ii.arch));
        json_object_object_add(info, "root", json_object_new_string(ii.root));
        json_object_object_add(info, "init", json_object_new_string(ii.init));
        json_object_object_add(info, "boot", json_object_new_string(ii.boot));
        if (ii.bootloader[0])
                json_object_object_add(info, "bootloader", json_object_new_string(ii.bootloader));

        step(run, "seal", 45);
        json_object *rep;
        if ((r = seal_disk(g, &rep, ret_error)) < 0)
                return r;
        json_object_object_add(info, "seal", rep);

        step(run, "agent", 65);
        if ((r = agent_install(g, ii.init, p->agent_binary, p->session_script, &rep, ret_error)) < 0)
                return r;
        json_object_object_add(info, "agent", rep);

        /* Everything must be on the qcow2 before it is hashed: shutdown syncs and waits. */
        if (guestfs_umount_all(g) < 0 || guestfs_shutdown(g) < 0)
                return gfs_fail(g, ret_error, "writing the changes to the staged disk");
        return 0;
}

int publish_stage(const PublishRequest *p, CatalogStaged **ret, char **ret_error)
{
        Run run = { .p = p, .timings = json_object_new_object() };
        _cleanup_json_ json_object *info = json_object_new_object();
        CatalogStaged *s = NULL;
        struct stat st;
        uint64_t entries = 0;
        int r;
        if (stat(p->src, &st) < 0) {
                r = -errno;
                *ret_error = xasprintf("%s: %s", p->src, strerror(errno));
                json_object_put(run.timings);
                return r;
        }
        bool is_dir = S_ISDIR(st.st_mode);
        if (is_dir && p->as_is) {
                *ret_error = xasprintf("%s: a directory is packed into a disk by the appliance: --as-is takes a disk "
                                       "image file", p->src);
                json_object_put(run.timings);
                return -EINVAL;
        }
        /* Checked before the slow part: a missing agent would only show after the launch. */
        if (!p->as_is && access(p->agent_binary, R_OK) < 0) {
                r = -errno;
                *ret_error = xasprintf("agent: %s: %s (slate.conf agent-binary)", p->agent_binary, strerror(errno));
                json_object_put(run.timings);
                return r;
        }
        if ((r = catalog_staging_new(p->image_dir, &s, ret_error)) < 0) {
                json_object_put(run.timings);
                return r;
        }
        _cleanup_free_ char *disk = xasprintf("%s/disk.qcow2", s->dir);

        step(&run, "convert", 5);
        if (is_dir) {
                uint64_t size;
                if ((r = pack_measure(p->src, &size, &entries, ret_error)) < 0)
                        goto fail;
                _cleanup_(gfs_closep) guestfs_h *g = gfs_open(&p->appliance, ret_error);
                if (!g) {
                        r = -EIO;
                        goto fail;
                }
                if (guestfs_disk_create(g, disk, "qcow2", (int64_t)size, -1) < 0) {
                        r = gfs_fail(g, ret_error, "creating %s", disk);
                        goto fail;
                }
                snprintf(s->info.format, sizeof s->info.format, "dir");
                s->info.virtual_size = size;
        } else {
                if ((r = image_probe(p->qemu_img, p->src, &s->info, ret_error)) < 0 ||
                    (r = image_import(p->qemu_img, p->src, &s->info, disk, ret_error)) < 0)
                        goto fail;
                chmod(disk, 0644);
        }
        json_object_object_add(info, "source", json_object_new_string(is_dir ? "dir" : "file"));
        if (is_dir)
                json_object_object_add(info, "entries", json_object_new_int64((int64_t)entries));
        if (p->as_is)
                json_object_object_add(info, "as_is", json_object_new_boolean(true));
        else if ((r = run_appliance(&run, disk, is_dir, entries, info, ret_error)) < 0)
                goto fail;
        chmod(disk, 0444);
        if ((r = catalog_staged_add_boot(s, p->kernel, p->initrd, ret_error)) < 0)
                goto fail;

        step(&run, "checksum", 80);
        if ((r = catalog_staged_finish(s, ret_error)) < 0)
                goto fail;
        step(&run, NULL, 0);
        json_object_object_add(info, "timings_ms", run.timings);
        run.timings = NULL;
        if ((r = write_info(s->dir, info, ret_error)) < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        json_object_put(run.timings);
        catalog_staged_free(s);
        return r;
}

int publish_info_load(const char *version_dir, json_object **ret)
{
        _cleanup_free_ char *path = xasprintf("%s/" PUBLISH_INFO_FILE, version_dir), *text = NULL;
        size_t len;
        int r = read_file_max(path, PUBLISH_INFO_MAX, &text, &len);
        if (r < 0)
                return r;
        json_object *o = json_tokener_parse(text);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}
