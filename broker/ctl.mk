# The control API's client library: every front end links it (slatectl; slate-web next).
noinst_LIBRARIES += broker/libslatecontrolclient.a
broker_libslatecontrolclient_a_SOURCES = broker/control_client.c broker/control_client.h
broker_libslatecontrolclient_a_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)

# slatectl: the admin CLI, a client of slated's control socket (docs/control-api.md).
# Everything but main() is in libslatectl.a, so the unit test links the same code.
noinst_LIBRARIES += broker/libslatectl.a
broker_libslatectl_a_SOURCES = \
	broker/ctl_client.c broker/ctl_client.h broker/ctl_format.c broker/ctl_format.h \
	broker/ctl_args.c broker/ctl_args.h broker/ctl_cmds.c broker/ctl_cmds.h \
	broker/ctl_cmds_status.c broker/ctl_cmds_image.c broker/ctl_cmds_pool.c broker/ctl_cmds_desktop.c \
	broker/ctl_cmds_app.c broker/ctl_cmds_store.c
broker_libslatectl_a_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)

sbin_PROGRAMS += broker/slatectl
broker_slatectl_SOURCES = broker/slatectl.c
broker_slatectl_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
broker_slatectl_LDADD = broker/libslatectl.a broker/libslatecontrolclient.a common/libslatecommon.a $(JSONC_LIBS)

check_PROGRAMS += tests/unit/test_slatectl
TESTS += tests/unit/test_slatectl
tests_unit_test_slatectl_SOURCES = tests/unit/test_slatectl.c
tests_unit_test_slatectl_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_slatectl_LDADD = broker/libslatectl.a broker/libslatecontrolclient.a common/libslatecommon.a \
	$(JSONC_LIBS) $(CRITERION_LIBS)
