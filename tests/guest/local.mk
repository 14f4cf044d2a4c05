# Tiny test guest (tests/guest/README.md): Debian kernel as vmlinux, busybox initramfs, ext4 disk
# with the static slate-agent. `make guest` builds it into tests/guest/out/; quick when up to date.
GUEST_OUT = $(abs_top_builddir)/tests/guest/out
GUEST_CACHE = $(abs_top_builddir)/tests/guest/cache
GUEST_DEPS = $(srcdir)/tests/guest/build.sh $(srcdir)/tests/guest/init.sh $(srcdir)/tests/guest/rootinit.sh \
	agent/slate-agent

$(GUEST_OUT)/.stamp: $(GUEST_DEPS)
	$(AM_V_GEN)SLATE_AGENT=$(abs_top_builddir)/agent/slate-agent \
		$(SHELL) $(srcdir)/tests/guest/build.sh $(GUEST_OUT) $(GUEST_CACHE)
	@touch $@
guest: $(GUEST_OUT)/.stamp
guest-clean:
	rm -rf $(GUEST_OUT)
.PHONY: guest guest-clean
EXTRA_DIST += tests/guest/build.sh tests/guest/init.sh tests/guest/rootinit.sh tests/guest/README.md \
	tests/guest/agent-check.py
