/* Templates for instant clones: the catalogue under <state>/templates (one directory each: meta,
 * ram, state, disk.qcow2), its builds (boot to READY, let the guest settle, save, freeze) and the
 * checks a clone makes before it trusts one. Never resumes a template's VM, never sends it an
 * identity (so nothing secret is in it), and never writes a saved template's files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "broker/agentlink.h"
#include "broker/pool.h"
#include "broker/template.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "imaging/image.h"
#include "imaging/overlay.h"

/* Bump when the QEMU command line's device layout changes: older templates no longer load. */
#define TEMPLATE_FORMAT 1
/* After READY, the guest settles this long with no host on its agent port before the save: a
 * clone whose host connects at once after cont otherwise gets no HELLO (research pitfall 9). */
#define TEMPLATE_SETTLE_MS 1000
/* A failed template is not tried again before this (its desktops boot cold meanwhile). */
#define TEMPLATE_RETRY_MS 60000
#define TEMPLATE_META_MAX 8192

struct Template {
        Template *next;
        Broker *b;
        char *name, *key, *dir;
        char *image;
        int version;
        uint64_t memory;
        unsigned vcpus;
        TemplateState state;
        char *why;
        uint64_t retry_after_ms;
        int64_t created;
        uint64_t build_ms;
        char state_sha256[65];
        uint64_t state_size, ram_size;
        int64_t ram_mtime_ns, ram_ctime_ns;
        int ram_fd;                     /* the RAM as a sealed memfd clones map, made at the first
                                         * clone (template_ram_open), or -1 */
        unsigned clone_failures;        /* clones in a row that did not become ready */
        /* while building */
        char *build_dir, *run_dir;
        HvVm *vm;
        AgentLink *agent;
        Overlay *overlay;
        uv_timer_t timer;
        bool timer_open, saved, creating_overlay, abandoned;
        uint64_t build_start_ms;
        uint32_t agent_caps;
};

static char *template_root(Broker *b) { return xasprintf("%s/templates", b->cfg->state_dir); }

void template_use_clear(TemplateUse *u)
{
        if (u->name && u->ram_fd >= 0)
                close(u->ram_fd);
        free(u->name);
        free(u->ram);
        free(u->state);
        free(u->disk);
        *u = (TemplateUse){ 0 };
}

static const char *state_name(TemplateState s)
{
        return s == TEMPLATE_READY ? "ready" : s == TEMPLATE_BUILDING ? "building" : "failed";
}

static void template_unlink(Template *t)
{
        for (Template **p = &t->b->templates; *p; p = &(*p)->next)
                if (*p == t) {
                        *p = t->next;
                        return;
                }
}

static void template_free_now(Template *t)
{
        if (t->ram_fd >= 0)
                close(t->ram_fd);
        free(t->name);
        free(t->key);
        free(t->dir);
        free(t->image);
        free(t->why);
        free(t->build_dir);
        free(t->run_dir);
        free(t);
}

static void timer_closed(uv_handle_t *h) { template_free_now(h->data); }

/* Forget t: unlinked now, freed once its timer handle is closed. */
static void template_free(Template *t)
{
        template_unlink(t);
        if (t->agent)
                agent_link_free(TAKE_PTR(t->agent));
        if (t->vm)
                t->b->hv->vm_free(TAKE_PTR(t->vm));
        if (t->overlay)
                overlay_forget(TAKE_PTR(t->overlay));
        if (t->timer_open) {
                t->timer_open = false;
                uv_timer_stop(&t->timer);
                uv_close((uv_handle_t *)&t->timer, timer_closed);
        } else {
                template_free_now(t);
        }
}

/* ---- the key: what a template must match to be cloned ---- */

static int64_t ns_of(struct timespec ts) { return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec; }

/* The QEMU binary by what it is, not by name: an upgrade in place changes size or mtime. */
static char *qemu_identity(Broker *b)
{
        const char *q = b->cfg->qemu;
        _cleanup_free_ char *found = NULL;
        if (q[0] != '/') {
                const char *dirs[] = { "/usr/bin", "/usr/local/bin", "/bin" };
                for (size_t i = 0; i < ELEMENTSOF(dirs) && !found; i++) {
                        char *p = xasprintf("%s/%s", dirs[i], q);
                        if (access(p, X_OK) == 0)
                                found = p;
                        else
                                free(p);
                }
                if (found)
                        q = found;
        }
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(q, real) || stat(real, &st) < 0)
                return xasprintf("%s:?", q);
        return xasprintf("%s:%lld:%lld:%llu", real, (long long)st.st_size, (long long)ns_of(st.st_mtim),
                         (unsigned long long)st.st_ino);
}

