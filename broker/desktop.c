/* Desktop lifecycle: overlay → VM → agent ready → (assigned) → destroyed, and the supervision
 * that replaces a desktop whose QEMU died or whose agent went silent. Reports only through the
 * owner's and the claimant's event tables (desktop.h); never calls pools or sessions. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "broker/desktop.h"
#include "broker/diskloan.h"
#include "broker/workq.h"
#include <openssl/evp.h>
#include "common/log.h"
#include "common/util.h"

static const char *const state_names[] = {
        [DESKTOP_BOOTING] = "booting",     [DESKTOP_READY] = "ready",         [DESKTOP_ASSIGNED] = "assigned",
        [DESKTOP_DRAINING] = "draining",   [DESKTOP_DESTROYED] = "destroyed", [DESKTOP_FAILED] = "failed",
};

const char *desktop_state_to_string(DesktopState s) { return state_names[s]; }

int desktop_state_from_string(const char *s, DesktopState *ret)
{
        for (size_t i = 0; i < ELEMENTSOF(state_names); i++)
                if (s && strcmp(s, state_names[i]) == 0) {
                        *ret = (DesktopState)i;
                        return 0;
                }
        return -EINVAL;
}

Desktop *desktop_find(Broker *b, const char *id)
{
        for (Desktop *d = b->desktops; d; d = d->next)
                if (strcmp(d->id, id) == 0)
                        return d;
        return NULL;
}

unsigned desktop_count_version(Broker *b, const char *image, int version)
{
        unsigned n = 0;
        for (Desktop *d = b->desktops; d; d = d->next)
                if (strcmp(d->image, image) == 0 && d->version == version)
                        n++;
        return n;
}

/* ---- events: the owner hears everything, the claimant what concerns its session ---- */

static void notify_boot_failed(Desktop *d)
{
        const DesktopEvents *ev = d->b->desktop_events;
        if (ev && ev->on_boot_failed)
                ev->on_boot_failed(d, d->b);
}

void desktop_claim(Desktop *d, const char *claim_id, const DesktopEvents *ev, void *data)
{
        snprintf(d->claim_id, sizeof d->claim_id, "%s", claim_id);
        d->claim_ev = ev;
        d->claim_data = data;
        /* A spare runs in the background (vm_start); the user's desktop does not. */
        if (d->vm)
                d->b->hv->vm_set_background(d->vm, false);
}

void desktop_unclaim(Desktop *d)
{
        d->claim_id[0] = 0;
        d->claim_ev = NULL;
        d->claim_data = NULL;
}

void desktop_persist(Desktop *d)
{
        DbDesktop row = {
                .id = d->id, .pool = d->pool, .image = d->image, .version = d->version,
                .state = (char *)desktop_state_to_string(d->stopping ? DESKTOP_DRAINING : d->state),
                .overlay_mode = (char *)overlay_mode_to_string(d->overlay_mode), .overlay_path = d->overlay_path,
                .run_dir = d->run_dir, .pid = d->pid, .created = d->created, .cloned = d->cloned,
        };
        db_desktop_put(d->b->db, &row);
}

uint64_t desktop_overlay_bytes(const Desktop *d)
{
        uint64_t n = 0;
        if (d->overlay_path)
                overlay_bytes(d->overlay_path, &n);
        return n;
}

static void desktop_unlink(Desktop *d)
{
        for (Desktop **p = &d->b->desktops; *p; p = &(*p)->next)
                if (*p == d) {
                        *p = d->next;
                        return;
                }
}

static void desktop_freed(uv_handle_t *h)
{
        Desktop *d = h->data;
        free(d->pool);
        free(d->image);
        free(d->golden);
        free(d->kernel);
        free(d->initrd);
        free(d->cmdline);
        free(d->destroy_reason);
        free(d->overlay_path);
        free(d->run_dir);
        for (HvSlot i = 0; i < _HV_SLOT_MAX; i++)
                free(d->lent[i]);
        free(d->agent_version);
        free(d->boot_id);
        template_use_clear(&d->tmpl);
        if (d->state_fd >= 0)
                close(d->state_fd);
        free(d);
}

static void desktop_free(Desktop *d)
{
        desktop_unlink(d);
        if (d->agent)
                agent_link_free(TAKE_PTR(d->agent));
        if (d->vm)
                d->b->hv->vm_free(TAKE_PTR(d->vm));
        uv_timer_stop(&d->boot_timer);
        uv_close((uv_handle_t *)&d->boot_timer, desktop_freed);
}

static void boot_slot_release(Desktop *d)
{
        if (d->state == DESKTOP_BOOTING && d->b->boots_in_flight > 0)
                d->b->boots_in_flight--;
}

