noinst_LIBRARIES += common/libslatecommon.a
# spawn (with sandbox), linebuf, username: libc only, so the static slate-agent links them from this archive too.
common_libslatecommon_a_SOURCES = \
	common/cleanup.h common/log.c common/log.h common/util.c common/util.h \
	common/reader.c common/reader.h common/frame.c common/frame.h common/config.c common/config.h \
	common/jsonx.c common/jsonx.h common/ipc.c common/ipc.h common/keysign.c common/keysign.h \
	common/spawn.c common/spawn.h common/sandbox.c common/sandbox.h common/open_as.c common/open_as.h common/fdpass.c common/fdpass.h common/netsrc.c common/netsrc.h common/linebuf.c common/linebuf.h common/permit.c common/permit.h \
	common/username.c common/username.h common/idrange.c common/idrange.h
common_libslatecommon_a_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(OPENSSL_CFLAGS)

# Unit tests of common/'s libc-only helpers.
check_PROGRAMS += tests/unit/test_spawn tests/unit/test_linebuf tests/unit/test_permit tests/unit/test_username \
	tests/unit/test_util tests/unit/test_idrange
TESTS += tests/unit/test_spawn tests/unit/test_linebuf tests/unit/test_permit tests/unit/test_username tests/unit/test_util \
	tests/unit/test_idrange
tests_unit_test_idrange_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_idrange_LDADD = common/libslatecommon.a $(CRITERION_LIBS)
tests_unit_test_spawn_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_spawn_LDADD = common/libslatecommon.a $(CRITERION_LIBS)
tests_unit_test_linebuf_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_linebuf_LDADD = common/libslatecommon.a $(CRITERION_LIBS)
tests_unit_test_permit_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_permit_LDADD = common/libslatecommon.a $(CRITERION_LIBS)
tests_unit_test_username_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_username_LDADD = common/libslatecommon.a $(CRITERION_LIBS)
tests_unit_test_util_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_util_LDADD = common/libslatecommon.a $(CRITERION_LIBS)

# The capped line reader takes QEMU's, the agent's script's and control clients' bytes: its fuzz
# target's corpus replay here, `make fuzz-linebuf-run FUZZ_TIME=120` for a campaign.
check_PROGRAMS += tests/fuzz/fuzz_linebuf
TESTS += tests/fuzz/fuzz_linebuf
tests_fuzz_fuzz_linebuf_SOURCES = tests/fuzz/fuzz_linebuf.c tests/fuzz/driver.c
tests_fuzz_fuzz_linebuf_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME=\"linebuf\"
tests_fuzz_fuzz_linebuf_LDADD = common/libslatecommon.a
EXTRA_DIST += tests/fuzz/corpus/linebuf
FUZZ_TARGETS += linebuf
tests/fuzz/fuzz-linebuf-libfuzzer: $(srcdir)/tests/fuzz/fuzz_linebuf.c $(srcdir)/common/linebuf.c \
	$(srcdir)/common/linebuf.h
