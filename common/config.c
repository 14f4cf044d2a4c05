/* Config parser: pure (no I/O in config_parse) so it can be fuzzed; strict, table-driven.
 * Never "invalid value, ignoring": an unknown key or bad value rejects the whole file. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/config.h"
#include "common/ipc.h"
#include "common/log.h"
#include "common/util.h"

#define CONFIG_MAX_BYTES (1u << 20)
#define CONFIG_MAX_LINE 4096
/* A broken file is reported in full up to here; past it one more line says so. */
#define CONFIG_MAX_ERRORS 100
/* Per-desktop uids stay below 2^31: uids above are "HIC SVNT LEONES" to systemd (tools that
 * treat a uid as signed). A million desktops on one host is far beyond any; the bitmap is 128 KiB. */
#define VM_UID_MAX 0x7fffffffu
#define VM_UID_COUNT_MAX (1u << 20)

typedef enum { T_PATH, T_STRING, T_TEXT, T_UINT, T_LOGLEVEL, T_ACCEL, T_SIZE, T_BOOL } KeyType;

static const struct {
        const char *key;
        KeyType type;
        size_t offset;
        unsigned max;
} keys[] = {
        { "state-dir", T_PATH, offsetof(SlateConfig, state_dir), 0 },
        { "run-dir", T_PATH, offsetof(SlateConfig, run_dir), 0 },
        { "ram-dir", T_PATH, offsetof(SlateConfig, ram_dir), 0 },
        { "control-socket", T_PATH, offsetof(SlateConfig, control_socket), 0 },
        { "listen", T_STRING, offsetof(SlateConfig, listen), 0 },
        { "log-level", T_LOGLEVEL, offsetof(SlateConfig, log_level), 0 },
        { "admin-group", T_STRING, offsetof(SlateConfig, admin_group), 0 },
        { "vm-user", T_STRING, offsetof(SlateConfig, vm_user), 0 },
        { "vm-uid-base", T_UINT, offsetof(SlateConfig, vm_uid_base), VM_UID_MAX },
        { "vm-uid-count", T_UINT, offsetof(SlateConfig, vm_uid_count), VM_UID_COUNT_MAX },
        { "accel", T_ACCEL, offsetof(SlateConfig, accel), 0 },
        { "probe-kernel", T_PATH, offsetof(SlateConfig, probe_kernel), 0 },
        { "probe-initrd", T_PATH, offsetof(SlateConfig, probe_initrd), 0 },
        { "qemu", T_PATH, offsetof(SlateConfig, qemu), 0 },
        { "qemu-img", T_PATH, offsetof(SlateConfig, qemu_img), 0 },
        { "qemu-nbd", T_PATH, offsetof(SlateConfig, qemu_nbd), 0 },
        { "boot-parallel", T_UINT, offsetof(SlateConfig, boot_parallel), 256 },
        { "boot-timeout", T_UINT, offsetof(SlateConfig, boot_timeout), 3600 },
        { "refill-hold", T_UINT, offsetof(SlateConfig, refill_hold), 3600 },
        { "heartbeat-interval", T_UINT, offsetof(SlateConfig, heartbeat_interval), 3600 },
        { "heartbeat-misses", T_UINT, offsetof(SlateConfig, heartbeat_misses), 1000 },
        { "pam-service", T_STRING, offsetof(SlateConfig, pam_service), 0 },
        { "tls-cert", T_PATH, offsetof(SlateConfig, tls_cert), 0 },
        { "tls-key", T_PATH, offsetof(SlateConfig, tls_key), 0 },
        { "session-uid-base", T_UINT, offsetof(SlateConfig, session_uid_base), 0xfffffffeu },
        { "session-uid-count", T_UINT, offsetof(SlateConfig, session_uid_count), 1u << 24 },
        { "insecure-unprivileged-sessions", T_BOOL, offsetof(SlateConfig, insecure_unprivileged_sessions), 0 },
        { "session-program", T_PATH, offsetof(SlateConfig, session_program), 0 },
        { "session-spares", T_UINT, offsetof(SlateConfig, session_spares), 8 },
        { "rdp-h264", T_BOOL, offsetof(SlateConfig, rdp_h264), 0 },
        { "handshake-timeout", T_UINT, offsetof(SlateConfig, handshake_timeout), 3600 },
        { "max-preauth", T_UINT, offsetof(SlateConfig, max_preauth), 100000 },
        { "max-preauth-per-source", T_UINT, offsetof(SlateConfig, max_preauth_per_source), 100000 },
        { "accept-rate", T_UINT, offsetof(SlateConfig, accept_rate), 100000 },
        { "auth-free-failures", T_UINT, offsetof(SlateConfig, auth_free_failures), 1000 },
        { "auth-lockout-failures", T_UINT, offsetof(SlateConfig, auth_lockout_failures), 100000 },
        { "auth-lockout-time", T_UINT, offsetof(SlateConfig, auth_lockout_time), 86400 * 7 },
        { "auth-ipv4-prefix", T_UINT, offsetof(SlateConfig, auth_ipv4_prefix), 32 },
        { "auth-timeout", T_UINT, offsetof(SlateConfig, auth_timeout), 3600 },
        { "logon-screen-timeout", T_UINT, offsetof(SlateConfig, logon_screen_timeout), 3600 },
        { "logon-banner", T_TEXT, offsetof(SlateConfig, logon_banner), IPC_TEXT_MAX },
        { "guestfs-kernel", T_PATH, offsetof(SlateConfig, guestfs_kernel), 0 },
        { "guestfs-modules", T_PATH, offsetof(SlateConfig, guestfs_modules), 0 },
        { "agent-binary", T_PATH, offsetof(SlateConfig, agent_binary), 0 },
        { "agent-session-script", T_PATH, offsetof(SlateConfig, agent_session_script), 0 },
        { "profile-key-file", T_PATH, offsetof(SlateConfig, profile_key_file), 0 },
        { "profile-size", T_SIZE, offsetof(SlateConfig, profile_size), 0 },
        { "profile-spares", T_UINT, offsetof(SlateConfig, profile_spares), 64 },
        { "app-layer-max", T_SIZE, offsetof(SlateConfig, app_layer_max), 0 },
        { "store-dir", T_PATH, offsetof(SlateConfig, store_dir), 0 },
        { "sftp", T_PATH, offsetof(SlateConfig, sftp), 0 },
        { "replica-ssh-config", T_PATH, offsetof(SlateConfig, replica_ssh_config), 0 },
        { "profile-backup", T_BOOL, offsetof(SlateConfig, profile_backup), 0 },
        { "pool-clone", T_BOOL, offsetof(SlateConfig, pool_clone), 0 },
};

