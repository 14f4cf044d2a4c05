# End-to-end tests: real RDP clients against a real server.
# rdp-client is the headless FreeRDP client the e2e scripts drive; it is built for
# `make check` only, never installed.
check_PROGRAMS += tests/e2e/rdp-client
tests_e2e_rdp_client_SOURCES = tests/e2e/rdp-client.c tests/e2e/rdp-client-frame.c \
	tests/e2e/rdp-client-options.c tests/e2e/rdp-client-watchdog.c tests/e2e/rdp-client.h
tests_e2e_rdp_client_CFLAGS = $(AM_CFLAGS) $(FREERDP_CFLAGS) -pthread
tests_e2e_rdp_client_LDADD = $(FREERDP_LIBS) -lpthread
# tls-enum: the TLS versions and suites an RDP listener accepts, after the X.224 prelude.
check_PROGRAMS += tests/e2e/tls-enum tests/e2e/memscan
tests_e2e_memscan_SOURCES = tests/e2e/memscan.c
tests_e2e_memscan_LDADD = $(OPENSSL_LIBS)
tests_e2e_tls_enum_SOURCES = tests/e2e/tls-enum.c
tests_e2e_tls_enum_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS)
tests_e2e_tls_enum_LDADD = $(OPENSSL_LIBS)
EXTRA_DIST += tests/e2e/xfreerdp-smoke.sh tests/e2e/README.md tests/e2e/sshd.sh tests/e2e/console-lib.sh

# The scripts: real slated, real QEMU, real PAM (pam_wrapper), real RDP clients.
TESTS += tests/e2e/logon.sh tests/e2e/logon-screen.sh tests/e2e/hostile.sh tests/e2e/xfreerdp.sh tests/e2e/concurrent.sh tests/e2e/refresh.sh \
	tests/e2e/crash-points.sh tests/e2e/profiles.sh tests/e2e/capture.sh tests/e2e/backup.sh tests/e2e/tls.sh tests/e2e/gfx.sh
EXTRA_DIST += tests/e2e/logon.sh tests/e2e/logon-screen.sh tests/e2e/hostile.sh tests/e2e/xfreerdp.sh tests/e2e/concurrent.sh tests/e2e/refresh.sh \
	tests/e2e/crash-points.sh tests/e2e/profiles.sh tests/e2e/capture.sh tests/e2e/backup.sh tests/e2e/tls.sh tests/e2e/gfx.sh

# `make check-faults`: slated SIGKILLed at every named step of logon, logoff and refill, 10 runs
# of each with 10 logons in flight (about 80 minutes under TCG on 2 cores; make check runs one of
# each kind with 6).
check-faults: all guest $(check_PROGRAMS)
	SLATE_BUILDDIR=$(abs_top_builddir) SLATE_SRCDIR=$(abs_top_srcdir) SLATE_CRASH_POINTS=all \
		SLATE_CRASH_RUNS=$${SLATE_CRASH_RUNS:-10} SLATE_CRASH_LOGONS=$${SLATE_CRASH_LOGONS:-10} bash $(srcdir)/tests/e2e/crash-points.sh
.PHONY: check-faults

# The logon screen through the real slated, PAM (pam_oath, pam_expired) and slate-session.
TESTS += tests/e2e/logon-screen-pam.sh
EXTRA_DIST += tests/e2e/logon-screen-pam.sh