static char *template_key(Broker *b, const DbImageVersion *v, uint64_t memory, unsigned vcpus)
{
        _cleanup_free_ char *qemu = qemu_identity(b);
        return xasprintf("format=%d\nimage=%s\nversion=%d\nsha256=%s\nkernel=%s\ninitrd=%s\ncmdline=%s\nmemory=%llu\n"
                         "vcpus=%u\naccel=%s\nqemu=%s\n",
                         TEMPLATE_FORMAT, v->name, v->version, v->sha256 ? v->sha256 : "", v->kernel ? v->kernel : "",
                         v->initrd ? v->initrd : "", v->cmdline ? v->cmdline : "", (unsigned long long)memory, vcpus,
                         hv_accel_name(b->accel), qemu);
}

static char *template_name(const DbImageVersion *v, const char *key)
{
        uint8_t md[32];
        unsigned n = 0;
        EVP_Digest(key, strlen(key), md, &n, EVP_sha256(), NULL);
        char hex[65];
        hex_encode(md, 6, hex);
        return xasprintf("%s-v%d-%s", v->name, v->version, hex);
}

static Template *template_find(Broker *b, const char *name)
{
        for (Template *t = b->templates; t; t = t->next)
                if (strcmp(t->name, name) == 0)
                        return t;
        return NULL;
}

/* ---- meta: key lines, then what was saved ---- */

static int meta_write(Template *t, const char *dir)
{
        _cleanup_free_ char *path = xasprintf("%s/meta", dir);
        _cleanup_free_ char *text = xasprintf(
                "%sname=%s\ncreated=%lld\nbuild_ms=%llu\nstate_sha256=%s\nstate_size=%llu\nram_size=%llu\n"
                "ram_mtime_ns=%lld\nram_ctime_ns=%lld\n",
                t->key, t->name, (long long)t->created, (unsigned long long)t->build_ms, t->state_sha256,
                (unsigned long long)t->state_size, (unsigned long long)t->ram_size, (long long)t->ram_mtime_ns,
                (long long)t->ram_ctime_ns);
        return write_file_atomic(path, text, strlen(text), 0600);
}

static const char *meta_get(const char *text, const char *key, char *buf, size_t size)
{
        size_t kl = strlen(key);
        for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (strncmp(l, key, kl) == 0 && l[kl] == '=') {
                        const char *v = l + kl + 1, *e = strchr(v, '\n');
                        size_t n = e ? (size_t)(e - v) : strlen(v);
                        if (n >= size)
                                return NULL;
                        memcpy(buf, v, n);
                        buf[n] = 0;
                        return buf;
                }
        return NULL;
}

/* The key is the meta's leading lines up to "qemu=…" (template_key's order). */
static char *meta_key(const char *text)
{
        const char *q = strstr(text, "\nqemu=");
        const char *e = q ? strchr(q + 1, '\n') : NULL;
        return e ? strndup(text, (size_t)(e + 1 - text)) : NULL;
}

