# imaging: golden image files and per-desktop overlays (runs qemu-img; no SQLite here), and the
# publishing pipeline and image diff through libguestfs (the only libguestfs user).
noinst_LIBRARIES += imaging/libslateimaging.a
imaging_libslateimaging_a_SOURCES = \
	imaging/overlay.c imaging/overlay.h imaging/image.c imaging/image.h \
	imaging/qemu_img.c imaging/qemu_img.h imaging/catalog.c imaging/catalog.h \
	imaging/appliance.h imaging/gfs.c imaging/gfs.h imaging/inspect.c imaging/inspect.h \
	imaging/seal.c imaging/seal.h imaging/agent_install.c imaging/agent_install.h \
	imaging/pack.c imaging/pack.h imaging/publish.c imaging/publish.h \
	imaging/image_diff.c imaging/image_diff.h
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
