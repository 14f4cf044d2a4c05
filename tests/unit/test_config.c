/* slate.conf parsing: strict, every error reported with file:line, nothing half-applied. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/config.h"
#include "common/log.h"

static int parse(SlateConfig *c, const char *text, char **errors)
{
        config_init_defaults(c);
        return config_parse(c, "slate.conf", text, strlen(text), errors);
}

Test(config, defaults_are_usable)
{
        SlateConfig c;
        char *e;
        cr_assert_eq(parse(&c, "", &e), 0);
        config_finish(&c);
        cr_assert_str_eq(c.state_dir, "/var/lib/slate");
        cr_assert_str_eq(c.control_socket, "/run/slate/control.sock");
        cr_assert_str_eq(c.accel, "auto");
        config_free(&c);
}

Test(config, reads_keys_comments_section_and_quotes)
{
        SlateConfig c;
        char *e;
        cr_assert_eq(parse(&c, "# comment\n[slated]\nstate-dir = /srv/slate\n  run-dir=\"/run/x\"  \n"
                               "log-level = debug\naccel = tcg\nboot-parallel = 3\n; other comment\n", &e), 0);
        cr_assert_str_eq(c.state_dir, "/srv/slate");
        cr_assert_str_eq(c.run_dir, "/run/x");
        cr_assert_eq(c.log_level, LOG_LVL_DEBUG);
        cr_assert_str_eq(c.accel, "tcg");
        cr_assert_eq(c.boot_parallel, 3);
        config_free(&c);
}

Test(config, reports_every_error_with_file_and_line)
{
        SlateConfig c;
        char *e = NULL;
        int r = parse(&c, "state-dir = relative\nbogus = 1\nlog-level = loud\nno equals sign\n"
                          "boot-parallel = -1\naccel = xen\n[other]\n", &e);
        cr_assert_lt(r, 0);
        cr_assert_not_null(e);
        cr_assert(strstr(e, "slate.conf:1: state-dir: must be an absolute path"), "%s", e);
        cr_assert(strstr(e, "slate.conf:2: unknown key \"bogus\""), "%s", e);
        cr_assert(strstr(e, "slate.conf:3: log-level"), "%s", e);
        cr_assert(strstr(e, "slate.conf:4: expected key = value"), "%s", e);
        cr_assert(strstr(e, "slate.conf:5: boot-parallel"), "%s", e);
        cr_assert(strstr(e, "slate.conf:6: accel"), "%s", e);
        cr_assert(strstr(e, "slate.conf:7: unknown section"), "%s", e);
        free(e);
        config_free(&c);
}

Test(config, rejects_duplicates_nul_and_huge_lines)
{
        SlateConfig c;
        char *e = NULL;
        cr_assert_lt(parse(&c, "accel = tcg\naccel = kvm\n", &e), 0);
        cr_assert(strstr(e, "slate.conf:2: accel: set twice"), "%s", e);
        free(e);
        config_free(&c);

        char nul[] = "accel = tcg\0x\n";
        config_init_defaults(&c);
        cr_assert_lt(config_parse(&c, "f", nul, sizeof nul - 1, &e), 0);
        cr_assert(strstr(e, "NUL"), "%s", e);
        free(e);
        config_free(&c);

        char *big = malloc(10000);
        memset(big, 'a', 9999);
        big[9999] = 0;
        cr_assert_lt(parse(&c, big, &e), 0);
        cr_assert(strstr(e, "longer than"), "%s", e);
        free(e);
        free(big);
        config_free(&c);
}

Test(config, vm_uid_range_defaults_to_its_own_block_of_64k)
{
        SlateConfig c;
        char *e;
        cr_assert_eq(parse(&c, "", &e), 0);
        cr_assert_eq(c.vm_uid_base, 0x70010000u);
        cr_assert_eq(c.vm_uid_count, 65536);
        config_free(&c);
        cr_assert_eq(parse(&c, "vm-uid-base = 100000\nvm-uid-count = 0\n", &e), 0);
        cr_assert_eq(c.vm_uid_base, 100000);
        cr_assert_eq(c.vm_uid_count, 0);
        config_free(&c);
}

Test(config, vm_uid_range_without_root_and_below_2_31)
{
        SlateConfig c;
        char *e = NULL;
        cr_assert_lt(parse(&c, "log-level = info\nvm-uid-base = 0\n", &e), 0);
        cr_assert(strstr(e, "slate.conf:2: vm-uid-base: the range would hold uid 0"), "%s", e);
        free(e);
        config_free(&c);
        e = NULL;
        cr_assert_lt(parse(&c, "vm-uid-base = 2147480000\nvm-uid-count = 65536\n", &e), 0);
        cr_assert(strstr(e, "slate.conf:1: vm-uid-base 2147480000 + vm-uid-count 65536: the range ends past"), "%s", e);
        free(e);
        config_free(&c);
        e = NULL;
        cr_assert_lt(parse(&c, "vm-uid-count = 2000000\n", &e), 0);
        cr_assert(strstr(e, "slate.conf:1: vm-uid-count"), "%s", e);
        free(e);
        config_free(&c);
        e = NULL;
        cr_assert_lt(parse(&c, "session-uid-base = 1879113000\n", &e), 0);
        cr_assert(strstr(e, "overlaps session-uid-base"), "%s", e);
        free(e);
        config_free(&c);
        /* Range 0 with no uids is no range: nothing to refuse. */
        cr_assert_eq(parse(&c, "vm-uid-base = 0\nvm-uid-count = 0\n", &e), 0);
        config_free(&c);
}

