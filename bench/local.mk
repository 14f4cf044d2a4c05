# Benchmarks: `make bench` builds the helper programs and runs bench/run, which prints the tables
# and records them in bench/results/<date>-<host>.md. A new benchmark = a script in bench/sections/
# (and, if it needs one, a program added to BENCH_TOOLS).
BENCH_TOOLS = bench/bench_overlay bench/bench_store bench/xwatch bench/bench_gfx
noinst_PROGRAMS += $(BENCH_TOOLS)
bench_bench_overlay_SOURCES = bench/bench_overlay.c
bench_bench_overlay_LDADD = $(IMAGING_LIBS) -lm
bench_bench_store_SOURCES = bench/bench_store.c
bench_bench_store_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS) $(ZSTD_CFLAGS)
bench_bench_store_LDADD = $(STREAMING_LIBS) -lm
bench_bench_gfx_SOURCES = bench/bench_gfx.c rdp/h264.c rdp/h264.h
bench_bench_gfx_CFLAGS = $(AM_CFLAGS) $(FREERDP_CFLAGS) $(X264_CFLAGS)
bench_bench_gfx_LDADD = common/libslatecommon.a $(FREERDP_LIBS) $(X264_LIBS) -lm
bench_xwatch_SOURCES = bench/xwatch.c
bench_xwatch_CFLAGS = $(AM_CFLAGS) $(X11_CFLAGS)
bench_xwatch_LDADD = $(X11_LIBS)
EXTRA_DIST += bench/run bench/README.md bench/sections/10-overlay.sh bench/sections/20-boot.sh \
	bench/sections/boot-ref.py bench/sections/30-rdp.sh bench/sections/40-desktop.sh \
	bench/sections/50-store.sh bench/sections/33-capture.sh bench/sections/41-logon-seen.sh \
	bench/sections/34-reconnect-xfreerdp.sh bench/sections/35-display.sh bench/xfirst.c

bench: $(BENCH_TOOLS)
	SLATE_BUILDDIR=$(abs_top_builddir) SLATE_SRCDIR=$(abs_top_srcdir) $(SHELL) $(srcdir)/bench/run $(BENCH_ARGS)
.PHONY: bench