static void template_load_one(Broker *b, const char *root, const char *name)
{
        _cleanup_free_ char *dir = xasprintf("%s/%s", root, name), *path = xasprintf("%s/meta", dir), *text = NULL;
        size_t len;
        char buf[PATH_MAX];
        if (read_file_max(path, TEMPLATE_META_MAX, &text, &len) < 0 || !meta_get(text, "name", buf, sizeof buf) ||
            strcmp(buf, name) != 0) {
                log_warn("template %s: no readable meta; removing it", name);
                rm_rf(dir);
                return;
        }
        Template *t = xmalloc0(sizeof *t);
        t->b = b;
        t->ram_fd = -1;
        t->name = xstrdup(name);
        t->dir = TAKE_PTR(dir);
        t->key = meta_key(text);
        t->state = TEMPLATE_READY;
        t->image = xstrdup(meta_get(text, "image", buf, sizeof buf) ?: "?");
        t->version = atoi(meta_get(text, "version", buf, sizeof buf) ?: "0");
        t->memory = strtoull(meta_get(text, "memory", buf, sizeof buf) ?: "0", NULL, 10);
        t->vcpus = (unsigned)atoi(meta_get(text, "vcpus", buf, sizeof buf) ?: "0");
        t->created = strtoll(meta_get(text, "created", buf, sizeof buf) ?: "0", NULL, 10);
        t->build_ms = strtoull(meta_get(text, "build_ms", buf, sizeof buf) ?: "0", NULL, 10);
        snprintf(t->state_sha256, sizeof t->state_sha256, "%s", meta_get(text, "state_sha256", buf, sizeof buf) ?: "");
        t->state_size = strtoull(meta_get(text, "state_size", buf, sizeof buf) ?: "0", NULL, 10);
        t->ram_size = strtoull(meta_get(text, "ram_size", buf, sizeof buf) ?: "0", NULL, 10);
        t->ram_mtime_ns = strtoll(meta_get(text, "ram_mtime_ns", buf, sizeof buf) ?: "0", NULL, 10);
        t->ram_ctime_ns = strtoll(meta_get(text, "ram_ctime_ns", buf, sizeof buf) ?: "0", NULL, 10);
        if (!t->key) {
                log_warn("template %s: meta without a key; removing it", name);
                rm_rf(t->dir);
                template_free_now(t);
                return;
        }
        /* Made when clones opened the RAM file itself (group read-write, as QEMU 7.2 wants): a
         * clone could have written it. Rebuilt rather than trusted. */
        _cleanup_free_ char *ram = xasprintf("%s/ram", t->dir);
        struct stat st;
        if (stat(ram, &st) < 0 || (st.st_mode & 0077)) {
                log_warn("template %s: its RAM file is open to other users (made by an older slated); removing it",
                         name);
                rm_rf(t->dir);
                template_free_now(t);
                return;
        }
        t->next = b->templates;
        b->templates = t;
        log_info("template %s: found (%s v%d, %llu MiB)", t->name, t->image, t->version,
                 (unsigned long long)(t->memory >> 20));
}

void template_load_all(Broker *b)
{
        _cleanup_free_ char *root = template_root(b);
        if (mkdir_p(root, 0711) < 0) {
                log_error("%s: cannot create it: %m", root);
                return;
        }
        chmod(root, 0711);
        DIR *d = opendir(root);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                size_t n = strlen(de->d_name);
                if (n > 6 && strcmp(de->d_name + n - 6, ".build") == 0) {
                        _cleanup_free_ char *p = xasprintf("%s/%s", root, de->d_name);
                        log_info("template %.*s: its build was interrupted; removing it", (int)(n - 6), de->d_name);
                        rm_rf(p);
                        continue;
                }
                template_load_one(b, root, de->d_name);
        }
        closedir(d);
}

/* ---- build ---- */

static void build_fail(Template *t, const char *fmt, ...) _printf_(2, 3);

static void build_cleanup(Template *t)
{
        if (t->agent)
                agent_link_free(TAKE_PTR(t->agent));
        if (t->timer_open)
                uv_timer_stop(&t->timer);
        if (t->overlay)
                overlay_forget(TAKE_PTR(t->overlay));
        if (t->build_dir)
                rm_rf(t->build_dir);
        if (t->run_dir)
                rm_rf(t->run_dir);
}

static void build_fail(Template *t, const char *fmt, ...)
{
        if (t->state != TEMPLATE_BUILDING)
                return;
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        log_warn("template %s: build failed: %s; its desktops boot cold (next try in %d s)", t->name, msg,
                 TEMPLATE_RETRY_MS / 1000);
        t->state = TEMPLATE_FAILED;
        free(t->why);
        t->why = xstrdup(msg);
        t->retry_after_ms = now_ms() + TEMPLATE_RETRY_MS;
        if (t->agent)
                agent_link_free(TAKE_PTR(t->agent));
        if (t->vm)
                t->b->hv->vm_stop(t->vm, 2000);  /* on_exit cleans up */
        else if (!t->creating_overlay)
                build_cleanup(t);
}

