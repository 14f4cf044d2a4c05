/* slate.conf: strict key = value lines, '#' comments, optional [slated] section header.
 * Any error rejects the whole file; every error is reported as "file:line: message". */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct SlateConfig {
        char *state_dir;          /* SQLite db, golden images, encrypted/plain overlays */
        char *run_dir;            /* sockets, per-desktop run dirs */
        char *ram_dir;            /* tmpfs for ram overlays */
        char *control_socket;     /* default: <run_dir>/control.sock */
        char *listen;             /* RDP listen addresses, comma-separated host:port */
        int log_level;
        char *admin_group;        /* members may use the control socket */
        char *vm_user;            /* owns profile disks at rest; QEMU's uid when vm_uid_count is 0 */
        unsigned vm_uid_base;     /* each desktop's QEMU runs as base + a slot (slated as root) */
        unsigned vm_uid_count;    /* slots in that range; 0: every QEMU runs as vm_user */
        char *accel;              /* auto | kvm | tcg */
        char *probe_kernel;       /* accelerator probe guest */
        char *probe_initrd;
        char *qemu;               /* qemu-system-x86_64 */
        char *qemu_img;
        unsigned boot_parallel;   /* desktops booting at once; 0 = number of CPUs */
        unsigned boot_timeout;    /* seconds to agent ready; 0 = by accelerator (KVM 30, TCG 120) */
        unsigned heartbeat_interval; /* seconds between agent heartbeats */
        unsigned refill_hold;     /* cap, s, on a logon's hold of spare boots (pool.c); 0: no hold */
        unsigned heartbeat_misses;   /* missed heartbeats before a desktop is replaced */
        char *pam_service;        /* PAM service name (default "slate") */
        char *tls_cert;           /* RDP server certificate (PEM); created on first start if absent */
        char *tls_key;            /* its private key (PEM, 0600) */
        unsigned session_uid_base;   /* each slate-session runs as a uid (= gid) of its own from here */
        unsigned session_uid_count;  /* ... to base + count - 1: at most this many connections at once */
        bool insecure_unprivileged_sessions; /* slated not root: sessions as slated's uid (development only) */
        char *session_program;    /* path of slate-session */
        unsigned session_spares;  /* slate-sessions started ahead of a client (0-8; 0: at accept) */
        bool rdp_h264;            /* slate-session offers the graphics pipeline with H.264 */
        unsigned handshake_timeout;  /* seconds from TCP accept to credentials */
        unsigned max_preauth;     /* connections not yet authenticated, at once */
        unsigned max_preauth_per_source; /* the same, from one client address */
        unsigned accept_rate;     /* new RDP connections a second, bursts of twice that; 0: no limit */
        unsigned auth_free_failures; /* failed logons per user before delays start */
        unsigned auth_lockout_failures; /* failed logons per user before a lockout */
        unsigned auth_lockout_time;  /* seconds a lockout lasts */
        unsigned auth_timeout;       /* seconds PAM may take before the connection is dropped */
        unsigned logon_screen_timeout; /* seconds a logon screen's user has, from the screen to logged on */
        char *logon_banner;       /* the logon screen's message ("" none): one line, IPC_TEXT_MAX bytes */
        unsigned auth_ipv4_prefix;   /* IPv4 addresses of one /N are one source (IPv6: /64) */
        char *guestfs_kernel;     /* kernel for the libguestfs appliance (SUPERMIN_KERNEL); NULL = its own lookup */
        char *guestfs_modules;    /* that kernel's /lib/modules/VERSION dir (SUPERMIN_MODULES) */
        char *agent_binary;       /* static slate-agent that image publishing installs into guests */
        char *agent_session_script; /* installed as /usr/libexec/slate/session when the file exists */
        char *profile_key_file;   /* host key that wraps every profile disk's key (root only, 0400) */
        uint64_t profile_size;    /* a new profile disk's size unless the user has a quota */
        unsigned profile_spares;  /* empty encrypted disks of profile_size kept ready for first logons */
        uint64_t app_layer_max;   /* largest app layer tree accepted (app add, app capture) */
        char *qemu_nbd;           /* reads profile disks for backup */
        char *store_dir;          /* the block store profile backups go to */
        char *sftp;               /* store replicate HOST:/DIR: the system's OpenSSH sftp */
        char *replica_ssh_config; /* its ssh_config (-F): how to reach replica hosts; optional */
        bool profile_backup;      /* back profiles up at every logout */
        bool pool_clone;          /* pools made without --clone/--boot clone their desktops from templates */
} SlateConfig;

void config_init_defaults(SlateConfig *c);
void config_free(SlateConfig *c);
/* Parse text into c (defaults must already be set). Returns 0, or -EINVAL with
 * *ret_errors holding one "file:line: message\n" per error (caller frees). Does no I/O. */
int config_parse(SlateConfig *c, const char *filename, const char *text, size_t len, char **ret_errors);
/* Read and parse a file (at most 1 MiB). Errors are printed to stderr. */
int config_load(SlateConfig *c, const char *path);
/* Fill in values derived from others (control socket under run_dir, ...). */
void config_finish(SlateConfig *c);
