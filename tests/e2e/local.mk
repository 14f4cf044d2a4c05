# End-to-end tests: real RDP clients against a real server.
# rdp-client is the headless FreeRDP client the e2e scripts drive; it is built for
# `make check` only, never installed. FREERDP_LIBS lacks freerdp-client2 until
# configure checks it, hence the explicit.
check_PROGRAMS += tests/e2e/rdp-client
tests_e2e_rdp_client_SOURCES = tests/e2e/rdp-client.c
tests_e2e_rdp_client_CFLAGS = $(AM_CFLAGS) $(FREERDP_CFLAGS) -pthread
tests_e2e_rdp_client_LDADD = $(FREERDP_LIBS) -lpthread
EXTRA_DIST += tests/e2e/xfreerdp-smoke.sh tests/e2e/README.md