void config_init_defaults(SlateConfig *c)
{
        *c = (SlateConfig){
                .state_dir = xstrdup("/var/lib/slate"),
                .run_dir = xstrdup("/run/slate"),
                .ram_dir = xstrdup("/dev/shm/slate"),
                .listen = xstrdup("0.0.0.0:3389,[::]:3389"),
                .log_level = LOG_LVL_INFO,
                .admin_group = xstrdup("slate-admin"),
                .vm_user = xstrdup("slate-vm"),
                /* systemd leaves 0x70000000-0x7fffffff unused; session-uid-base takes its first 64 Ki. */
                .vm_uid_base = 0x70010000u,
                .vm_uid_count = 65536,
                .accel = xstrdup("auto"),
                .probe_kernel = xstrdup(SLATE_PKGLIBDIR "/guest/vmlinux"),
                .probe_initrd = xstrdup(SLATE_PKGLIBDIR "/guest/initrd.img"),
                .qemu = xstrdup(QEMU_SYSTEM_PATH),
                .qemu_img = xstrdup(QEMU_IMG_PATH),
                .qemu_nbd = xstrdup(QEMU_NBD_PATH),
                .sftp = xstrdup("/usr/bin/sftp"),
                .heartbeat_interval = 2,
                .refill_hold = 600,
                .heartbeat_misses = 5,
                .pam_service = xstrdup("slate"),
                /* systemd leaves 0x70000000-0x7FFFFFFF unused (its "UID/GID ranges"); QEMU's
                 * vm-uid-base follows this range. */
                .session_uid_base = 0x70000000u,
                .session_uid_count = 65536,
                .session_program = xstrdup(SLATE_LIBEXECDIR "/slate-session"),
                .session_spares = 1,
                .rdp_h264 = true,
                .handshake_timeout = 15,
                .max_preauth = 256,
                .max_preauth_per_source = 32,
                .accept_rate = 50,
                .auth_free_failures = 3,
                .auth_lockout_failures = 10,
                .auth_lockout_time = 300,
                .auth_ipv4_prefix = 32,
                .auth_timeout = 60,
                .logon_screen_timeout = 120,
                .logon_banner = xstrdup(""),
                .agent_binary = xstrdup(SLATE_LIBEXECDIR "/slate-agent"),
                .agent_session_script = xstrdup(SLATE_LIBEXECDIR "/session-script"),
                .profile_size = 1ull << 30,
                .profile_spares = 2,
                .app_layer_max = 8ull << 30,
                .profile_backup = true,
                .pool_clone = true,
        };
}

