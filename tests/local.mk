# Tests shared infrastructure. Components declare their own unit tests and fuzz targets in
# their local.mk with the conventions below:
#   check_PROGRAMS += tests/unit/test_foo ; TESTS += tests/unit/test_foo
#   tests_unit_test_foo_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) ; _LDADD += $(CRITERION_LIBS)
#   fuzz target tests/fuzz/fuzz_foo.c (LLVMFuzzerTestOneInput) + tests/fuzz/driver.c with
#   -DFUZZ_NAME=\"foo\", seed corpus in tests/fuzz/corpus/foo/.
EXTRA_DIST += tests/fuzz/driver.c

# libFuzzer campaigns (clang), one rule for every target. A component declares
#   FUZZ_TARGETS += foo-bar                             (tests/fuzz/fuzz_foo_bar.c, corpus/foo_bar/)
#   tests/fuzz/fuzz-foo-bar-libfuzzer: SOURCES.c HEADERS.h  (the .c files are compiled, all are deps)
#   FUZZ_foo_bar_FLAGS = extra compiler flags and libraries;  FUZZ_foo_bar_RUN = libFuzzer options
# `make fuzz` builds them all; `make fuzz-foo-bar` one; `make fuzz-foo-bar-run FUZZ_TIME=120` fuzzes
# a scratch copy of the seed corpus (tests/fuzz/work/foo_bar) for that many seconds.
FUZZ_CC = clang
FUZZ_TIME = 120
FUZZ_SANITIZE = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
tests/fuzz/fuzz-%-libfuzzer:
	@mkdir -p tests/fuzz
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_SANITIZE) $(AM_CPPFLAGS) -o $@ $(filter %.c,$^) $(FUZZ_$(subst -,_,$*)_FLAGS)
fuzz-%-run: tests/fuzz/fuzz-%-libfuzzer
	@mkdir -p tests/fuzz/work/$(subst -,_,$*)
	tests/fuzz/fuzz-$*-libfuzzer -max_total_time=$(FUZZ_TIME) $(FUZZ_$(subst -,_,$*)_RUN) \
		tests/fuzz/work/$(subst -,_,$*) $(srcdir)/tests/fuzz/corpus/$(subst -,_,$*)
fuzz-%: tests/fuzz/fuzz-%-libfuzzer
	@:
fuzz: $(FUZZ_TARGETS:%=tests/fuzz/fuzz-%-libfuzzer)
.PHONY: fuzz
CLEANFILES += $(FUZZ_TARGETS:%=tests/fuzz/fuzz-%-libfuzzer)

# Unit tests of common/ and slated's own modules.
BROKER_TEST_LIBS = broker/libslatebroker.a broker/libslatehv.a streaming/libslatestreaming.a imaging/libslateimaging.a agent/libslateproto.a \
	common/libslatecommon.a $(UV_LIBS) $(JSONC_LIBS) $(SQLITE_LIBS) $(OPENSSL_LIBS) $(PAM_LIBS) $(GUESTFS_LIBS) $(ZSTD_LIBS) $(NBD_LIBS) $(CRITERION_LIBS)
check_PROGRAMS += tests/unit/test_config tests/unit/test_db tests/unit/test_agentlink tests/unit/test_steps \
	tests/unit/test_control tests/unit/test_diskloan tests/unit/test_desktop
TESTS += tests/unit/test_config tests/unit/test_db tests/unit/test_agentlink tests/unit/test_steps tests/unit/test_control \
	tests/unit/test_diskloan tests/unit/test_desktop
