# Hypervisor driver: QMP client, QEMU driver, accelerator probe (included from broker/local.mk).
noinst_LIBRARIES += broker/libslatehv.a
broker_libslatehv_a_SOURCES = broker/hv.h broker/hv_qmp.c broker/hv_qmp.h broker/hv_qemu.c broker/hv_qemu.h broker/hv_qemu_disk.c broker/hv_qemu_migrate.c \
	broker/hv_probe.c
broker_libslatehv_a_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(JSONC_CFLAGS)

HV_TEST_LIBS = broker/libslatehv.a common/libslatecommon.a $(UV_LIBS) $(JSONC_LIBS)

check_PROGRAMS += tests/unit/test_hv_qmp tests/unit/test_hv_qemu tests/fuzz/fuzz_hv_qmp
TESTS += tests/unit/test_hv_qmp tests/unit/test_hv_qemu tests/fuzz/fuzz_hv_qmp
tests_unit_test_hv_qmp_SOURCES = tests/unit/test_hv_qmp.c
tests_unit_test_hv_qmp_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(UV_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_hv_qmp_LDADD = $(HV_TEST_LIBS) $(CRITERION_LIBS)
tests_unit_test_hv_qemu_SOURCES = tests/unit/test_hv_qemu.c
tests_unit_test_hv_qemu_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(UV_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_hv_qemu_LDADD = $(HV_TEST_LIBS) $(CRITERION_LIBS)
tests_fuzz_fuzz_hv_qmp_SOURCES = tests/fuzz/fuzz_hv_qmp.c tests/fuzz/driver.c
tests_fuzz_fuzz_hv_qmp_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(JSONC_CFLAGS) -DFUZZ_NAME=\"hv_qmp\"
tests_fuzz_fuzz_hv_qmp_LDADD = $(HV_TEST_LIBS)
EXTRA_DIST += tests/fuzz/corpus/hv_qmp
FUZZ_TARGETS += hv-qmp
tests/fuzz/fuzz-hv-qmp-libfuzzer: $(srcdir)/tests/fuzz/fuzz_hv_qmp.c $(srcdir)/broker/hv_qmp.c \
	$(srcdir)/common/linebuf.c $(srcdir)/common/jsonx.c $(srcdir)/common/log.c $(srcdir)/common/util.c
FUZZ_hv_qmp_FLAGS = $(UV_CFLAGS) $(JSONC_CFLAGS) $(UV_LIBS) $(JSONC_LIBS)