void config_free(SlateConfig *c)
{
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (keys[i].type == T_PATH || keys[i].type == T_STRING || keys[i].type == T_TEXT ||
                    keys[i].type == T_ACCEL) {
                        char **p = (char **)((char *)c + keys[i].offset);
                        free(*p);
                        *p = NULL;
                }
        free(c->control_socket);
        c->control_socket = NULL;
}

typedef struct {
        char *buf;
        size_t len, cap;
        int count;
} Errors;

static void err_add(Errors *e, const char *file, unsigned line, const char *fmt, ...)
{
        if (e->count > CONFIG_MAX_ERRORS)
                return;
        if (e->count == CONFIG_MAX_ERRORS) {
                e->count++;
                fmt = "too many errors, stopping";
        }
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        char *l = xasprintf("%s:%u: %s\n", file, line, msg);
        size_t n = strlen(l);
        if (e->len + n + 1 > e->cap) {
                e->cap = (e->len + n + 1) * 2;
                e->buf = realloc(e->buf, e->cap);
                if (!e->buf)
                        abort();
        }
        memcpy(e->buf + e->len, l, n + 1);
        e->len += n;
        e->count++;
        free(l);
}

static char *trim(char *s)
{
        while (*s == ' ' || *s == '\t')
                s++;
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
                s[--n] = 0;
        return s;
}

static void set_value(SlateConfig *c, size_t k, const char *val, const char *file, unsigned ln, Errors *e)
{
        void *field = (char *)c + keys[k].offset;
        switch (keys[k].type) {
        case T_PATH:
                if (val[0] != '/') {
                        err_add(e, file, ln, "%s: must be an absolute path, got \"%s\"", keys[k].key, val);
                        return;
                }
                /* fall through */
        case T_STRING:
                if (!*val) {
                        err_add(e, file, ln, "%s: empty value", keys[k].key);
                        return;
                }
                free(*(char **)field);
                *(char **)field = xstrdup(val);
                return;
        case T_TEXT:
                /* Shown to users before they log on (the logon screen's banner): one line of
                 * printable text, bounded; the screen wraps it. */
                if (strlen(val) > keys[k].max) {
                        err_add(e, file, ln, "%s: longer than %u bytes", keys[k].key, keys[k].max);
                        return;
                }
                for (const char *q = val; *q; q++)
                        if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                                err_add(e, file, ln, "%s: control characters are not allowed", keys[k].key);
                                return;
                        }
                free(*(char **)field);
                *(char **)field = xstrdup(val);
                return;
        case T_ACCEL:
                if (strcmp(val, "auto") && strcmp(val, "kvm") && strcmp(val, "tcg")) {
                        err_add(e, file, ln, "accel: expected auto, kvm or tcg, got \"%s\"", val);
                        return;
                }
                free(*(char **)field);
                *(char **)field = xstrdup(val);
                return;
        case T_SIZE: {
                uint64_t v;
                if (parse_size(val, &v) < 0 || v < (64ull << 20) || v % 4096) {
                        err_add(e, file, ln, "%s: expected a size of at least 64M in whole KiB (\"2G\"), got \"%s\"",
                                keys[k].key, val);
                        return;
                }
                *(uint64_t *)field = v;
                return;
        }
        case T_UINT: {
                unsigned v;
                int r = parse_uint(val, keys[k].max, &v);
                if (r < 0) {
                        err_add(e, file, ln, "%s: expected a number from 0 to %u, got \"%s\"", keys[k].key,
                                keys[k].max, val);
                        return;
                }
                *(unsigned *)field = v;
                return;
        }
        case T_BOOL:
                if (strcmp(val, "on") != 0 && strcmp(val, "off") != 0) {
                        err_add(e, file, ln, "%s: expected on or off, got \"%s\"", keys[k].key, val);
                        return;
                }
                *(bool *)field = strcmp(val, "on") == 0;
                return;
        case T_LOGLEVEL: {
                int l = log_level_from_string(val);
                if (l < 0) {
                        err_add(e, file, ln, "log-level: expected error, warning, info or debug, got \"%s\"", val);
                        return;
                }
                *(int *)field = l;
                return;
        }
        }
}

static unsigned key_line(const unsigned *lines, const char *key)
{
        for (size_t k = 0; k < ELEMENTSOF(keys); k++)
                if (strcmp(keys[k].key, key) == 0)
                        return lines[k];
        return 0;
}

/* The ranges of uids slated hands out: never uid 0, never past VM_UID_MAX. (The session range,
 * when it comes, must not overlap this one: a check here, beside this.) */
