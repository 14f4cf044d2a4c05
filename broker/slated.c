/* slated: the Slate broker daemon. Holds all state (SQLite), supervises the desktops' QEMUs,
 * keeps the pools warm and serves the control API. SIGTERM stops slated but leaves desktops
 * running: the next start adopts them (a broker upgrade must not log users off). */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "broker/auth.h"
#include "broker/api.h"
#include "broker/backup.h"
#include "broker/broker.h"
#include "broker/workq.h"
#include "broker/conn.h"
#include "broker/control.h"
#include "broker/desktop.h"
#include "broker/listener.h"
#include "broker/logoff.h"
#include "broker/logon.h"
#include "broker/pool.h"
#include "broker/template.h"
#include "broker/userdisks.h"
#include "broker/reconcile.h"
#include "broker/hostcheck.h"
#include "broker/tls.h"
#include "common/idrange.h"
#include "common/log.h"
#include "common/util.h"

static void usage(FILE *f)
{
        fprintf(f, "Usage: slated [OPTIONS]\n"
                   "\n"
                   "The Slate broker daemon: golden images, warm pools of desktop VMs, control API.\n"
                   "\n"
                   "  -c, --config FILE    configuration file (default %s/slate.conf)\n"
                   "  -f, --foreground     stay in the foreground, log to stderr (the only mode; for systemd)\n"
                   "  -n, --check-config   parse the configuration, report every error, and exit\n"
                   "  -h, --help           show this help\n"
                   "      --version        show the version\n"
                   "\n"
                   "SIGTERM/SIGINT stop slated; running desktops are left alone and adopted at the next start.\n"
                   "See slated(8), slate.conf(5), slatectl(8).\n",
                SLATE_SYSCONFDIR);
}

static void on_signal(uv_signal_t *s, int signum)
{
        Broker *b = s->data;
        log_info("signal %d: stopping; desktops keep running and will be adopted at the next start", signum);
        b->shutting_down = true;
        uv_stop(b->loop);
}

static int prepare_dirs(Broker *b)
{
        SlateConfig *c = b->cfg;
        int r;
        b->overlay_dir = xasprintf("%s/overlays", c->state_dir);
        b->image_dir = xasprintf("%s/images", c->state_dir);
        b->desktop_run_dir = xasprintf("%s/desktops", c->run_dir);
        b->app_dir = xasprintf("%s/apps", c->state_dir);
        b->profile_dir = xasprintf("%s/profiles", c->state_dir);
        /* QEMU, as the VM uid, must traverse to the overlays and read the golden images. */
        const struct { const char *path; mode_t mode; } dirs[] = {
                { c->state_dir, 0711 }, { b->overlay_dir, 0711 }, { b->image_dir, 0755 },
                { c->run_dir, 0711 },   { b->desktop_run_dir, 0711 }, { c->ram_dir, 0711 },
                { b->app_dir, 0755 },   { b->profile_dir, 0711 },
        };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                if ((r = mkdir_p(dirs[i].path, dirs[i].mode)) < 0)
                        return log_error_errno(r, "%s: %s", dirs[i].path, strerror(-r));
                /* One made first by someone else (ram-dir is often in world-writable /dev/shm), or
                 * a symlink put there, would be theirs to swap files in: refused, not chmod'ed. */
                struct stat st;
                if (lstat(dirs[i].path, &st) < 0)
                        return log_error_errno(-errno, "%s: %m", dirs[i].path);
                if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
                        log_error("%s: %s: refusing to use it (remove it, or give it to uid %u)", dirs[i].path,
                                  !S_ISDIR(st.st_mode) ? "not a directory (a symlink?)"
                                                       : xasprintf("owned by uid %u, not slated's", (unsigned)st.st_uid),
                                  (unsigned)geteuid());
                        return -EPERM;
                }
                if (chmod(dirs[i].path, dirs[i].mode) < 0)
                        return log_error_errno(-errno, "%s: chmod: %m", dirs[i].path);
        }
        return 0;
}

/* As root, each desktop's QEMU runs as a uid of its own from the vm-uid range (or all as vm-user
 * when that range is empty); otherwise as slated's own uid. */