/* The build's last step, once its QEMU is gone: the files become the template. */
static int build_finish(Template *t)
{
        Broker *b = t->b;
        _cleanup_free_ char *state = xasprintf("%s/state", t->build_dir), *ram = xasprintf("%s/ram", t->build_dir),
                            *disk = xasprintf("%s/disk.qcow2", t->build_dir);
        struct stat st;
        int r = image_sha256(state, t->state_sha256);
        if (r < 0)
                return r;
        if (stat(state, &st) < 0)
                return -errno;
        t->state_size = (uint64_t)st.st_size;
        /* Read-only for every clone from now on: the disk by group (clones' QEMUs open it as their
         * overlay's backing file). The RAM file is root's alone: QEMU 7.2 opens a RAM file
         * read-write even for a private mapping (pitfall 7), so clones map a sealed copy of it
         * instead (template_ram_open), which no process can write. */
        if (b->vm_uid != (uid_t)-1) {
                if (chown(disk, 0, b->vm_gid) < 0 || chown(ram, 0, 0) < 0)
                        return -errno;
        }
        if (chmod(disk, 0440) < 0 || chmod(ram, 0400) < 0)
                return -errno;
        if (stat(ram, &st) < 0)
                return -errno;
        t->ram_size = (uint64_t)st.st_size;
        t->ram_mtime_ns = ns_of(st.st_mtim);
        t->ram_ctime_ns = ns_of(st.st_ctim);
        t->created = (int64_t)now_realtime_s();
        t->build_ms = now_ms() - t->build_start_ms;
        if ((r = meta_write(t, t->build_dir)) < 0)
                return r;
        if (rename(t->build_dir, t->dir) < 0)
                return -errno;
        free(TAKE_PTR(t->build_dir));
        return 0;
}

static void on_build_vm_exit(HvVm *vm, int status, void *userdata)
{
        Template *t = userdata;
        t->b->hv->vm_free(TAKE_PTR(t->vm));
        if (t->abandoned) {
                build_cleanup(t);
                template_free(t);
                return;
        }
        if (t->state == TEMPLATE_BUILDING && !t->saved) {
                build_fail(t, "QEMU exited (%d) before the template was saved", status);
        }
        if (t->state != TEMPLATE_BUILDING) {
                build_cleanup(t);
                return;
        }
        if (t->run_dir)
                rm_rf(t->run_dir);
        if (t->overlay)
                overlay_forget(TAKE_PTR(t->overlay));    /* the file stays: it is the template's disk */
        int r = build_finish(t);
        if (r < 0) {
                build_fail(t, "finishing: %s", strerror(-r));
                build_cleanup(t);
                return;
        }
        t->state = TEMPLATE_READY;
        log_info("template %s: ready (%s v%d, %llu MiB, state %llu bytes) in %llu ms", t->name, t->image, t->version,
                 (unsigned long long)(t->memory >> 20), (unsigned long long)t->state_size,
                 (unsigned long long)t->build_ms);
        db_audit(t->b->db, "template.create", t->name, "");
        pool_manager_kick(t->b);
}

static void on_build_vm_event(HvVm *vm, const char *event, const char *data, void *userdata) {}

static const HvCallbacks build_vm_callbacks = { .on_exit = on_build_vm_exit, .on_event = on_build_vm_event };

static void on_saved(HvVm *vm, int r, const char *error, void *userdata)
{
        Template *t = userdata;
        if (r < 0) {
                build_fail(t, "saving the device state: %s", error ? error : strerror(-r));
                return;
        }
        t->saved = true;
        /* Never "cont": a template that ran on would change every clone's RAM (pitfall 5). */
        t->b->hv->vm_stop(t->vm, 2000);
}

static void settle_done(uv_timer_t *timer)
{
        Template *t = timer->data;
        if (t->state != TEMPLATE_BUILDING || !t->vm)
                return;
        _cleanup_free_ char *path = xasprintf("%s/state", t->build_dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                build_fail(t, "%s: %s", path, strerror(errno));
                return;
        }
        int r = t->b->hv->vm_save(t->vm, fd, on_saved, t);
        if (r < 0)
                build_fail(t, "save: %s", strerror(-r));
}

static void build_timeout(uv_timer_t *timer)
{
        Template *t = timer->data;
        build_fail(t, "agent not ready after %u s", t->b->boot_timeout_s * 2);
}

static void on_build_hello(AgentLink *l, const AgentMsg *m, void *userdata)
{
        Template *t = userdata;
        t->agent_caps = m->hello.capabilities;
}

static void on_build_ready(AgentLink *l, void *userdata)
{
        Template *t = userdata;
        if (!(t->agent_caps & AGENT_CAP_IDENTITY)) {
                build_fail(t, "the image's agent cannot take a new identity (no identity capability): "
                              "republish the image with a newer slate-agent");
                return;
        }
        /* No host on the port at the save (pitfall 9); the guest is quiet: no session, no identity. */
        agent_link_free(TAKE_PTR(t->agent));
        uv_timer_stop(&t->timer);
        uv_timer_start(&t->timer, settle_done, TEMPLATE_SETTLE_MS, 0);
}

static void on_build_agent_failure(AgentLink *l, const char *reason, void *userdata)
{
        build_fail(userdata, "%s", reason);
}