static void check_uid_ranges(const SlateConfig *c, const char *file, const unsigned *lines, Errors *e)
{
        if (c->vm_uid_count == 0)
                return;
        unsigned ln = key_line(lines, "vm-uid-base") ?: key_line(lines, "vm-uid-count");
        if (c->vm_uid_base == 0)
                err_add(e, file, ln, "vm-uid-base: the range would hold uid 0 (root)");
        else if ((uint64_t)c->vm_uid_base + c->vm_uid_count - 1 > VM_UID_MAX)
                err_add(e, file, ln, "vm-uid-base %u + vm-uid-count %u: the range ends past uid %u", c->vm_uid_base,
                        c->vm_uid_count, VM_UID_MAX);
        /* A session and a desktop sharing a uid could signal and read each other. */
        uint64_t vb = c->vm_uid_base, ve = vb + c->vm_uid_count, sb = c->session_uid_base, se = sb + c->session_uid_count;
        if (c->session_uid_count && vb < se && sb < ve)
                err_add(e, file, ln, "vm-uid-base %u + %u overlaps session-uid-base %u + %u: give them disjoint ranges",
                        c->vm_uid_base, c->vm_uid_count, c->session_uid_base, c->session_uid_count);
}

int config_parse(SlateConfig *c, const char *filename, const char *text, size_t len, char **ret_errors)
{
        Errors e = { 0 };
        bool seen[ELEMENTSOF(keys)] = { 0 };
        unsigned lines[ELEMENTSOF(keys)] = { 0 };
        unsigned ln = 0;
        size_t off = 0;

        *ret_errors = NULL;
        if (len > CONFIG_MAX_BYTES) {
                err_add(&e, filename, 0, "file larger than %u bytes", CONFIG_MAX_BYTES);
                *ret_errors = e.buf;
                return -EINVAL;
        }
        while (off < len) {
                const char *nl = memchr(text + off, '\n', len - off);
                size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
                ln++;
                if (n >= CONFIG_MAX_LINE) {
                        err_add(&e, filename, ln, "line longer than %d bytes", CONFIG_MAX_LINE);
                        off += n + 1;
                        continue;
                }
                char raw[CONFIG_MAX_LINE];
                memcpy(raw, text + off, n);
                raw[n] = 0;
                off += n + 1;
                if (memchr(raw, 0, n)) {
                        err_add(&e, filename, ln, "NUL byte in line");
                        continue;
                }
                char *line = trim(raw);
                if (!*line || *line == '#' || *line == ';')
                        continue;
                if (*line == '[') {
                        if (strcmp(line, "[slated]") != 0)
                                err_add(&e, filename, ln, "unknown section %s (only [slated] is allowed)", line);
                        continue;
                }
                char *eq = strchr(line, '=');
                if (!eq) {
                        err_add(&e, filename, ln, "expected key = value, got \"%s\"", line);
                        continue;
                }
                *eq = 0;
                char *key = trim(line), *val = trim(eq + 1);
                size_t vn = strlen(val);
                if (vn >= 2 && val[0] == '"' && val[vn - 1] == '"') {
                        val[vn - 1] = 0;
                        val++;
                }
                if (strcmp(key, "session-user") == 0) {
                        err_add(&e, filename, ln, "session-user: removed; each connection runs as a uid of its own "
                                "from session-uid-base (slate.conf(5))");
                        continue;
                }
                size_t k;
                for (k = 0; k < ELEMENTSOF(keys); k++)
                        if (strcmp(keys[k].key, key) == 0)
                                break;
                if (k == ELEMENTSOF(keys)) {
                        err_add(&e, filename, ln, "unknown key \"%s\"", key);
                        continue;
                }
                if (seen[k]) {
                        err_add(&e, filename, ln, "%s: set twice", key);
                        continue;
                }
                seen[k] = true;
                lines[k] = ln;
                set_value(c, k, val, filename, ln, &e);
        }
        if (e.count == 0)
                check_uid_ranges(c, filename, lines, &e);
        if (e.count) {
                *ret_errors = e.buf;
                return -EINVAL;
        }
        return 0;
}

int config_load(SlateConfig *c, const char *path)
{
        _cleanup_free_ char *text = NULL, *errors = NULL;
        size_t len;
        int r = read_file_max(path, CONFIG_MAX_BYTES, &text, &len);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return r;
        }
        r = config_parse(c, path, text, len, &errors);
        if (r < 0)
                fputs(errors, stderr);
        return r;
}

void config_finish(SlateConfig *c)
{
        if (!c->control_socket)
                c->control_socket = xasprintf("%s/control.sock", c->run_dir);
        if (!c->tls_cert)
                c->tls_cert = xasprintf("%s/tls/cert.pem", c->state_dir);
        if (!c->tls_key)
                c->tls_key = xasprintf("%s/tls/key.pem", c->state_dir);
        if (!c->profile_key_file)
                c->profile_key_file = xasprintf("%s/keys/profile-host.key", c->state_dir);
        if (!c->store_dir)
                c->store_dir = xasprintf("%s/store", c->state_dir);
}
