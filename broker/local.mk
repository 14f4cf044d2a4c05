# slated (the broker daemon) and its library; slatectl and the hypervisor driver have their own fragments.
include $(srcdir)/broker/hv.mk
include $(srcdir)/broker/ctl.mk

noinst_LIBRARIES += broker/libslatebroker.a
broker_libslatebroker_a_SOURCES = \
	broker/broker.h broker/db.c broker/db.h broker/agentlink.c broker/agentlink.h \
	broker/control.c broker/control.h broker/desktop.c broker/desktop.h broker/template.c broker/template.h broker/pool.c broker/pool.h \
	broker/api.c broker/api.h broker/api_image.c broker/api_image_gc.c broker/api_session.c \
	broker/api_app.c broker/api_app.h broker/api_app_capture.c broker/api_profile.c \
	broker/progress.c broker/progress.h \
	broker/reconcile.c broker/reconcile.h broker/hv.h broker/auth.c broker/auth.h broker/tls.c broker/tls.h \
	broker/listener.c broker/listener.h broker/conn.c broker/conn.h broker/session.c broker/session.h \
	broker/steps.c broker/steps.h broker/logon.c broker/logon.h broker/logoff.c broker/logoff.h \
	broker/fault.c broker/fault.h broker/diskloan.c broker/diskloan.h broker/userdisks.c broker/userdisks.h broker/backup.c broker/backup.h broker/workq.c broker/workq.h broker/prompter.c broker/prompter.h broker/api_store.c \
	broker/hostcheck.c broker/hostcheck.h
broker_libslatebroker_a_SOURCES += broker/logon_progress.c broker/logon_progress.h
broker_libslatebroker_a_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(JSONC_CFLAGS) $(SQLITE_CFLAGS) $(PAM_CFLAGS) $(OPENSSL_CFLAGS) $(GUESTFS_CFLAGS)

sbin_PROGRAMS += broker/slated
broker_slated_SOURCES = broker/slated.c
broker_slated_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(JSONC_CFLAGS)
broker_slated_LDADD = broker/libslatebroker.a broker/libslatehv.a streaming/libslatestreaming.a imaging/libslateimaging.a \
	agent/libslateproto.a common/libslatecommon.a \
	$(UV_LIBS) $(JSONC_LIBS) $(SQLITE_LIBS) $(OPENSSL_LIBS) $(PAM_LIBS) $(GUESTFS_LIBS) $(ZSTD_LIBS) $(NBD_LIBS)

# The PAM service file: installed unless one exists (an administrator's stack wins).
EXTRA_DIST += docs/pam.d/slate docs/pam.d/slate-otp
install-data-local: install-pam
install-pam:
	@if [ -e "$(DESTDIR)$(sysconfdir)/pam.d/slate" ]; then \
		echo "keeping existing $(DESTDIR)$(sysconfdir)/pam.d/slate"; \
	else \
		$(MKDIR_P) "$(DESTDIR)$(sysconfdir)/pam.d" && \
		$(INSTALL_DATA) $(srcdir)/docs/pam.d/slate "$(DESTDIR)$(sysconfdir)/pam.d/slate"; \
	fi
.PHONY: install-pam