static const AgentLinkCallbacks build_agent_callbacks = {
        .on_hello = on_build_hello, .on_ready = on_build_ready, .on_failure = on_build_agent_failure,
};

static int build_agent_open(void *data, int *ret_fd)
{
        Template *t = data;
        return t->vm ? t->b->hv->agent_open(t->vm, ret_fd) : -ENOTCONN;
}

typedef struct BuildJob {
        uv_work_t work;
        Template *t;
        char *qemu_img, *golden, *kernel, *initrd, *cmdline;
        uid_t uid;
        gid_t gid;
        Overlay *overlay;
        char *error;
        int r;
} BuildJob;

static void build_job_run(uv_work_t *w)
{
        BuildJob *j = w->data;
        j->r = overlay_create(j->qemu_img, OVERLAY_PLAIN, j->golden, j->t->build_dir, "disk", j->uid, j->gid,
                              &j->overlay, &j->error);
}

static void build_job_done(uv_work_t *w, int status)
{
        BuildJob *j = w->data;
        Template *t = j->t;
        Broker *b = t->b;
        t->creating_overlay = false;
        t->overlay = j->overlay;
        if (t->abandoned) {
                build_cleanup(t);
                template_free(t);
        } else if (j->r < 0 || status < 0) {
                build_fail(t, "overlay: %s", j->error ? j->error : strerror(-j->r));
        } else if (t->state == TEMPLATE_BUILDING) {
                _cleanup_free_ char *ram = xasprintf("%s/ram", t->build_dir);
                char id[32];
                snprintf(id, sizeof id, "t-%.10s", t->name + strlen(t->name) - 12);
                HvVmSpec spec = {
                        .id = id, .run_dir = t->run_dir, .disk = t->overlay->path, .kernel = j->kernel,
                        .initrd = j->initrd, .cmdline = j->cmdline, .memory_mb = t->memory >> 20, .vcpus = t->vcpus,
                        .accel = b->accel, .uid = b->vm_uid, .gid = b->vm_gid, .kvm_gid = b->kvm_gid,
                        .qemu = b->cfg->qemu, .background = false, .mem_path = ram, .mem_share = true,
                        .mem_gid = b->vm_gid,
                };
                int r = b->hv->vm_start(b->loop, &spec, &build_vm_callbacks, t, &t->vm);
                if (r < 0)
                        build_fail(t, "starting QEMU: %s", strerror(-r));
                else
                        agent_link_start(b->loop, build_agent_open, t, b->cfg->heartbeat_interval,
                                         b->cfg->heartbeat_misses, &build_agent_callbacks, t, &t->agent);
        } else {
                build_cleanup(t);
        }
        free(j->qemu_img);
        free(j->golden);
        free(j->kernel);
        free(j->initrd);
        free(j->cmdline);
        free(j->error);
        free(j);
}

/* The RAM file exists before QEMU starts: QEMU, as the VM's uid, cannot create files here. */
static int ram_file_create(Broker *b, const char *path, uint64_t size)
{
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
        if (fd < 0)
                return -errno;
        /* Group read-write whatever slated's umask: QEMU opens it by group. */
        if (ftruncate(fd, (off_t)size) < 0 || fchmod(fd, 0660) < 0)
                return -errno;
        if (b->vm_uid != (uid_t)-1 && fchown(fd, 0, b->vm_gid) < 0)
                return -errno;
        return 0;
}

