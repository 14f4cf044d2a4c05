# Wire protocol shared by slated and slate-agent; the agent itself links only libc (static).
noinst_LIBRARIES += agent/libslateproto.a
agent_libslateproto_a_SOURCES = agent/proto.c agent/proto.h common/reader.c common/reader.h common/frame.c common/frame.h

# The in-guest agent: static, libc + the protocol only, so it runs in any guest. Its core is a
# library (agent/agent.h) so the test guest's agent (tests/guest/local.mk) is the same code plus
# the desktop it draws; that desktop is never linked in here.
noinst_LIBRARIES += agent/libslateagent.a
agent_libslateagent_a_SOURCES = agent/slate-agent.c agent/script.c agent/io.c agent/disks.c agent/identity.c agent/loopdev.c \
	agent/loopdev.h agent/agent.h agent/agent_int.h
pkglibexec_PROGRAMS += agent/slate-agent
agent_slate_agent_SOURCES = agent/main.c agent/agent.h
agent_slate_agent_LDADD = agent/libslateagent.a agent/libslateproto.a common/libslatecommon.a
agent_slate_agent_LDFLAGS = -static
# The session script for real desktops (slate-agent --session-script; contract at its top). The
# images carry it as /usr/libexec/slate/session (imaging/recipes/debian-desktop, publish), and
# the desktop recipe its ready hook as /usr/libexec/slate/session-ready (contract at its top).
dist_pkglibexec_SCRIPTS = agent/session-script agent/session-ready

# Protocol unit tests and the fuzz target's corpus replay (make check).
check_PROGRAMS += tests/unit/test_proto tests/fuzz/fuzz_agent_proto
TESTS += tests/unit/test_proto tests/fuzz/fuzz_agent_proto
tests_unit_test_proto_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_proto_LDADD = agent/libslateproto.a $(CRITERION_LIBS)
tests_fuzz_fuzz_agent_proto_SOURCES = tests/fuzz/fuzz_agent_proto.c tests/fuzz/driver.c
tests_fuzz_fuzz_agent_proto_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME=\"agent_proto\"
tests_fuzz_fuzz_agent_proto_LDADD = agent/libslateproto.a common/libslatecommon.a
EXTRA_DIST += tests/fuzz/corpus/agent_proto

# A libFuzzer campaign (tests/local.mk): `make fuzz-agent-proto-run FUZZ_TIME=120`.
FUZZ_TARGETS += agent-proto
tests/fuzz/fuzz-agent-proto-libfuzzer: $(srcdir)/tests/fuzz/fuzz_agent_proto.c $(srcdir)/agent/proto.c \
	$(srcdir)/common/reader.c $(srcdir)/common/frame.c $(srcdir)/agent/proto.h $(srcdir)/common/reader.h
FUZZ_agent_proto_RUN = -max_len=4096
