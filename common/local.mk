noinst_LIBRARIES += common/libslatecommon.a
# spawn, linebuf, username: libc only, so the static slate-agent links them from this archive too.
common_libslatecommon_a_SOURCES = \
	common/cleanup.h common/log.c common/log.h common/util.c common/util.h \
	common/reader.c common/reader.h common/frame.c common/frame.h common/config.c common/config.h \
	common/jsonx.c common/jsonx.h common/ipc.c common/ipc.h \
	common/spawn.c common/spawn.h
common_libslatecommon_a_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)

# Unit tests of common/'s libc-only helpers.
check_PROGRAMS += tests/unit/test_spawn
TESTS += tests/unit/test_spawn
tests_unit_test_spawn_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_spawn_LDADD = common/libslatecommon.a $(CRITERION_LIBS)