static void build_start(Template *t, const DbImageVersion *v)
{
        Broker *b = t->b;
        int r;
        t->state = TEMPLATE_BUILDING;
        t->saved = false;
        t->build_start_ms = now_ms();
        if (t->ram_fd >= 0) {           /* the last build's RAM: never for this one's clones */
                close(t->ram_fd);
                t->ram_fd = -1;
        }
        free(t->why);
        t->why = NULL;
        free(t->build_dir);
        t->build_dir = xasprintf("%s.build", t->dir);
        free(t->run_dir);
        t->run_dir = xasprintf("%s/t-%.10s", b->desktop_run_dir, t->name + strlen(t->name) - 12);
        rm_rf(t->build_dir);
        rm_rf(t->run_dir);
        _cleanup_free_ char *ram = xasprintf("%s/ram", t->build_dir);
        if (mkdir(t->build_dir, 0750) < 0 || (b->vm_uid != (uid_t)-1 && chown(t->build_dir, 0, b->vm_gid) < 0)) {
                build_fail(t, "%s: %s", t->build_dir, strerror(errno));
                return;
        }
        if (mkdir(t->run_dir, 0700) < 0 || (b->vm_uid != (uid_t)-1 && chown(t->run_dir, b->vm_uid, b->vm_gid) < 0)) {
                build_fail(t, "%s: %s", t->run_dir, strerror(errno));
                return;
        }
        if ((r = ram_file_create(b, ram, t->memory)) < 0) {
                build_fail(t, "%s: %s", ram, strerror(-r));
                return;
        }
        log_info("template %s: building (boots %s v%d once, %llu MiB, %u vCPU, normal CPU priority)", t->name, t->image, t->version,
                 (unsigned long long)(t->memory >> 20), t->vcpus);
        uv_timer_start(&t->timer, build_timeout, (uint64_t)b->boot_timeout_s * 2000, 0);
        BuildJob *j = xmalloc0(sizeof *j);
        j->work.data = j;
        j->t = t;
        j->qemu_img = xstrdup(b->cfg->qemu_img);
        j->golden = xstrdup(v->path);
        j->kernel = v->kernel ? xstrdup(v->kernel) : NULL;
        j->initrd = v->initrd ? xstrdup(v->initrd) : NULL;
        j->cmdline = v->cmdline ? xstrdup(v->cmdline) : NULL;
        j->uid = b->vm_uid;
        j->gid = b->vm_gid;
        t->creating_overlay = true;
        uv_queue_work(b->loop, &j->work, build_job_run, build_job_done);
}

/* ---- use ---- */

static void template_drop(Template *t, const char *why)
{
        /* Clones running keep their own dups; a rebuild makes a new copy. */
        if (t->ram_fd >= 0) {
                close(t->ram_fd);
                t->ram_fd = -1;
        }
        log_info("template %s: removed (%s)", t->name, why);
        db_audit(t->b->db, "template.remove", t->name, why);
        rm_rf(t->dir);
}

/* *ret_building: the template is being built now (or a build was just started). */
static int template_get(Broker *b, const DbImageVersion *v, uint64_t memory, unsigned vcpus, bool build,
                        TemplateUse *ret, char **ret_why, bool *ret_building)
{
        *ret_building = false;
        _cleanup_free_ char *key = template_key(b, v, memory, vcpus);
        _cleanup_free_ char *name = template_name(v, key);
        /* Stale: the same image and shape, made for another version, QEMU or kernel. */
        for (Template *t = b->templates, *next; t; t = next) {
                next = t->next;
                if (strcmp(t->image, v->name) == 0 && t->memory == memory && t->vcpus == vcpus &&
                    strcmp(t->name, name) != 0 && t->state == TEMPLATE_READY) {
                        template_drop(t, t->version != v->version ? "stale: another image version is current"
                                                                  : "stale: the QEMU binary or the boot files changed");
                        template_free(t);
                }
        }
        Template *t = template_find(b, name);
        if (t && t->state == TEMPLATE_READY) {
                *ret = (TemplateUse){
                        .name = xstrdup(t->name), .ram = xasprintf("%s/ram", t->dir),
                        .state = xasprintf("%s/state", t->dir), .disk = xasprintf("%s/disk.qcow2", t->dir),
                        .ram_size = t->ram_size, .ram_mtime_ns = t->ram_mtime_ns, .ram_ctime_ns = t->ram_ctime_ns,
                        .ram_fd = t->ram_fd >= 0 ? fcntl(t->ram_fd, F_DUPFD_CLOEXEC, 3) : -1,
                };
                snprintf(ret->state_sha256, sizeof ret->state_sha256, "%s", t->state_sha256);
                return 0;
        }
        if (t && t->state == TEMPLATE_BUILDING) {
                *ret_building = true;
                *ret_why = xasprintf("template %s is being built", t->name);
                return -ENOENT;
        }
        if (t && now_ms() < t->retry_after_ms) {
                *ret_why = xasprintf("template %s failed (%s); next try in %llu s", t->name, t->why ? t->why : "?",
                                     (unsigned long long)(t->retry_after_ms - now_ms() + 999) / 1000);
                return -ENOENT;
        }
        if (!build) {
                *ret_why = t ? xasprintf("template %s is to be built again", t->name)
                             : xasprintf("no template for %s v%d at %llu MiB yet", v->name, v->version,
                                         (unsigned long long)(memory >> 20));
                return -ENOENT;
        }
        bool retry = t != NULL;
        if (!t) {
                _cleanup_free_ char *root = template_root(b);
                t = xmalloc0(sizeof *t);
                t->b = b;
                t->ram_fd = -1;
                t->name = TAKE_PTR(name);
                t->key = TAKE_PTR(key);
                t->dir = xasprintf("%s/%s", root, t->name);
                t->image = xstrdup(v->name);
                t->version = v->version;
                t->memory = memory;
                t->vcpus = vcpus;
                uv_timer_init(b->loop, &t->timer);
                t->timer.data = t;
                t->timer_open = true;
                t->next = b->templates;
                b->templates = t;
        }
        if (!t->timer_open) {
                uv_timer_init(b->loop, &t->timer);
                t->timer.data = t;
                t->timer_open = true;
        }
        *ret_why = xasprintf("no template for %s v%d at %llu MiB yet (building %s%s)", v->name, v->version,
                             (unsigned long long)(memory >> 20), t->name, retry ? " again" : "");
        build_start(t, v);
        *ret_building = true;
        return -ENOENT;
}

