# Golden image recipes (imaging/recipes/*/README.md). Long and network-bound (Debian mirror):
# never part of `make check`.
#   make desktop-image    Debian 12 + Xfce golden image into imaging/recipes/debian-desktop/out
#   make check-desktop    boots it in a real pool and logs on over RDP (tests/desktop/desktop.sh)
DESKTOP_IMAGE_OUT = $(abs_top_builddir)/imaging/recipes/debian-desktop/out
DESKTOP_IMAGE_CACHE = $(abs_top_builddir)/imaging/recipes/debian-desktop/cache

desktop-image: agent/slate-agent
	SLATE_AGENT=$(abs_top_builddir)/agent/slate-agent SLATE_SESSION_SCRIPT=$(abs_top_srcdir)/agent/session-script \
		$(SHELL) $(srcdir)/imaging/recipes/debian-desktop/build.sh $(DESKTOP_IMAGE_OUT) $(DESKTOP_IMAGE_CACHE)
desktop-image-clean:
	rm -rf $(DESKTOP_IMAGE_OUT)
check-desktop: all tests/e2e/rdp-client desktop-image
	SLATE_BUILDDIR=$(abs_top_builddir) SLATE_SRCDIR=$(abs_top_srcdir) SLATE_DESKTOP_IMAGE=$(DESKTOP_IMAGE_OUT) \
		timeout --kill-after=10 3600 bash $(srcdir)/tests/desktop/desktop.sh
.PHONY: desktop-image desktop-image-clean check-desktop
EXTRA_DIST += imaging/recipes/debian-desktop/build.sh imaging/recipes/debian-desktop/README.md \
	imaging/recipes/debian-desktop/slate-agent.service imaging/recipes/debian-desktop/slate-session-prepare.service \
	imaging/recipes/debian-desktop/xorg-slate.conf \
	tests/desktop/desktop.sh
