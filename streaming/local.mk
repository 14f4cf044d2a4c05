# streaming: app layers (images + manifests), entitlements, profile disks and their keys, and
# the block store their backups go to.
# No SQLite (the broker keeps the catalogue) and no QEMU protocol (the broker's driver attaches).
noinst_LIBRARIES += streaming/libslatestreaming.a
streaming_libslatestreaming_a_SOURCES = \
	streaming/layer.c streaming/layer.h streaming/profile.c streaming/profile.h \
	streaming/entitle.c streaming/entitle.h streaming/pack.c streaming/pack.h streaming/store.c streaming/store.h streaming/store_int.h streaming/store_maint.c streaming/store_restore.c streaming/store_versions.c streaming/sftp.c streaming/sftp.h \
	streaming/profile_read.c streaming/profile_read.h
streaming_libslatestreaming_a_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(OPENSSL_CFLAGS) $(ZSTD_CFLAGS) $(NBD_CFLAGS)
STREAMING_LIBS = streaming/libslatestreaming.a imaging/libslateimaging.a common/libslatecommon.a \
	$(OPENSSL_LIBS) $(JSONC_LIBS) $(GUESTFS_LIBS) $(ZSTD_LIBS) $(NBD_LIBS)

check_PROGRAMS += tests/unit/test_streaming
TESTS += tests/unit/test_streaming
tests_unit_test_streaming_SOURCES = tests/unit/test_streaming.c
tests_unit_test_streaming_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_streaming_LDADD = $(STREAMING_LIBS) $(CRITERION_LIBS)

check_PROGRAMS += tests/unit/test_store
TESTS += tests/unit/test_store
tests_unit_test_store_SOURCES = tests/unit/test_store.c
tests_unit_test_store_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS)
tests_unit_test_store_LDADD = $(STREAMING_LIBS) $(CRITERION_LIBS)

# The block store's pack and version formats (a store's files are input like any other).
check_PROGRAMS += tests/fuzz/fuzz_store_pack
TESTS += tests/fuzz/fuzz_store_pack
tests_fuzz_fuzz_store_pack_SOURCES = tests/fuzz/fuzz_store_pack.c tests/fuzz/driver.c
tests_fuzz_fuzz_store_pack_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME=\"store_pack\"
tests_fuzz_fuzz_store_pack_LDADD = $(STREAMING_LIBS)
EXTRA_DIST += tests/fuzz/corpus/store_pack
FUZZ_TARGETS += store-pack
tests/fuzz/fuzz-store-pack-libfuzzer: $(srcdir)/tests/fuzz/fuzz_store_pack.c $(srcdir)/streaming/pack.c \
	$(srcdir)/common/reader.c $(srcdir)/common/util.c $(srcdir)/common/log.c $(srcdir)/streaming/pack.h
FUZZ_store_pack_FLAGS =

# What a replica host says back through sftp, and replicate destinations.
check_PROGRAMS += tests/fuzz/fuzz_sftp_listing
TESTS += tests/fuzz/fuzz_sftp_listing
tests_fuzz_fuzz_sftp_listing_SOURCES = tests/fuzz/fuzz_sftp_listing.c tests/fuzz/driver.c
tests_fuzz_fuzz_sftp_listing_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME=\"sftp_listing\"
tests_fuzz_fuzz_sftp_listing_LDADD = $(STREAMING_LIBS)
EXTRA_DIST += tests/fuzz/corpus/sftp_listing
FUZZ_TARGETS += sftp-listing
tests/fuzz/fuzz-sftp-listing-libfuzzer: $(srcdir)/tests/fuzz/fuzz_sftp_listing.c $(srcdir)/streaming/sftp.c \
	$(srcdir)/common/spawn.c $(srcdir)/common/util.c $(srcdir)/common/log.c $(srcdir)/streaming/sftp.h
FUZZ_sftp_listing_FLAGS =

# The layer manifest parser (hostile: files in the catalogue): corpus replay under make check.
check_PROGRAMS += tests/fuzz/fuzz_layer_manifest
TESTS += tests/fuzz/fuzz_layer_manifest
tests_fuzz_fuzz_layer_manifest_SOURCES = tests/fuzz/fuzz_layer_manifest.c tests/fuzz/driver.c
tests_fuzz_fuzz_layer_manifest_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME=\"layer_manifest\"
tests_fuzz_fuzz_layer_manifest_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
tests_fuzz_fuzz_layer_manifest_LDADD = $(STREAMING_LIBS)
EXTRA_DIST += tests/fuzz/corpus/layer_manifest
FUZZ_TARGETS += layer-manifest
tests/fuzz/fuzz-layer-manifest-libfuzzer: $(srcdir)/tests/fuzz/fuzz_layer_manifest.c $(srcdir)/streaming/layer.c \
	$(srcdir)/imaging/image.c $(srcdir)/imaging/qemu_img.c $(srcdir)/common/spawn.c $(srcdir)/common/jsonx.c \
	$(srcdir)/common/util.c $(srcdir)/common/log.c $(srcdir)/streaming/layer.h
FUZZ_layer_manifest_FLAGS = $(JSONC_CFLAGS) $(JSONC_LIBS) $(OPENSSL_LIBS)