int template_for(Broker *b, const DbImageVersion *v, uint64_t memory, unsigned vcpus, TemplateUse *ret,
                 char **ret_why)
{
        bool building;
        return template_get(b, v, memory, vcpus, false, ret, ret_why, &building);
}

bool template_ensure(Broker *b, const DbImageVersion *v, uint64_t memory, unsigned vcpus)
{
        TemplateUse u = { 0 };
        _cleanup_free_ char *why = NULL;
        bool building;
        if (template_get(b, v, memory, vcpus, true, &u, &why, &building) == 0)
                template_use_clear(&u);
        return building;
}

void template_gc(Broker *b)
{
        for (Template *t = b->templates, *next; t; t = next) {
                next = t->next;
                if (t->state != TEMPLATE_READY)
                        continue;
                bool used = false;
                for (Pool *p = b->pools; p && !used; p = p->next)
                        used = p->clone && !p->deleting && strcmp(p->image, t->image) == 0 && p->memory == t->memory &&
                               p->vcpus == t->vcpus;
                if (!used) {
                        template_drop(t, "no pool clones from it any more");
                        template_free(t);
                }
        }
}

int template_use_verify(const TemplateUse *u, char **ret_why)
{
        struct stat st;
        if (stat(u->ram, &st) < 0) {
                *ret_why = xasprintf("template %s: RAM file: %s", u->name, strerror(errno));
                return -EBADMSG;
        }
        if ((uint64_t)st.st_size != u->ram_size || ns_of(st.st_mtim) != u->ram_mtime_ns ||
            ns_of(st.st_ctim) != u->ram_ctime_ns) {
                *ret_why = xasprintf("template %s: its RAM file changed after the save", u->name);
                return -EBADMSG;
        }
        char sum[65];
        int r = image_sha256(u->state, sum);
        if (r < 0) {
                *ret_why = xasprintf("template %s: state file: %s", u->name, strerror(-r));
                return -EBADMSG;
        }
        if (strcmp(sum, u->state_sha256) != 0) {
                *ret_why = xasprintf("template %s: its state file does not match its checksum", u->name);
                return -EBADMSG;
        }
        return 0;
}

/* Copy the data of the RAM file (its holes stay holes: pages the guest never touched cost
 * nothing) into a memfd sealed against any change. QEMU opens it read-write through /dev/fd and
 * maps it privately; neither it nor anyone else can write it any more. */
