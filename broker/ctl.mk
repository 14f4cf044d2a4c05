# slatectl: the admin CLI, a client of slated's control socket (docs/control-api.md).
sbin_PROGRAMS += broker/slatectl
broker_slatectl_SOURCES = broker/slatectl.c
broker_slatectl_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
broker_slatectl_LDADD = common/libslatecommon.a $(JSONC_LIBS)

check_PROGRAMS += tests/unit/test_slatectl
TESTS += tests/unit/test_slatectl
tests_unit_test_slatectl_SOURCES = tests/unit/test_slatectl.c
tests_unit_test_slatectl_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_slatectl_LDADD = common/libslatecommon.a $(JSONC_LIBS) $(CRITERION_LIBS)