tests_unit_test_desktop_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(UV_CFLAGS)
tests_unit_test_desktop_LDADD = $(BROKER_TEST_LIBS)
tests_unit_test_diskloan_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(UV_CFLAGS)
tests_unit_test_diskloan_LDADD = $(BROKER_TEST_LIBS)
tests_unit_test_control_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(UV_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_control_LDADD = $(BROKER_TEST_LIBS)
tests_unit_test_steps_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(UV_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_steps_LDADD = $(BROKER_TEST_LIBS)
tests_unit_test_config_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_config_LDADD = common/libslatecommon.a $(JSONC_LIBS) $(CRITERION_LIBS)
tests_unit_test_db_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_db_LDADD = $(BROKER_TEST_LIBS)
tests_unit_test_agentlink_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(UV_CFLAGS)
tests_unit_test_agentlink_LDADD = $(BROKER_TEST_LIBS)

# Integration tests: a real slated, real QEMU (KVM or TCG) booting the tiny test guest.
TESTS += tests/integration/publish.sh tests/integration/pool.sh tests/integration/erasure.sh tests/integration/spawn-failure.sh tests/integration/state-files.sh tests/integration/preauth-sources.sh tests/integration/auth-timeout.sh \
	tests/integration/image-sandbox.sh tests/integration/session-sandbox.sh tests/integration/session-spares.sh tests/integration/logon-screen.sh \
	tests/integration/clone.sh
EXTRA_DIST += tests/integration/logon-screen.sh tests/integration/clone.sh
# A stand-in slate-session for the logon screen's PAM conversation through the real slated.
check_PROGRAMS += tests/integration/ipc-session
tests_integration_ipc_session_LDADD = common/libslatecommon.a
EXTRA_DIST += tests/integration/lib.sh tests/integration/publish.sh tests/integration/pool.sh tests/integration/spawn-failure.sh tests/integration/state-files.sh tests/integration/preauth-sources.sh tests/integration/auth-timeout.sh tests/integration/session-sandbox.sh tests/integration/session-spares.sh \
	tests/integration/erasure.sh tests/integration/image-sandbox.sh

# The host checks (swap in clear) against a made-up sysfs.
check_PROGRAMS += tests/unit/test_hostcheck
TESTS += tests/unit/test_hostcheck
tests_unit_test_hostcheck_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_hostcheck_LDADD = $(BROKER_TEST_LIBS)

# The PAM conversation relay between a logon thread and the loop.
check_PROGRAMS += tests/unit/test_prompter
TESTS += tests/unit/test_prompter
tests_unit_test_prompter_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(UV_CFLAGS)
tests_unit_test_prompter_LDADD = $(BROKER_TEST_LIBS)

# PAM, through pam_wrapper (test_auth.sh sets it up, then runs the Criterion binary).
check_PROGRAMS += tests/unit/test_auth
TESTS += tests/unit/test_auth.sh
EXTRA_DIST += tests/unit/test_auth.sh
tests_unit_test_auth_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_auth_LDADD = $(BROKER_TEST_LIBS)
# A test-only PAM account module (expired password, expired account, denied), loaded by absolute
# path from the tests' pam_wrapper service files; built with test_auth and for make check.
EXTRA_tests_unit_test_auth_DEPENDENCIES = tests/pam/pam_expired.so
check_DATA = tests/pam/pam_expired.so
EXTRA_DIST += tests/pam/pam_expired.c
CLEANFILES += tests/pam/pam_expired.so
tests/pam/pam_expired.so: $(srcdir)/tests/pam/pam_expired.c
	@mkdir -p tests/pam
	$(AM_V_CCLD)$(CC) $(AM_CFLAGS) $(CFLAGS) -shared -fPIC -o $@ $(srcdir)/tests/pam/pam_expired.c $(PAM_LIBS)

# IPC codec: unit tests and the fuzz target's corpus replay.
check_PROGRAMS += tests/unit/test_ipc tests/fuzz/fuzz_ipc
TESTS += tests/unit/test_ipc tests/fuzz/fuzz_ipc
tests_unit_test_ipc_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_ipc_LDADD = common/libslatecommon.a $(CRITERION_LIBS)
tests_fuzz_fuzz_ipc_SOURCES = tests/fuzz/fuzz_ipc.c tests/fuzz/driver.c
tests_fuzz_fuzz_ipc_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME=\"ipc\"
tests_fuzz_fuzz_ipc_LDADD = common/libslatecommon.a
EXTRA_DIST += tests/fuzz/corpus/ipc
# `make fuzz-ipc-run FUZZ_TIME=120`: a libFuzzer campaign on a scratch copy of the corpus.
FUZZ_TARGETS += ipc
tests/fuzz/fuzz-ipc-libfuzzer: $(srcdir)/tests/fuzz/fuzz_ipc.c $(srcdir)/common/ipc.c $(srcdir)/common/fdpass.c $(srcdir)/common/frame.c \
	$(srcdir)/common/reader.c $(srcdir)/common/util.c $(srcdir)/common/ipc.h

# What slated signs for a session's TLS handshake (common/keysign.c): corpus replay, and
# `make fuzz-keysign-run FUZZ_TIME=120`.
check_PROGRAMS += tests/fuzz/fuzz_keysign
TESTS += tests/fuzz/fuzz_keysign
tests_fuzz_fuzz_keysign_SOURCES = tests/fuzz/fuzz_keysign.c tests/fuzz/driver.c
tests_fuzz_fuzz_keysign_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME=\"keysign\"
tests_fuzz_fuzz_keysign_LDADD = common/libslatecommon.a $(OPENSSL_LIBS)
EXTRA_DIST += tests/fuzz/corpus/keysign
FUZZ_TARGETS += keysign
tests/fuzz/fuzz-keysign-libfuzzer: $(srcdir)/tests/fuzz/fuzz_keysign.c $(srcdir)/common/keysign.c $(srcdir)/common/keysign.h
FUZZ_keysign_FLAGS = $(OPENSSL_LIBS)

# Control API request parser: fuzz target (corpus replay in make check).
check_PROGRAMS += tests/fuzz/fuzz_control
TESTS += tests/fuzz/fuzz_control
tests_fuzz_fuzz_control_SOURCES = tests/fuzz/fuzz_control.c tests/fuzz/driver.c
tests_fuzz_fuzz_control_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME=\"control\"
tests_fuzz_fuzz_control_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(JSONC_CFLAGS)
tests_fuzz_fuzz_control_LDADD = $(BROKER_TEST_LIBS)
EXTRA_DIST += tests/fuzz/corpus/control
FUZZ_TARGETS += control
tests/fuzz/fuzz-control-libfuzzer: $(srcdir)/tests/fuzz/fuzz_control.c $(srcdir)/broker/control.c $(srcdir)/broker/db.c \
	$(srcdir)/common/linebuf.c $(srcdir)/common/jsonx.c $(srcdir)/common/log.c $(srcdir)/common/util.c
FUZZ_control_FLAGS = $(UV_CFLAGS) $(JSONC_CFLAGS) $(UV_LIBS) $(JSONC_LIBS) $(SQLITE_LIBS)

# slate.conf parser: the fuzz target's corpus replay, and `make fuzz-config-run FUZZ_TIME=120`.
check_PROGRAMS += tests/fuzz/fuzz_config
TESTS += tests/fuzz/fuzz_config
tests_fuzz_fuzz_config_SOURCES = tests/fuzz/fuzz_config.c tests/fuzz/driver.c
tests_fuzz_fuzz_config_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME=\"config\"
tests_fuzz_fuzz_config_LDADD = common/libslatecommon.a
EXTRA_DIST += tests/fuzz/corpus/config
FUZZ_TARGETS += config
tests/fuzz/fuzz-config-libfuzzer: $(srcdir)/tests/fuzz/fuzz_config.c $(srcdir)/common/config.c $(srcdir)/common/util.c \
	$(srcdir)/common/log.c $(srcdir)/common/config.h