int template_ram_open(const TemplateUse *u, int *ret_fd, char **ret_why)
{
        _cleanup_close_ int in = open(u->ram, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (in < 0) {
                *ret_why = xasprintf("template %s: RAM file: %s", u->name, strerror(errno));
                return -EBADMSG;
        }
        _cleanup_close_ int fd = memfd_create("slate-template-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        int r = fd < 0 || ftruncate(fd, (off_t)u->ram_size) < 0 ? -errno : 0;
        const size_t bufsize = 1u << 20;
        _cleanup_free_ char *buf = r == 0 ? xmalloc0(bufsize) : NULL;
        for (off_t off = 0; r == 0 && off < (off_t)u->ram_size;) {
                off_t data = lseek(in, off, SEEK_DATA);
                if (data < 0) {
                        r = errno == ENXIO ? 0 : -errno;        /* ENXIO: only a hole is left */
                        break;
                }
                off_t hole = lseek(in, data, SEEK_HOLE);
                if (hole < 0) {
                        r = -errno;
                        break;
                }
                for (off = data; r == 0 && off < hole;) {
                        ssize_t n = pread(in, buf, (size_t)MIN((off_t)bufsize, hole - off), off);
                        if (n <= 0) {
                                r = n < 0 ? -errno : -EIO;
                                break;
                        }
                        errno = EIO;
                        if (pwrite(fd, buf, (size_t)n, off) != n)
                                r = -errno;
                        off += n;
                }
        }
        if (r == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                r = -errno;
        if (r < 0) {
                *ret_why = xasprintf("template %s: a sealed copy of its RAM: %s", u->name, strerror(-r));
                return r;
        }
        /* The file's pages are not needed again until the next start. */
        (void)posix_fadvise(in, 0, 0, POSIX_FADV_DONTNEED);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

void template_ram_keep(Broker *b, const char *name, int fd)
{
        Template *t = template_find(b, name);
        if (t && t->state == TEMPLATE_READY && t->ram_fd < 0)
                t->ram_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

void template_invalidate(Broker *b, const char *name, const char *why)
{
        Template *t = template_find(b, name);
        if (!t || t->state != TEMPLATE_READY)
                return;
        log_warn("template %s: %s; removed, desktops boot cold until it is rebuilt (in %d s)", name, why,
                 TEMPLATE_RETRY_MS / 1000);
        template_drop(t, why);
        t->state = TEMPLATE_FAILED;
        free(t->why);
        t->why = xstrdup(why);
        t->retry_after_ms = now_ms() + TEMPLATE_RETRY_MS;
}

void template_clone_result(Broker *b, const char *name, bool ok, const char *why)
{
        Template *t = template_find(b, name);
        if (!t || t->state != TEMPLATE_READY)
                return;
        if (ok) {
                t->clone_failures = 0;
                return;
        }
        if (++t->clone_failures >= TEMPLATE_CLONE_FAILURES) {
                char msg[256];
                snprintf(msg, sizeof msg, "%u clones in a row did not become ready (last: %s)", t->clone_failures,
                         why ? why : "?");
                template_invalidate(b, name, msg);
        }
}

int template_remove(Broker *b, const char *name)
{
        Template *t = template_find(b, name);
        if (!t)
                return -ENOENT;
        if (t->state == TEMPLATE_BUILDING) {
                t->abandoned = true;
                t->state = TEMPLATE_FAILED;
                template_unlink(t);
                if (t->agent)
                        agent_link_free(TAKE_PTR(t->agent));
                if (t->vm)
                        b->hv->vm_stop(t->vm, 1000);    /* on_exit frees */
                log_info("template %s: build abandoned (removed by the administrator)", t->name);
                return 0;
        }
        if (t->state == TEMPLATE_READY)
                template_drop(t, "removed by the administrator");
        template_free(t);
        return 0;
}

json_object *template_list_json(Broker *b)
{
        json_object *a = json_object_new_array();
        for (Template *t = b->templates; t; t = t->next) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(t->name));
                json_object_object_add(o, "image", json_object_new_string(t->image));
                json_object_object_add(o, "version", json_object_new_int(t->version));
                json_object_object_add(o, "memory", json_object_new_int64((int64_t)t->memory));
                json_object_object_add(o, "vcpus", json_object_new_int((int)t->vcpus));
                json_object_object_add(o, "state", json_object_new_string(state_name(t->state)));
                if (t->why)
                        json_object_object_add(o, "reason", json_object_new_string(t->why));
                json_object_object_add(o, "created", json_object_new_int64(t->created));
                json_object_object_add(o, "build_ms", json_object_new_int64((int64_t)t->build_ms));
                json_object_object_add(o, "state_size", json_object_new_int64((int64_t)t->state_size));
                json_object_object_add(o, "ram_size", json_object_new_int64((int64_t)t->ram_size));
                json_object_object_add(o, "path", json_object_new_string(t->dir));
                json_object_array_add(a, o);
        }
        return a;
}

void template_shutdown(Broker *b)
{
        for (Template *t = b->templates, *next; t; t = next) {
                next = t->next;
                if (t->state == TEMPLATE_BUILDING && t->vm) {
                        /* A half-built template is worth nothing after a restart: kill, remove. */
                        b->hv->vm_stop(t->vm, 0);
                        pid_t pid = b->hv->vm_pid(t->vm);
                        if (pid > 0)
                                kill(pid, SIGKILL);
                        if (t->run_dir)
                                rm_rf(t->run_dir);
                        if (t->build_dir)
                                rm_rf(t->build_dir);
                }
        }
}