Test(config, session_uids_and_the_removed_session_user)
{
        SlateConfig c;
        char *e;
        cr_assert_eq(parse(&c, "", &e), 0);
        cr_assert_eq(c.session_uid_base, 0x70000000u);
        cr_assert_eq(c.session_uid_count, 65536);
        cr_assert(!c.insecure_unprivileged_sessions);
        config_free(&c);
        cr_assert_eq(parse(&c, "session-uid-base = 4294967294\nsession-uid-count = 1\n"
                               "insecure-unprivileged-sessions = on\n", &e), 0);
        cr_assert_eq(c.session_uid_base, 4294967294u);
        cr_assert(c.insecure_unprivileged_sessions);
        config_free(&c);
        cr_assert_eq(parse(&c, "session-user = slate-session\n", &e), -EINVAL);
        cr_assert(strstr(e, "slate.conf:1: session-user: removed"), "%s", e);
        free(e);
        config_free(&c);
}

/* The logon screen's banner is shown to anyone who connects: one line of printable text,
 * bounded (it travels in IPC_CONFIG.banner); empty means none. */
Test(config, logon_banner_is_bounded_printable_text)
{
        SlateConfig c;
        char *e = NULL;
        cr_assert_eq(parse(&c, "", &e), 0);
        cr_assert_str_eq(c.logon_banner, "");
        cr_assert_eq(c.logon_screen_timeout, 120);
        config_free(&c);
        cr_assert_eq(parse(&c, "logon-banner = Authorised users only. Ünïcode is fine.\nlogon-screen-timeout = 300\n", &e),
                     0, "%s", e ? e : "");
        cr_assert_str_eq(c.logon_banner, "Authorised users only. Ünïcode is fine.");
        cr_assert_eq(c.logon_screen_timeout, 300);
        config_free(&c);
        char big[1200 + 32];
        int n = snprintf(big, sizeof big, "logon-banner = ");
        memset(big + n, 'x', 1025);
        strcpy(big + n + 1025, "\n");
        cr_assert_lt(parse(&c, big, &e), 0);
        cr_assert_not_null(strstr(e, "slate.conf:1: logon-banner: longer than 1024 bytes"), "%s", e);
        free(e);
        config_free(&c);
        e = NULL;
        cr_assert_lt(parse(&c, "logon-banner = a\tb\n", &e), 0);
        cr_assert_not_null(strstr(e, "control characters"), "%s", e);
        free(e);
        config_free(&c);
}

/* Spare slate-sessions each hold a process and a session uid while they wait: one by default,
 * none on request, and a bound. */
Test(config, session_spares_default_one_bounded_by_eight)
{
        SlateConfig c;
        char *e;
        cr_assert_eq(parse(&c, "", &e), 0);
        cr_assert_eq(c.session_spares, 1);
        config_free(&c);
        cr_assert_eq(parse(&c, "session-spares = 0\n", &e), 0);
        cr_assert_eq(c.session_spares, 0);
        config_free(&c);
        cr_assert_eq(parse(&c, "session-spares = 8\n", &e), 0);
        cr_assert_eq(c.session_spares, 8);
        config_free(&c);
        cr_assert_eq(parse(&c, "session-spares = 9\n", &e), -EINVAL);
        cr_assert(strstr(e, "slate.conf:1: session-spares"), "%s", e);
        free(e);
        config_free(&c);
}

Test(config, rdp_h264_on_by_default_and_can_be_turned_off)
{
        SlateConfig c;
        char *e;
        cr_assert_eq(parse(&c, "", &e), 0);
        cr_assert(c.rdp_h264);
        config_free(&c);
        cr_assert_eq(parse(&c, "rdp-h264 = off\n", &e), 0);
        cr_assert(!c.rdp_h264);
        config_free(&c);
        cr_assert_eq(parse(&c, "rdp-h264 = maybe\n", &e), -EINVAL);
        free(e);
        config_free(&c);
}