/* The desktop's uid goes back to the range only when nothing of it is left: QEMU gone, run dir
 * removed, overlay erased, every disk it was lent given back to vm-user. */
static void desktop_uid_release(Desktop *d)
{
        Broker *b = d->b;
        for (HvSlot i = 0; i < _HV_SLOT_MAX; i++)
                if (d->lent[i]) {
                        diskloan_return(d->lent[i], d->uid, b->vm_uid, b->vm_gid);
                        free(TAKE_PTR(d->lent[i]));
                }
        idrange_release(&b->vm_ids, d->uid);
}

/* Last step of destroy, once QEMU is gone: erase the overlay and forget the desktop. */
static void desktop_finish(Desktop *d)
{
        Broker *b = d->b;
        int r;
        if (d->claim_ev) {
                const DesktopEvents *ev = d->claim_ev;
                void *data = d->claim_data;
                desktop_unclaim(d);
                if (ev->on_gone)
                        ev->on_gone(d, data);
        }
        fault_point(&b->crash, "desktop-erase");
        if (d->overlay)
                r = overlay_destroy(TAKE_PTR(d->overlay));
        else
                r = d->overlay_path ? overlay_discard_path(d->overlay_path) : 0;
        if (r < 0)
                log_error("desktop %s: erasing overlay %s: %s", d->id, d->overlay_path, strerror(-r));
        if (d->run_dir)
                rm_rf(d->run_dir);
        desktop_uid_release(d);
        db_desktop_delete(b->db, d->id);
        db_audit(b->db, "desktop.destroy", d->id, d->destroy_reason ? d->destroy_reason : "");
        log_info("desktop %s (pool %s): destroyed, overlay erased (%s)", d->id, d->pool,
                 d->destroy_reason ? d->destroy_reason : "requested");
        d->state = DESKTOP_DESTROYED;
        if (b->desktop_events && b->desktop_events->on_gone)
                b->desktop_events->on_gone(d, b);
        desktop_free(d);
}

void desktop_destroy(Desktop *d, const char *reason)
{
        if (d->stopping)
                return;
        d->stopping = true;
        d->destroy_reason = xstrdup(reason ? reason : "requested");
        boot_slot_release(d);
        uv_timer_stop(&d->boot_timer);
        if (d->agent)
                agent_link_free(TAKE_PTR(d->agent));
        desktop_persist(d);
        fault_point(&d->b->crash, "desktop-destroy");
        if (d->creating_overlay)
                return;         /* the overlay job's completion finishes the destroy */
        if (d->vm) {
                d->b->hv->vm_stop(d->vm, 3000);
                return;         /* on_exit finishes */
        }
        desktop_finish(d);
}

void desktop_release(Desktop *d)
{
        if (d->overlay)
                overlay_forget(TAKE_PTR(d->overlay));
        desktop_free(d);
}

/* ---- supervision callbacks ---- */

static void clone_failed(Desktop *d, const char *why, bool template_fault);

static void on_vm_exit(HvVm *vm, int status, void *userdata)
{
        Desktop *d = userdata;
        d->pid = 0;
        if (!d->stopping) {
                if (status < 0)
                        log_warn("desktop %s: QEMU killed by signal %d; replacing the desktop", d->id, -status);
                else
                        log_warn("desktop %s: QEMU exited with status %d; replacing the desktop", d->id, status);
                char reason[64];
                snprintf(reason, sizeof reason, status < 0 ? "qemu killed by signal %d" : "qemu exited (%d)",
                         status < 0 ? -status : status);
                d->b->hv->vm_free(TAKE_PTR(d->vm));
                if (d->clone && d->state == DESKTOP_BOOTING) {
                        /* QEMU's own error exit is the template's (a state it cannot load); a
                         * signal is not: the driver's SIGKILL of a QEMU starved past its QMP
                         * deadline on a busy host, or the OOM killer. */
                        clone_failed(d, reason, status >= 0);
                        return;
                }
                if (d->state == DESKTOP_BOOTING)
                        notify_boot_failed(d);
                desktop_destroy(d, reason);
                return;
        }
        d->b->hv->vm_free(TAKE_PTR(d->vm));
        desktop_finish(d);
}

static void on_vm_event(HvVm *vm, const char *event, const char *data, void *userdata)
{
        Desktop *d = userdata;
        log_debug("desktop %s: VM event %s %s", d->id, event, data);
        if (strcmp(event, "SHUTDOWN") == 0 && !d->stopping)
                log_info("desktop %s: guest shut down", d->id);
}

