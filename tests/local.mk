# Tests shared infrastructure. Components declare their own unit tests and fuzz targets in
# their local.mk with the conventions below:
#   check_PROGRAMS += tests/unit/test_foo ; TESTS += tests/unit/test_foo
#   tests_unit_test_foo_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) ; _LDADD += $(CRITERION_LIBS)
#   fuzz target tests/fuzz/fuzz_foo.c (LLVMFuzzerTestOneInput) + tests/fuzz/driver.c with
#   -DFUZZ_NAME=\"foo\", seed corpus in tests/fuzz/corpus/foo/.
EXTRA_DIST += tests/fuzz/driver.c
