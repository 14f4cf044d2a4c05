# The desktop console library: the VNC side any front end reuses (no FreeRDP: its CFLAGS lack
# FreeRDP's include path, so an #include <freerdp/...> here does not build).
noinst_LIBRARIES += rdp/libslateconsole.a
rdp_libslateconsole_a_SOURCES = rdp/console.c rdp/console_keymap.c rdp/console.h
rdp_libslateconsole_a_CFLAGS = $(AM_CFLAGS) $(VNCCLIENT_CFLAGS)

# slate-session: the per-connection RDP front end on the console library, the only FreeRDP user.
pkglibexec_PROGRAMS += rdp/slate-session
rdp_slate_session_SOURCES = rdp/slate-session.c rdp/rdpconn.c rdp/rdpconn_frames.c rdp/rdpconn_int.h rdp/rdpconn_alarm.c \
	rdp/rdpconn.h rdp/peer.c rdp/peer.h \
	rdp/keyless.c rdp/keyless.h \
	rdp/encoder.c rdp/encoder.h rdp/input.c rdp/input.h rdp/sandbox.c rdp/sandbox.h \
	rdp/screen.c rdp/screen.h rdp/form.c rdp/form.h rdp/screens.c rdp/screens.h \
	rdp/gfx.c rdp/gfx.h rdp/h264.c rdp/h264.h
rdp_slate_session_CFLAGS = $(AM_CFLAGS) $(FREERDP_CFLAGS) $(VNCCLIENT_CFLAGS) $(SECCOMP_CFLAGS) $(OPENSSL_CFLAGS) \
	$(CAIRO_CFLAGS) $(X264_CFLAGS)
rdp_slate_session_LDADD = rdp/libslateconsole.a common/libslatecommon.a $(FREERDP_LIBS) $(VNCCLIENT_LIBS) \
	$(JSONC_LIBS) $(OPENSSL_LIBS) $(SECCOMP_LIBS) $(CAIRO_LIBS) $(X264_LIBS) -lm

# Development harness: plays slated's part for one connection (tests/e2e, benchmarks).
check_PROGRAMS += tests/e2e/session-harness
tests_e2e_session_harness_SOURCES = tests/e2e/session-harness.c
tests_e2e_session_harness_LDADD = common/libslatecommon.a $(JSONC_LIBS) $(OPENSSL_LIBS)

check_PROGRAMS += tests/unit/test_rdp_console
TESTS += tests/unit/test_rdp_console
tests_unit_test_rdp_console_SOURCES = tests/unit/test_rdp_console.c
tests_unit_test_rdp_console_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(VNCCLIENT_CFLAGS)
tests_unit_test_rdp_console_LDADD = rdp/libslateconsole.a common/libslatecommon.a $(CRITERION_LIBS) \
	$(VNCCLIENT_LIBS)

check_PROGRAMS += tests/unit/test_rdp_input
TESTS += tests/unit/test_rdp_input
tests_unit_test_rdp_input_SOURCES = tests/unit/test_rdp_input.c rdp/input.c rdp/input.h
tests_unit_test_rdp_input_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(VNCCLIENT_CFLAGS)
tests_unit_test_rdp_input_LDADD = rdp/libslateconsole.a $(CRITERION_LIBS)

# The logon screen's fields and keys as text (pure), and the screens' drawing and damage.
check_PROGRAMS += tests/unit/test_rdp_form
TESTS += tests/unit/test_rdp_form
tests_unit_test_rdp_form_SOURCES = tests/unit/test_rdp_form.c rdp/form.c rdp/form.h rdp/input.c rdp/input.h
tests_unit_test_rdp_form_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(VNCCLIENT_CFLAGS)
tests_unit_test_rdp_form_LDADD = rdp/libslateconsole.a common/libslatecommon.a $(CRITERION_LIBS) $(JSONC_LIBS) $(OPENSSL_LIBS)

check_PROGRAMS += tests/unit/test_rdp_screen
TESTS += tests/unit/test_rdp_screen
tests_unit_test_rdp_screen_SOURCES = tests/unit/test_rdp_screen.c rdp/screen.c rdp/screen.h
tests_unit_test_rdp_screen_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(CAIRO_CFLAGS)
tests_unit_test_rdp_screen_LDADD = common/libslatecommon.a $(CRITERION_LIBS) $(CAIRO_LIBS) $(JSONC_LIBS) $(OPENSSL_LIBS) -lm

# The screens from a connection's side: what Enter hands over, frame pacing.
check_PROGRAMS += tests/unit/test_rdp_screens
TESTS += tests/unit/test_rdp_screens
tests_unit_test_rdp_screens_SOURCES = tests/unit/test_rdp_screens.c rdp/screens.c rdp/screens.h rdp/screen.c \
	rdp/screen.h rdp/form.c rdp/form.h rdp/input.c rdp/input.h
tests_unit_test_rdp_screens_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(CAIRO_CFLAGS) $(VNCCLIENT_CFLAGS)
tests_unit_test_rdp_screens_LDADD = rdp/libslateconsole.a common/libslatecommon.a $(CRITERION_LIBS) $(CAIRO_LIBS) \
	$(JSONC_LIBS) $(OPENSSL_LIBS) -lm

