# slate-session: the per-connection RDP ⇄ VNC bridge, the only FreeRDP user.
pkglibexec_PROGRAMS += rdp/slate-session
rdp_slate_session_SOURCES = rdp/slate-session.c rdp/rdpconn.c rdp/rdpconn.h rdp/peer.c rdp/peer.h \
	rdp/bridge.c rdp/bridge.h rdp/encoder.c rdp/encoder.h rdp/input.c rdp/input.h
rdp_slate_session_CFLAGS = $(AM_CFLAGS) $(FREERDP_CFLAGS) $(VNCCLIENT_CFLAGS)
rdp_slate_session_LDADD = common/libslatecommon.a $(FREERDP_LIBS) $(VNCCLIENT_LIBS) $(JSONC_LIBS) $(OPENSSL_LIBS)

# Development harness: plays slated's part for one connection (tests/e2e, benchmarks).
check_PROGRAMS += tests/e2e/session-harness
tests_e2e_session_harness_SOURCES = tests/e2e/session-harness.c
tests_e2e_session_harness_LDADD = common/libslatecommon.a $(JSONC_LIBS)

check_PROGRAMS += tests/unit/test_rdp_input
TESTS += tests/unit/test_rdp_input
tests_unit_test_rdp_input_SOURCES = tests/unit/test_rdp_input.c rdp/input.c rdp/input.h
tests_unit_test_rdp_input_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(VNCCLIENT_CFLAGS)
tests_unit_test_rdp_input_LDADD = $(CRITERION_LIBS)

check_PROGRAMS += tests/unit/test_rdp_encoder
TESTS += tests/unit/test_rdp_encoder
tests_unit_test_rdp_encoder_SOURCES = tests/unit/test_rdp_encoder.c rdp/encoder.c rdp/encoder.h
tests_unit_test_rdp_encoder_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(FREERDP_CFLAGS)
tests_unit_test_rdp_encoder_LDADD = common/libslatecommon.a $(CRITERION_LIBS) $(FREERDP_LIBS)
