# Tiny test guest (tests/guest/README.md): Debian kernel as vmlinux, busybox initramfs, ext4 disk
# with the static slate-agent. `make guest` builds it into tests/guest/out/; quick when up to date.

# The test guest's slate-agent: the production agent's core (agent/libslateagent.a) plus
# --test-desktop, the desktop it draws on /dev/fb0 (desk.c, fbdraw.c). The guest's disk and every
# image the tests publish (slate.conf agent-binary) get this one; installed images never do.
noinst_PROGRAMS += tests/guest/slate-agent-testdesk
tests_guest_slate_agent_testdesk_SOURCES = tests/guest/agent-testdesk.c tests/guest/desk.c tests/guest/desk.h \
	tests/guest/fbdraw.c tests/guest/fbdraw.h
tests_guest_slate_agent_testdesk_LDADD = agent/libslateagent.a agent/libslateproto.a common/libslatecommon.a
tests_guest_slate_agent_testdesk_LDFLAGS = -static

# The test desktop's pure parts (colours) are what the end-to-end tests check pixels against.
check_PROGRAMS += tests/unit/test_desk
TESTS += tests/unit/test_desk
tests_unit_test_desk_SOURCES = tests/unit/test_desk.c tests/guest/desk.c tests/guest/fbdraw.c
tests_unit_test_desk_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_desk_LDADD = common/libslatecommon.a $(CRITERION_LIBS)
GUEST_OUT = $(abs_top_builddir)/tests/guest/out
GUEST_CACHE = $(abs_top_builddir)/tests/guest/cache
GUEST_DEPS = $(srcdir)/tests/guest/build.sh $(srcdir)/tests/guest/init.sh $(srcdir)/tests/guest/rootinit.sh \
	$(srcdir)/tests/guest/session-hook tests/guest/slate-agent-testdesk

$(GUEST_OUT)/.stamp: $(GUEST_DEPS)
	$(AM_V_GEN)SLATE_AGENT=$(abs_top_builddir)/tests/guest/slate-agent-testdesk \
		$(SHELL) $(srcdir)/tests/guest/build.sh $(GUEST_OUT) $(GUEST_CACHE)
	@touch $@
guest: $(GUEST_OUT)/.stamp
guest-clean:
	rm -rf $(GUEST_OUT)
.PHONY: guest guest-clean
EXTRA_DIST += tests/guest/build.sh tests/guest/init.sh tests/guest/rootinit.sh tests/guest/session-hook tests/guest/README.md \
	tests/guest/desk-rgb.sh \
	tests/guest/agent-check.py

# The agent's session disks end to end: the guest under real QEMU, the slot disks (app layers in one
# VMDK, a profile) plugged in through QMP (tests/unit/test_agent_disks.c). Skips (77) without QEMU.
check_PROGRAMS += tests/unit/test_agent_disks
TESTS += tests/unit/test_agent_disks
tests_unit_test_agent_disks_SOURCES = tests/unit/test_agent_disks.c
tests_unit_test_agent_disks_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(UV_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_agent_disks_LDADD = agent/libslateproto.a $(HV_TEST_LIBS) $(CRITERION_LIBS)