static void on_agent_hello(AgentLink *l, const AgentMsg *m, void *userdata)
{
        Desktop *d = userdata;
        free(d->agent_version);
        free(d->boot_id);
        d->agent_version = xstrdup(m->hello.agent_version);
        d->boot_id = xstrdup(m->hello.boot_id);
        d->agent_caps = m->hello.capabilities;
        log_debug("desktop %s: agent %s says hello (boot id %s)", d->id, d->agent_version, d->boot_id);
}

/* A clone that did not come up is destroyed. When the template is at fault (the state did not
 * load, the guest kept its template's identity) the template goes too, and the next desktops
 * boot cold until it is rebuilt; a clone merely starved on a busy host (its agent silent, not
 * ready in time) counts against the template only a few times in a row. A user waiting for it
 * hears that it is gone. */
static void clone_failed(Desktop *d, const char *why, bool template_fault)
{
        if (d->stopping)
                return;
        log_warn("desktop %s (pool %s): clone of %s failed (%s); destroyed%s", d->id, d->pool, d->tmpl.name, why,
                 template_fault ? ", with its template: desktops boot cold until it is rebuilt" : "");
        if (template_fault)
                template_invalidate(d->b, d->tmpl.name, why);
        else
                template_clone_result(d->b, d->tmpl.name, false, why);
        notify_boot_failed(d);
        desktop_destroy(d, "clone failed to resume");
}

static void desktop_became_ready(Desktop *d)
{
        if (d->clone)
                template_clone_result(d->b, d->tmpl.name, true, NULL);
        boot_slot_release(d);
        d->state = desktop_claimed(d) ? DESKTOP_ASSIGNED : DESKTOP_READY;
        d->ready_ms = now_ms();
        uv_timer_stop(&d->boot_timer);
        desktop_persist(d);
        log_info("desktop %s (pool %s, %s v%d): ready in %llu ms (%s, %llu ms after QEMU's spawn)", d->id, d->pool,
                 d->image, d->version, (unsigned long long)(d->ready_ms - d->boot_start_ms), d->clone ? "clone" : "cold",
                 (unsigned long long)(d->spawn_ms ? d->ready_ms - d->spawn_ms : 0));
        const DesktopEvents *ev = d->b->desktop_events;
        if (ev && ev->on_ready)
                ev->on_ready(d, d->b);
        if (d->claim_ev && d->claim_ev->on_ready)
                d->claim_ev->on_ready(d, d->claim_data);
}

