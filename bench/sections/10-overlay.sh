#!/bin/sh
# Section: overlay create+destroy, Slate vs bare qemu-img, per mode (bench/bench_overlay.c).
# Contract for every section: print markdown on stdout; exit 77 with a reason on stderr to skip.
prog="$SLATE_BUILDDIR/bench/bench_overlay"
[ -x "$prog" ] || { echo "bench_overlay not built (make bench builds it)" >&2; exit 77; }
command -v qemu-io >/dev/null || { echo "qemu-io missing (apt-get install qemu-utils)" >&2; exit 77; }
exec "$prog" -n "${BENCH_N:-30}" -d "${BENCH_DISK_DIR:-/var/tmp}" -r "${BENCH_RAM_DIR:-/dev/shm}"
