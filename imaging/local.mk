# imaging: golden image files and per-desktop overlays (runs qemu-img; no SQLite here), and the
# publishing pipeline and image diff through libguestfs (the only libguestfs user).
noinst_LIBRARIES += imaging/libslateimaging.a
imaging_libslateimaging_a_SOURCES = \
	imaging/overlay.c imaging/overlay.h imaging/luks.c imaging/luks.h imaging/image.c imaging/image.h \
	imaging/qemu_img.c imaging/qemu_img.h imaging/catalog.c imaging/catalog.h \
	imaging/appliance.h imaging/gfs.c imaging/gfs.h imaging/inspect.c imaging/inspect.h \
	imaging/seal.c imaging/seal.h imaging/agent_install.c imaging/agent_install.h \
	imaging/pack.c imaging/pack.h imaging/publish.c imaging/publish.h \
	imaging/image_diff.c imaging/image_diff.h imaging/capture.c imaging/capture.h \
	imaging/capture_diff.c imaging/capture_diff.h
imaging_libslateimaging_a_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(OPENSSL_CFLAGS) $(GUESTFS_CFLAGS)
IMAGING_LIBS = imaging/libslateimaging.a common/libslatecommon.a $(OPENSSL_LIBS) $(JSONC_LIBS) $(GUESTFS_LIBS)

check_PROGRAMS += tests/unit/test_overlay tests/unit/test_image
TESTS += tests/unit/test_overlay tests/unit/test_image
tests_unit_test_overlay_SOURCES = tests/unit/test_overlay.c tests/unit/qemu_test.c tests/unit/qemu_test.h
tests_unit_test_overlay_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_overlay_LDADD = $(IMAGING_LIBS) $(CRITERION_LIBS)
tests_unit_test_image_SOURCES = tests/unit/test_image.c tests/unit/qemu_test.c tests/unit/qemu_test.h
tests_unit_test_image_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_image_LDADD = $(IMAGING_LIBS) $(CRITERION_LIBS)

# The publishing pipeline against a real libguestfs appliance and the tiny test guest.
TESTS += tests/integration/pipeline.sh
EXTRA_DIST += tests/integration/pipeline.sh

check_PROGRAMS += tests/unit/test_guestfs
TESTS += tests/unit/test_guestfs
tests_unit_test_guestfs_SOURCES = tests/unit/test_guestfs.c
tests_unit_test_guestfs_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_guestfs_LDADD = $(IMAGING_LIBS) $(CRITERION_LIBS)

# App capture: parser/diff unit tests and one real capture into the minimal Debian fixture
# (test_capture.sh builds the fixture once, cached in tests/capture/; skips when it cannot).
check_PROGRAMS += tests/unit/test_capture
# make check runs its pure tests (listings, diff, package names); the whole capture of hello runs in
# tests/e2e/capture.sh through slated. `make check-capture-engine` runs this one's own capture too.
TESTS += tests/unit/test_capture
check-capture-engine: tests/unit/test_capture guest
	SLATE_BUILDDIR=$(abs_top_builddir) SLATE_SRCDIR=$(abs_top_srcdir) bash $(srcdir)/tests/unit/test_capture.sh
.PHONY: check-capture-engine
EXTRA_DIST += tests/unit/test_capture.sh tests/capture/build-debian-min.sh tests/capture/publish-debmin.sh
tests_unit_test_capture_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_capture_LDADD = $(IMAGING_LIBS) $(CRITERION_LIBS)

# `qemu-img info` JSON check (hostile: a published file chooses strings in it): the fuzz target's
# corpus replay under `make check`, and `make fuzz-image-info-run FUZZ_TIME=120` for a campaign.
check_PROGRAMS += tests/fuzz/fuzz_image_info
TESTS += tests/fuzz/fuzz_image_info
tests_fuzz_fuzz_image_info_SOURCES = tests/fuzz/fuzz_image_info.c tests/fuzz/driver.c
tests_fuzz_fuzz_image_info_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME=\"image_info\"
tests_fuzz_fuzz_image_info_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
tests_fuzz_fuzz_image_info_LDADD = $(IMAGING_LIBS)
EXTRA_DIST += tests/fuzz/corpus/image_info
FUZZ_TARGETS += image-info
tests/fuzz/fuzz-image-info-libfuzzer: $(srcdir)/tests/fuzz/fuzz_image_info.c $(srcdir)/imaging/image.c \
	$(srcdir)/imaging/qemu_img.c $(srcdir)/common/spawn.c $(srcdir)/common/jsonx.c $(srcdir)/common/util.c \
	$(srcdir)/common/log.c $(srcdir)/imaging/image.h
FUZZ_image_info_FLAGS = $(JSONC_CFLAGS) $(JSONC_LIBS) $(OPENSSL_LIBS)

# The capture's listings (find -printf, dpkg-query: written by the image's own programs): corpus
# replay under `make check`, `make fuzz-capture-listing-run FUZZ_TIME=120` for a campaign.
check_PROGRAMS += tests/fuzz/fuzz_capture_listing
TESTS += tests/fuzz/fuzz_capture_listing
tests_fuzz_fuzz_capture_listing_SOURCES = tests/fuzz/fuzz_capture_listing.c tests/fuzz/driver.c
tests_fuzz_fuzz_capture_listing_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME=\"capture_listing\"
tests_fuzz_fuzz_capture_listing_LDADD = $(IMAGING_LIBS)
EXTRA_DIST += tests/fuzz/corpus/capture_listing
FUZZ_TARGETS += capture-listing
tests/fuzz/fuzz-capture-listing-libfuzzer: $(srcdir)/tests/fuzz/fuzz_capture_listing.c $(srcdir)/imaging/capture_diff.c \
	$(srcdir)/common/util.c $(srcdir)/common/log.c $(srcdir)/imaging/capture_diff.h