check_PROGRAMS += tests/unit/test_rdp_encoder
TESTS += tests/unit/test_rdp_encoder
tests_unit_test_rdp_encoder_SOURCES = tests/unit/test_rdp_encoder.c rdp/encoder.c rdp/encoder.h rdp/gfx.c rdp/gfx.h \
	rdp/h264.c rdp/h264.h
tests_unit_test_rdp_encoder_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(FREERDP_CFLAGS) $(X264_CFLAGS)
tests_unit_test_rdp_encoder_LDADD = common/libslatecommon.a $(CRITERION_LIBS) $(FREERDP_LIBS) $(X264_LIBS)

# The graphics pipeline's capability choice, and the H.264 encoder against FreeRDP's decoder.
check_PROGRAMS += tests/unit/test_rdp_h264
TESTS += tests/unit/test_rdp_h264
tests_unit_test_rdp_h264_SOURCES = tests/unit/test_rdp_h264.c rdp/gfx.c rdp/gfx.h rdp/h264.c rdp/h264.h
tests_unit_test_rdp_h264_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(FREERDP_CFLAGS) $(X264_CFLAGS)
tests_unit_test_rdp_h264_LDADD = common/libslatecommon.a $(CRITERION_LIBS) $(FREERDP_LIBS) $(X264_LIBS) -lm

# The graphics pipeline's capability choice from a client's sets: corpus replay, and
# `make fuzz-gfx-caps-run FUZZ_TIME=120`.
check_PROGRAMS += tests/fuzz/fuzz_gfx_caps
TESTS += tests/fuzz/fuzz_gfx_caps
tests_fuzz_fuzz_gfx_caps_SOURCES = tests/fuzz/fuzz_gfx_caps.c tests/fuzz/driver.c rdp/gfx.c rdp/gfx.h
tests_fuzz_fuzz_gfx_caps_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME=\"gfx_caps\"
tests_fuzz_fuzz_gfx_caps_CFLAGS = $(AM_CFLAGS) $(FREERDP_CFLAGS)
tests_fuzz_fuzz_gfx_caps_LDADD = common/libslatecommon.a $(FREERDP_LIBS)
EXTRA_DIST += tests/fuzz/corpus/gfx_caps
FUZZ_TARGETS += gfx-caps
tests/fuzz/fuzz-gfx-caps-libfuzzer: $(srcdir)/tests/fuzz/fuzz_gfx_caps.c $(srcdir)/rdp/gfx.c $(srcdir)/common/log.c \
	$(srcdir)/common/util.c $(srcdir)/rdp/gfx.h
FUZZ_gfx_caps_FLAGS = $(FREERDP_CFLAGS) $(FREERDP_LIBS)

# The session's seccomp filter, in a forked child: allowed calls work, others fail or kill.
check_PROGRAMS += tests/unit/test_sandbox
TESTS += tests/unit/test_sandbox
tests_unit_test_sandbox_SOURCES = tests/unit/test_sandbox.c rdp/sandbox.c rdp/sandbox.h
tests_unit_test_sandbox_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(SECCOMP_CFLAGS)
tests_unit_test_sandbox_LDADD = common/libslatecommon.a $(CRITERION_LIBS) $(SECCOMP_LIBS)

# The keyless TLS key and slated's signing checks, through real libssl handshakes.
check_PROGRAMS += tests/unit/test_keyless
TESTS += tests/unit/test_keyless
tests_unit_test_keyless_SOURCES = tests/unit/test_keyless.c rdp/keyless.c rdp/keyless.h
tests_unit_test_keyless_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(OPENSSL_CFLAGS)
tests_unit_test_keyless_LDADD = common/libslatecommon.a $(CRITERION_LIBS) $(OPENSSL_LIBS)

# The logon screen's keys and fields take the client's input: a fuzz target's corpus replay here,
# `make fuzz-logon-form-run FUZZ_TIME=120` for a campaign.
check_PROGRAMS += tests/fuzz/fuzz_logon_form
TESTS += tests/fuzz/fuzz_logon_form
tests_fuzz_fuzz_logon_form_SOURCES = tests/fuzz/fuzz_logon_form.c tests/fuzz/driver.c rdp/form.c rdp/input.c
tests_fuzz_fuzz_logon_form_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME=\"logon_form\"
tests_fuzz_fuzz_logon_form_CFLAGS = $(AM_CFLAGS) $(VNCCLIENT_CFLAGS)
tests_fuzz_fuzz_logon_form_LDADD = rdp/libslateconsole.a common/libslatecommon.a $(JSONC_LIBS) $(OPENSSL_LIBS)
EXTRA_DIST += tests/fuzz/corpus/logon_form
FUZZ_TARGETS += logon-form
tests/fuzz/fuzz-logon-form-libfuzzer: $(srcdir)/tests/fuzz/fuzz_logon_form.c $(srcdir)/rdp/form.c $(srcdir)/rdp/input.c \
	$(srcdir)/rdp/console_keymap.c $(srcdir)/common/util.c $(srcdir)/common/log.c $(srcdir)/rdp/form.h $(srcdir)/rdp/input.h