static uint64_t now_realtime_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Every desktop gets its own identity before it is READY; a clone also a boot id (the kernel's
 * is its template's) and so a canary of its own. */
static int identity_send(Desktop *d)
{
        AgentMsg m = { .type = AGENT_MSG_IDENTITY };
        uint8_t mid[16], bid[16];
        random_bytes(d->token, sizeof d->token);
        random_bytes(mid, sizeof mid);
        random_bytes(m.identity.entropy, sizeof m.identity.entropy);
        hex_encode(mid, sizeof mid, m.identity.machine_id);
        snprintf(m.identity.hostname, sizeof m.identity.hostname, "%s", d->id);
        if (d->clone) {
                random_bytes(bid, sizeof bid);
                bid[6] = (bid[6] & 0x0f) | 0x40;        /* a version 4 UUID, as the kernel's */
                bid[8] = (bid[8] & 0x3f) | 0x80;
                char h[33];
                hex_encode(bid, sizeof bid, h);
                snprintf(m.identity.boot_id, sizeof m.identity.boot_id, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12,
                         h + 16, h + 20);
        }
        snprintf(d->sent_boot_id, sizeof d->sent_boot_id, "%s", m.identity.boot_id);
        memcpy(m.identity.token, d->token, sizeof d->token);
        m.identity.realtime_ms = now_realtime_ms();
        int r = d->agent ? agent_link_send(d->agent, &m) : -ENOTCONN;
        secret_wipe(&m, sizeof m);
        return r;
}

static void on_agent_ready(AgentLink *l, void *userdata)
{
        Desktop *d = userdata;
        if (d->state != DESKTOP_BOOTING) {
                /* An adopted desktop (or a restarted agent) announcing itself again. */
                if (d->claim_ev && d->claim_ev->on_agent_link_ready)
                        d->claim_ev->on_agent_link_ready(d, d->claim_data);
                return;
        }
        if (d->identifying)
                return;
        if (d->agent_caps & AGENT_CAP_IDENTITY) {
                int r = identity_send(d);
                if (r < 0) {
                        if (d->clone)
                                clone_failed(d, "cannot send the agent its identity", false);
                        else
                                desktop_destroy(d, "cannot send the agent its identity");
                        return;
                }
                d->identifying = true;
                return;
        }
        if (d->clone) {
                clone_failed(d, "its agent cannot take a new identity", true);
                return;
        }
        desktop_became_ready(d);
}

static void on_agent_identified(AgentLink *l, const AgentMsg *m, void *userdata)
{
        Desktop *d = userdata;
        if (!d->identifying || d->state != DESKTOP_BOOTING)
                return;
        d->identifying = false;
        bool token_ok = memcmp(m->identity.token, d->token, sizeof d->token) == 0;
        if (!token_ok || (d->sent_boot_id[0] && strcmp(m->identity.boot_id, d->sent_boot_id) != 0)) {
                const char *why = token_ok ? "the agent reports another boot id" : "the agent returned another token";
                log_warn("desktop %s: identity not applied: %s", d->id, why);
                if (d->clone)
                        clone_failed(d, why, true);
                else
                        desktop_destroy(d, why);
                return;
        }
        uint8_t md[32];
        unsigned n = 0;
        EVP_Digest(d->token, sizeof d->token, md, &n, EVP_sha256(), NULL);
        hex_encode(md, 8, d->token_id);
        hex_encode(m->identity.rng_sample, sizeof m->identity.rng_sample, d->rng_sample);
        snprintf(d->machine_id, sizeof d->machine_id, "%s", m->identity.machine_id);
        snprintf(d->hostname, sizeof d->hostname, "%s", m->identity.hostname);
        d->identity_flags = m->identity.flags;
        if (d->sent_boot_id[0]) {
                free(d->boot_id);
                d->boot_id = xstrdup(d->sent_boot_id);
        }
        if (d->clone && !(m->identity.flags & AGENT_IDENTITY_RESEEDED))
                log_warn("desktop %s: the guest's RNG was not reseeded by the agent (vmgenid still reseeds it)", d->id);
        log_info("desktop %s: identity applied (hostname %s%s%s)", d->id, d->hostname,
                 m->identity.flags & AGENT_IDENTITY_RESEEDED ? ", RNG reseeded" : "",
                 m->identity.flags & AGENT_IDENTITY_CLOCK ? ", clock set" : "");
        desktop_became_ready(d);
}

static void on_agent_failure(AgentLink *l, const char *reason, void *userdata)
{
        Desktop *d = userdata;
        if (d->clone && d->state == DESKTOP_BOOTING) {
                clone_failed(d, reason, false);
                return;
        }
        log_warn("desktop %s: %s; replacing the desktop", d->id, reason);
        if (d->state == DESKTOP_BOOTING)
                notify_boot_failed(d);
        desktop_destroy(d, reason);
}

static void on_agent_session_state(AgentLink *l, const AgentMsg *m, void *userdata)
{
        Desktop *d = userdata;
        if (!d->claim_ev || !d->claim_ev->on_agent_session) {
                log_debug("desktop %s: agent session state %u with no session; ignored", d->id,
                          m->session_state.state);
                return;
        }
        d->claim_ev->on_agent_session(d, m->session_state.state, m->session_state.detail, d->claim_data);
}

bool desktop_agent_ready(const Desktop *d)
{
        return d->agent && agent_link_state(d->agent) == AGENT_LINK_READY && !d->stopping;
}

bool desktop_agent_reconnecting(const Desktop *d)
{
        if (!d->agent || d->stopping)
                return false;
        AgentLinkState st = agent_link_state(d->agent);
        return st == AGENT_LINK_CONNECTING || st == AGENT_LINK_AWAIT_HELLO || st == AGENT_LINK_AWAIT_READY;
}

/* A user's writable disk (a profile) is vm-user's 0600 at rest: lent to this desktop's own uid
 * for as long as the desktop lives. Read-only ones (app layers) are world-readable already. */
static int desktop_disk_lend(Desktop *d, const HvDisk *disk)
{
        Broker *b = d->b;
        if (hv_slot_read_only(disk->slot) || !idrange_contains(&b->vm_ids, d->uid))
                return 0;
        if (d->lent[disk->slot] && strcmp(d->lent[disk->slot], disk->path) != 0)
                diskloan_return(d->lent[disk->slot], d->uid, b->vm_uid, b->vm_gid);
        int r = diskloan_lend(disk->path, d->uid, d->gid);
        if (r < 0)
                return r;
        free(d->lent[disk->slot]);
        d->lent[disk->slot] = xstrdup(disk->path);
        return 0;
}

int desktop_disk_attach(Desktop *d, const HvDisk *disk, HvDone done, void *userdata)
{
        if (!d->vm || d->stopping)
                return -ENOTCONN;
        d->touched = true;      /* a user's disk goes in: the desktop is never handed to anyone else */
        int r = desktop_disk_lend(d, disk);
        return r < 0 ? r : d->b->hv->disk_attach(d->vm, disk, done, userdata);
}

int desktop_disk_detach(Desktop *d, HvSlot slot, HvDone done, void *userdata)
{
        return d->vm && !d->stopping ? d->b->hv->disk_detach(d->vm, slot, done, userdata) : -ENOTCONN;
}

int desktop_session_start(Desktop *d, const char *user, uint32_t uid, uint16_t w, uint16_t h,
                          const AgentDisk *disks, unsigned n_disks)
{
        AgentMsg m = { .type = AGENT_MSG_SESSION_START };
        if (n_disks > AGENT_DISKS_MAX)
                return -E2BIG;
        m.session_start.n_disks = (uint8_t)n_disks;
        for (unsigned i = 0; i < n_disks; i++)
                m.session_start.disks[i] = disks[i];
        snprintf(m.session_start.user, sizeof m.session_start.user, "%s", user);
        m.session_start.uid = uid;
        m.session_start.width = w;
        m.session_start.height = h;
        d->touched = true;      /* from here on the guest may hold the user's data */
        return d->agent ? agent_link_send(d->agent, &m) : -ENOTCONN;
}

int desktop_session_stop(Desktop *d, const char *reason)
{
        AgentMsg m = { .type = AGENT_MSG_SESSION_STOP };
        snprintf(m.session_stop.reason, sizeof m.session_stop.reason, "%s", reason);
        return d->agent ? agent_link_send(d->agent, &m) : -ENOTCONN;
}

static const HvCallbacks vm_callbacks = { .on_exit = on_vm_exit, .on_event = on_vm_event };
static const AgentLinkCallbacks agent_callbacks = {
        .on_hello = on_agent_hello, .on_ready = on_agent_ready, .on_failure = on_agent_failure,
        .on_session_state = on_agent_session_state, .on_identified = on_agent_identified,
};

int desktop_console_open(Desktop *d, int *ret_fd)
{
        if (!d->vm || d->stopping)
                return -ENOTCONN;
        return d->b->hv->console_open(d->vm, ret_fd);
}

static int agent_open(void *data, int *ret_fd)
{
        Desktop *d = data;
        return d->vm ? d->b->hv->agent_open(d->vm, ret_fd) : -ENOTCONN;
}

static void agent_attach(Desktop *d)
{
        agent_link_start(d->b->loop, agent_open, d, d->b->cfg->heartbeat_interval, d->b->cfg->heartbeat_misses,
                         &agent_callbacks, d, &d->agent);
}

uint64_t desktop_boot_wait_ms(bool background, uint64_t cpu_ms, uint64_t waited_ms, uint64_t limit_ms)
{
        if (!background || cpu_ms >= limit_ms || waited_ms >= limit_ms * BOOT_WALL_FACTOR)
                return 0;
        /* At least the CPU still owed (it cannot be had faster than that), never past the wall bound. */
        return MIN(MAX(limit_ms - cpu_ms, 1000), limit_ms * BOOT_WALL_FACTOR - waited_ms);
}

static void boot_timeout_cb(uv_timer_t *t)
{
        Desktop *d = t->data;
        if (d->state != DESKTOP_BOOTING || d->stopping)
                return;
        uint64_t cpu = UINT64_MAX, waited = now_ms() - d->boot_start_ms;
        uint64_t limit = d->clone ? DESKTOP_CLONE_TIMEOUT_MS : (uint64_t)d->b->boot_timeout_s * 1000;
        if (d->vm && d->b->hv->vm_cpu_ms && d->b->hv->vm_cpu_ms(d->vm, &cpu) < 0)
                cpu = UINT64_MAX;
        uint64_t more = desktop_boot_wait_ms(!desktop_claimed(d), cpu, waited, limit);
        if (more > 0) {
                log_info("desktop %s: not ready after %llu s, but a spare at idle priority has had only %llu.%llu s "
                         "of CPU; waiting %llu s more", d->id, (unsigned long long)waited / 1000,
                         (unsigned long long)cpu / 1000, (unsigned long long)cpu % 1000 / 100,
                         (unsigned long long)(more + 999) / 1000);
                uv_timer_start(&d->boot_timer, boot_timeout_cb, more, 0);
                return;
        }
        if (d->clone) {
                clone_failed(d, "not ready in time", false);
                return;
        }
        log_warn("desktop %s: agent not ready after %llu s (%u s of CPU allowed); replacing the desktop", d->id,
                 (unsigned long long)waited / 1000, d->b->boot_timeout_s);
        notify_boot_failed(d);
        desktop_destroy(d, "boot timeout");
}

static void on_vm_restored(HvVm *vm, int r, const char *error, void *userdata)
{
        Desktop *d = userdata;
        if (r < 0) {
                char why[200];
                snprintf(why, sizeof why, "resume: %s", error ? error : strerror(-r));
                clone_failed(d, why, true);
                return;
        }
        log_info("desktop %s: clone of %s running %llu ms after its start", d->id, d->tmpl.name,
                 (unsigned long long)(now_ms() - d->boot_start_ms));
        /* Only now: a host that connects while the state loads can be lost to the guest (the
         * load puts back the template's "no host" and virtio-serial tells the guest of no
         * change), and its agent then waits for a host for ever. */
        agent_attach(d);
        /* A resumed guest's agent says hello within a second of CPU; once in a while (2 of about
         * 15 crash-points runs) it never did though its port was connected. */
        agent_link_hello_nudge(d->agent, DESKTOP_CLONE_HELLO_NUDGE_MS);
}

static void vm_launch(Desktop *d)
{
        Broker *b = d->b;
        HvVmSpec spec = {
                .id = d->id, .run_dir = d->run_dir, .disk = d->overlay->path,
                .disk_secret = d->overlay->mode == OVERLAY_ENCRYPTED ? d->overlay->secret : NULL,
                .disk_on_tmpfs = d->overlay->mode == OVERLAY_RAM,
                .kernel = d->kernel, .initrd = d->initrd, .cmdline = d->cmdline,
                .memory_mb = d->memory >> 20, .vcpus = d->vcpus,
                .accel = b->accel, .uid = d->uid, .gid = d->gid, .kvm_gid = b->kvm_gid, .qemu = b->cfg->qemu,
                .background = !desktop_claimed(d),
                .mem_gid = (gid_t)-1,
        };
        if (d->clone) {
                /* The RAM from the template's sealed copy; the group opens its disk (the overlay's
                 * backing file). */
                spec.mem_from_fd = true;
                spec.mem_fd = d->tmpl.ram_fd;
                spec.mem_share = false;
                spec.incoming = true;
                spec.mem_gid = b->vm_gid;
        }
        int r = b->hv->vm_start(b->loop, &spec, &vm_callbacks, d, &d->vm);
        if (r < 0) {
                log_error("desktop %s: starting QEMU: %s", d->id, strerror(-r));
                notify_boot_failed(d);
                desktop_destroy(d, "qemu failed to start");
                return;
        }
        if (d->clone) {
                r = b->hv->vm_restore(d->vm, d->state_fd, on_vm_restored, d);
                d->state_fd = -1;
                if (r < 0) {
                        clone_failed(d, "cannot load the template's state", true);
                        return;
                }
        }
        d->pid = b->hv->vm_pid(d->vm);
        d->spawn_ms = now_ms();
        d->cloned = d->clone;
        desktop_persist(d);
        fault_point(&b->crash, "qemu-started");
        if (!d->clone)
                agent_attach(d);        /* a clone's, once it runs (on_vm_restored) */
}

typedef struct OverlayJob {
        uv_work_t work;
        Desktop *d;
        char *qemu_img, *golden, *dir;
        uid_t uid;
        gid_t gid;
        Overlay *overlay;
        char *error;
        int r;
        /* A clone: the template checked, its state opened and its RAM's sealed copy made when the
         * template had none yet; or why not (then over the golden). */
        const TemplateUse *tmpl;
        char *cold_golden, *fallback;
        int state_fd, ram_fd;
} OverlayJob;

static void overlay_job_run(uv_work_t *w)
{
        OverlayJob *j = w->data;
        const char *backing = j->golden;
        if (j->tmpl) {
                if (template_use_verify(j->tmpl, &j->fallback) == 0) {
                        j->state_fd = open(j->tmpl->state, O_RDONLY | O_CLOEXEC);
                        if (j->state_fd < 0)
                                j->fallback = xasprintf("template %s: state file: %s", j->tmpl->name, strerror(errno));
                }
                if (!j->fallback && j->tmpl->ram_fd < 0)
                        (void)template_ram_open(j->tmpl, &j->ram_fd, &j->fallback);
                if (j->fallback)
                        backing = j->cold_golden;
        }
        j->r = overlay_create(j->qemu_img, j->d->overlay_mode, backing, j->dir, j->d->id, j->uid, j->gid,
                              &j->overlay, &j->error);
}

static void overlay_job_done(uv_work_t *w, int status)
{
        OverlayJob *j = w->data;
        Desktop *d = j->d;
        d->creating_overlay = false;
        if (j->fallback) {
                log_info("desktop %s (pool %s): cold boot: %s", d->id, d->pool, j->fallback);
                template_invalidate(d->b, d->tmpl.name, j->fallback);
                d->clone = false;
        }
        d->state_fd = j->state_fd;
        if (j->ram_fd >= 0) {
                template_ram_keep(d->b, d->tmpl.name, j->ram_fd);
                d->tmpl.ram_fd = j->ram_fd;     /* closed by template_use_clear */
        }
        if (j->r < 0 || status < 0) {
                log_error("desktop %s: creating %s overlay: %s", d->id, overlay_mode_to_string(d->overlay_mode),
                          j->error ? j->error : strerror(-j->r));
                if (d->stopping) {
                        desktop_finish(d);
                } else {
                        notify_boot_failed(d);
                        desktop_destroy(d, "overlay creation failed");
                }
        } else if (d->stopping) {
                d->overlay = j->overlay;
                desktop_finish(d);
        } else {
                d->overlay = j->overlay;
                vm_launch(d);
        }
        free(j->qemu_img);
        free(j->golden);
        free(j->dir);
        free(j->error);
        free(j->cold_golden);
        free(j->fallback);
        free(j);
}

int desktop_create(Broker *b, const DesktopSpec *spec, Desktop **ret)
{
        const DbImageVersion *v = spec->version;
        uid_t uid = b->vm_uid;
        gid_t gid = b->vm_gid;
        if (b->vm_ids.count) {
                uint32_t id;
                if (idrange_take(&b->vm_ids, &id) < 0)
                        return log_error_errno(-EAGAIN, "pool %s: every uid of the vm-uid range (%u from %u) is "
                                               "a desktop's or a process's: no new desktop (raise vm-uid-count)",
                                               spec->pool, b->vm_ids.count, b->vm_ids.base);
                uid = (uid_t)id;
                gid = (gid_t)id;
        }
        uint8_t rnd[5];
        random_bytes(rnd, sizeof rnd);
        Desktop *d = xmalloc0(sizeof *d);
        d->b = b;
        d->uid = uid;
        d->gid = gid;
        char hex[11];
        hex_encode(rnd, sizeof rnd, hex);
        snprintf(d->id, sizeof d->id, "d-%s", hex);
        d->pool = xstrdup(spec->pool);
        d->image = xstrdup(v->name);
        d->version = v->version;
        d->golden = xstrdup(v->path);
        d->kernel = v->kernel ? xstrdup(v->kernel) : NULL;
        d->initrd = v->initrd ? xstrdup(v->initrd) : NULL;
        d->cmdline = v->cmdline ? xstrdup(v->cmdline) : NULL;
        d->memory = spec->memory ? spec->memory : 512ull << 20;
        d->vcpus = spec->vcpus ? spec->vcpus : 1;
        d->state = DESKTOP_BOOTING;
        d->state_fd = -1;
        d->overlay_mode = spec->overlay;
        d->created = (int64_t)now_realtime_s();
        d->boot_start_ms = now_ms();
        d->run_dir = xasprintf("%s/%s", b->desktop_run_dir, d->id);
        const char *dir = spec->overlay == OVERLAY_RAM ? b->cfg->ram_dir : b->overlay_dir;
        d->overlay_path = xasprintf("%s/%s.qcow2", dir, d->id);
        uv_timer_init(b->loop, &d->boot_timer);
        d->boot_timer.data = d;
        d->next = b->desktops;
        b->desktops = d;
        b->boots_in_flight++;
        int r;

        if (mkdir(d->run_dir, 0700) < 0) {
                r = -errno;
                log_error("desktop %s: run dir %s: %s", d->id, d->run_dir, strerror(errno));
                desktop_destroy(d, "run dir");
                return r;
        }
        /* Its owner is the desktop's uid for good: a restarted slated reads it back from here. */
        if (d->uid != (uid_t)-1 && chown(d->run_dir, d->uid, d->gid) < 0) {
                r = -errno;
                log_error("desktop %s: chown %s: %m", d->id, d->run_dir);
                desktop_destroy(d, "run dir");
                return r;
        }
        desktop_persist(d);
        db_audit(b->db, "desktop.create", d->id, d->pool);
        fault_point(&b->crash, "desktop-create");
        _cleanup_free_ char *cold_why = NULL;
        if (spec->clone && template_for(b, v, d->memory, d->vcpus, &d->tmpl, &cold_why) == 0)
                d->clone = true;
        else if (spec->clone)
                log_info("desktop %s (pool %s): cold boot: %s", d->id, d->pool, cold_why);
        log_info("desktop %s (pool %s): %s %s v%d, %s overlay", d->id, d->pool, d->clone ? "cloning" : "booting",
                 d->image, d->version, overlay_mode_to_string(d->overlay_mode));
        uv_timer_start(&d->boot_timer, boot_timeout_cb,
                       d->clone ? DESKTOP_CLONE_TIMEOUT_MS : (uint64_t)b->boot_timeout_s * 1000, 0);

        OverlayJob *j = xmalloc0(sizeof *j);
        j->work.data = j;
        j->d = d;
        j->state_fd = -1;
        j->ram_fd = -1;
        j->qemu_img = xstrdup(b->cfg->qemu_img);
        j->golden = xstrdup(d->clone ? d->tmpl.disk : d->golden);
        if (d->clone) {
                j->tmpl = &d->tmpl;
                j->cold_golden = xstrdup(d->golden);
        }
        j->dir = xstrdup(dir);
        j->uid = d->uid;
        j->gid = d->gid;
        d->creating_overlay = true;
        workq_queue(b->logon_q, b->loop, &j->work, overlay_job_run, overlay_job_done);
        if (ret)
                *ret = d;
        return 0;
}

/* The run dir's owner is the desktop's uid: slated set it before QEMU started, QEMU cannot
 * change it, and it outlives slated (the database keeps no copy to disagree with). Held again
 * before anything else can take it, also for a desktop about to be destroyed: its QEMU may run
 * until the destroy ends. */
static void desktop_uid_adopt(Desktop *d)
{
        Broker *b = d->b;
        struct stat st;
        d->uid = (uid_t)-1;
        d->gid = (gid_t)-1;
        if (b->vm_uid == (uid_t)-1 || lstat(d->run_dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return;         /* not root: QEMU runs as slated's uid */
        d->uid = st.st_uid;
        d->gid = st.st_gid;
        if (!idrange_contains(&b->vm_ids, d->uid))
                return;         /* vm-user's (made before the range, or with vm-uid-count = 0) */
        if (idrange_claim(&b->vm_ids, d->uid) < 0)
                log_warn("desktop %s: uid %u is another adopted desktop's too", d->id, (unsigned)d->uid);
        /* Its profile, if one is in it, goes back to vm-user when it is destroyed. */
        DbProfile *all = NULL;
        size_t n = 0;
        if (db_profile_list(b->db, true, &all, &n) == 0)
                for (size_t i = 0; i < n; i++)
                        if (all[i].attached_to && strcmp(all[i].attached_to, d->id) == 0 && all[i].path) {
                                free(d->lent[HV_SLOT_PROFILE]);
                                d->lent[HV_SLOT_PROFILE] = xstrdup(all[i].path);
                        }
        db_profile_free_array(all, n);
}

void desktop_adopt(Broker *b, const DbDesktop *row)
{
        Desktop *d = xmalloc0(sizeof *d);
        d->b = b;
        snprintf(d->id, sizeof d->id, "%s", row->id);
        d->pool = xstrdup(row->pool);
        d->image = xstrdup(row->image);
        d->version = row->version;
        if (desktop_state_from_string(row->state, &d->state) < 0)
                d->state = DESKTOP_FAILED;
        overlay_mode_from_string(row->overlay_mode, &d->overlay_mode);
        d->overlay_path = row->overlay_path ? xstrdup(row->overlay_path) : NULL;
        d->run_dir = xstrdup(row->run_dir);
        d->created = row->created;
        d->pid = row->pid;
        d->cloned = row->cloned;
        d->adopted = true;
        d->state_fd = -1;
        desktop_uid_adopt(d);
        d->boot_start_ms = d->ready_ms = now_ms();
        uv_timer_init(b->loop, &d->boot_timer);
        d->boot_timer.data = d;
        d->next = b->desktops;
        b->desktops = d;

        int r = row->pid > 0 ? b->hv->vm_adopt(b->loop, d->id, d->run_dir, row->pid, &vm_callbacks, d, &d->vm)
                             : -ESRCH;
        if (r < 0) {
                log_info("desktop %s: QEMU (pid %d) is gone; erasing what is left", d->id, (int)row->pid);
                d->state = DESKTOP_FAILED;
                desktop_destroy(d, "not running at slated start");
                return;
        }
        if (d->state != DESKTOP_READY && d->state != DESKTOP_ASSIGNED) {
                /* A half-booted or draining desktop: finishing its boot is not worth the risk. */
                log_info("desktop %s: found %s at start; destroying it", d->id, row->state);
                d->state = DESKTOP_FAILED;
                desktop_destroy(d, "incomplete at slated start");
                return;
        }
        /* Assigned before the restart: a user may have used it, so it is only ever destroyed. */
        d->touched = d->state == DESKTOP_ASSIGNED;
        log_info("desktop %s (pool %s): adopted running QEMU pid %d", d->id, d->pool, (int)d->pid);
        agent_attach(d);
        if (d->touched)
                agent_link_session_adopt(d->agent);     /* its USABLE may still be to come */
}