static int resolve_vm_user(Broker *b)
{
        b->vm_uid = (uid_t)-1;
        b->vm_gid = (gid_t)-1;
        b->kvm_gid = (gid_t)-1;
        struct group *kg = getgrnam("kvm");
        if (kg)
                b->kvm_gid = kg->gr_gid;
        if (geteuid() != 0)
                return 0;
        const char *u = b->cfg->vm_user;
        struct passwd *pw = getpwnam(u);
        if (pw) {
                b->vm_uid = pw->pw_uid;
                b->vm_gid = pw->pw_gid;
        } else {
                unsigned id;
                if (parse_uint(u, 0x7fffffff, &id) < 0 || id == 0)
                        return log_error_errno(-ENOENT, "vm-user %s does not exist: create it (useradd --system "
                                               "--no-create-home --shell /usr/sbin/nologin %s) or set vm-user "
                                               "to a numeric uid", u, u);
                b->vm_uid = b->vm_gid = (uid_t)id;
        }
        SlateConfig *c = b->cfg;
        if (c->vm_uid_count == 0) {
                log_info("QEMU runs as uid %u gid %u (vm-uid-count = 0: every desktop the same)", (unsigned)b->vm_uid,
                         (unsigned)b->vm_gid);
                return 0;
        }
        /* The scan of /proc in idrange_init marks the uids QEMUs still run as: an orphan's is not
         * handed out; an adopted desktop's is claimed back (reconcile_startup, after this). */
        char why[200];
        int r;
        if ((r = idrange_validate(c->vm_uid_base, c->vm_uid_count, why, sizeof why)) < 0 ||
            (r = idrange_check_unused(c->vm_uid_base, c->vm_uid_count, why, sizeof why)) < 0)
                return log_error_errno(r, "vm-uid-base %u, vm-uid-count %u: %s: desktops must not share a uid or gid "
                                       "with anyone (move the range)", c->vm_uid_base, c->vm_uid_count, why);
        idrange_init(&b->vm_ids, c->vm_uid_base, c->vm_uid_count);
        log_info("each desktop's QEMU runs as a uid of its own, %u to %u; profile disks at rest belong to uid %u",
                 c->vm_uid_base, c->vm_uid_base + c->vm_uid_count - 1, (unsigned)b->vm_uid);
        return 0;
}

/* As root, each slate-session runs as a uid (and gid) of its own from session-uid-base: two
 * connections cannot signal or ptrace each other, and none is slated. Not root, sessions would
 * run as slated's own uid, which the control socket lets in: refused unless asked for. */
static int resolve_session_ids(Broker *b)
{
        SlateConfig *c = b->cfg;
        char why[200];
        if (geteuid() != 0) {
                if (strcmp(c->listen, "none") == 0)
                        return 0;
                if (!c->insecure_unprivileged_sessions)
                        return log_error_errno(-EPERM, "slated is not root: each slate-session would run as slated's own "
                                               "uid %u, free to use the control API; run slated as root, or set "
                                               "insecure-unprivileged-sessions = on (development only)",
                                               (unsigned)geteuid());
                log_warn("insecure-unprivileged-sessions: slate-session runs as slated's own uid %u and could use "
                         "the control API (development only)", (unsigned)geteuid());
                return 0;
        }
        if (idrange_validate(c->session_uid_base, c->session_uid_count, why, sizeof why) < 0 ||
            idrange_check_unused(c->session_uid_base, c->session_uid_count, why, sizeof why) < 0)
                return log_error_errno(-EINVAL, "session-uid-base %u, session-uid-count %u: %s", c->session_uid_base,
                                       c->session_uid_count, why);
        b->session_ids = xmalloc0(sizeof *b->session_ids);
        idrange_init(b->session_ids, c->session_uid_base, c->session_uid_count);
        log_info("each slate-session runs as a uid of its own, %u to %u", c->session_uid_base,
                 c->session_uid_base + c->session_uid_count - 1);
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' }, { "foreground", no_argument, NULL, 'f' },
                { "check-config", no_argument, NULL, 'n' }, { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },      {},
        };
        const char *config_path = SLATE_SYSCONFDIR "/slate.conf";
        bool check_only = false, config_given = false;
        int c;
        while ((c = getopt_long(argc, argv, "c:fnh", opts, NULL)) >= 0)
                switch (c) {
                case 'c': config_path = optarg; config_given = true; break;
                case 'f': break;
                case 'n': check_only = true; break;
                case 'h': usage(stdout); return 0;
                case 'V': printf("slated %s\n", PACKAGE_VERSION); return 0;
                default: usage(stderr); return 2;
                }
        if (optind < argc) {
                usage(stderr);
                return 2;
        }

        log_set_prefix("slated");
        SlateConfig cfg;
        config_init_defaults(&cfg);
        if ((config_given || access(config_path, F_OK) == 0) && config_load(&cfg, config_path) < 0)
                return 1;
        config_finish(&cfg);
        if (check_only) {
                printf("%s: OK\n", config_path);
                return 0;
        }
        log_set_level(cfg.log_level);
        Fault crash;
        if (fault_parse(getenv("SLATE_CRASH_AT"), &crash) < 0) {
                log_error("SLATE_CRASH_AT=%s: expected POINT or POINT:N", getenv("SLATE_CRASH_AT"));
                return 1;
        }
        /* Overlay keys live in this process: keep them out of core dumps. */
        prctl(PR_SET_DUMPABLE, 0);
        signal(SIGPIPE, SIG_IGN);

        Broker b = { .loop = uv_default_loop(), .cfg = &cfg, .hv = &hv_qemu_driver, .start_ms = now_ms(), .crash = crash };
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        b.boot_parallel = cfg.boot_parallel ? cfg.boot_parallel : (unsigned)(ncpu > 0 ? ncpu : 1);
        if (resolve_session_ids(&b) < 0 || prepare_dirs(&b) < 0 || resolve_vm_user(&b) < 0)
                return 1;
        if (tls_identity_load(cfg.tls_cert, cfg.tls_key, &b.tls_cert_pem, &b.tls_key) < 0)
                return 1;
        hostcheck_warn_swap();
        b.limiter = auth_limiter_new(cfg.auth_free_failures, cfg.auth_lockout_failures, cfg.auth_lockout_time);
        auth_limiter_set_ipv4_prefix(b.limiter, cfg.auth_ipv4_prefix ? cfg.auth_ipv4_prefix : 32);
        uv_mutex_init(&b.store_mu);
        /* PAM may block: the logon path's work has threads of its own (workq.h). */
        b.logon_q = workq_new(b.loop, 4);

        /* Created 0600 from the start, and its -wal and -shm (SQLite gives them the database's
         * mode): no window in which another user can open them. */
        _cleanup_free_ char *dbpath = xasprintf("%s/slate.db", cfg.state_dir);
        mode_t old_umask = umask(077);
        int dr = db_open(dbpath, &b.db);
        umask(old_umask);
        if (dr < 0)
                return 1;
        chmod(dbpath, 0600);

        _cleanup_free_ char *cache = xasprintf("%s/accel.cache", cfg.state_dir);
        int r = hv_qemu_probe_accel(cfg.accel, cfg.qemu, cfg.probe_kernel, cfg.probe_initrd, cache, &b.accel,
                                    &b.accel_reason);
        if (r < 0) {
                log_error("accelerator: %s", b.accel_reason ? b.accel_reason : strerror(-r));
                return 1;
        }
        if (b.accel == HV_ACCEL_TCG && strcmp(cfg.accel, "tcg") != 0)
                log_warn("accelerator: TCG (software emulation, desktops are slow): %s", b.accel_reason);
        else
                log_info("accelerator: %s (%s)", hv_accel_name(b.accel), b.accel_reason);
        b.boot_timeout_s = cfg.boot_timeout ? cfg.boot_timeout : b.accel != HV_ACCEL_TCG ? 30 : 120;

        /* Everything start-up reconciliation may touch (the pool timers a destroy kicks) exists
         * before it runs: a crash can leave any mix of rows behind. */
        pool_manager_init(&b);
        logon_init(&b);
        template_load_all(&b);
        if (pool_load_all(&b) < 0 || reconcile_startup(&b) < 0 || logon_restore_all(&b) < 0)
                return 1;
        if (control_start(&b, cfg.control_socket, cfg.admin_group, &b.control) < 0)
                return 1;
        api_register(b.control);
        api_image_register(b.control);
        api_image_gc_register(b.control);
        api_session_register(b.control);
        api_app_register(b.control);
        api_app_capture_register(b.control);
        api_profile_register(b.control);
        api_store_register(b.control);
        if (listener_start(&b) < 0)
                return 1;
        conn_spares_start(&b);

        uv_signal_t sigterm, sigint;
        uv_signal_init(b.loop, &sigterm);
        uv_signal_init(b.loop, &sigint);
        sigterm.data = sigint.data = &b;
        uv_signal_start(&sigterm, on_signal, SIGTERM);
        uv_signal_start(&sigint, on_signal, SIGINT);

        pool_manager_start(&b);
        userdisks_spares_refill(&b);
        logoff_sweep_start(&b);
        log_info("slated %s ready: control socket %s, state %s", PACKAGE_VERSION, cfg.control_socket, cfg.state_dir);
        uv_run(b.loop, UV_RUN_DEFAULT);

        /* Shutdown: stop listening, release desktops without stopping their VMs. */
        control_stop(b.control);
        listener_stop(&b);
        logon_release_all(&b);
        pool_manager_stop(&b);
        template_shutdown(&b);
        logoff_sweep_stop(&b);
        while (b.desktops) {
                Desktop *d = b.desktops;
                if (d->stopping || d->state == DESKTOP_BOOTING) {
                        /* Half-done work is not adoptable: the next start finishes the destroy. */
                        desktop_persist(d);
                }
                desktop_release(d);
        }
        uv_run(b.loop, UV_RUN_NOWAIT);
        control_free(b.control);
        store_handle_close(&b);
        workq_free(b.logon_q);
        db_close(b.db);
        auth_limiter_free(b.limiter);
        free(b.tls_cert_pem);
        tls_key_free(b.tls_key);
        free(b.accel_reason);
        free(b.overlay_dir);
        free(b.image_dir);
        free(b.app_dir);
        free(b.profile_dir);
        free(b.desktop_run_dir);
        idrange_free(&b.vm_ids);
        while (b.pools) {
                Pool *p = b.pools;
                b.pools = p->next;
                pool_free(p);
        }
        config_free(&cfg);
        log_info("stopped");
        /* Work may still run in the thread pool (a publish in libguestfs, a backup): returning
         * would run the atexit handlers (libguestfs closes its handles there) under its feet, a
         * double free. What it leaves half-done, the next start cleans up. */
        fflush(NULL);
        _exit(0);
}
