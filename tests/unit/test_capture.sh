#!/usr/bin/env bash
# Runs test_capture against the minimal Debian fixture (tests/capture/build-debian-min.sh, built
# once into the build tree's tests/capture/ and cached) and a real libguestfs appliance under TCG.
# Skips (77) with the reason when the fixture cannot be built (no mirror and no cache), the
# appliance kernel is missing, or libguestfs cannot launch here. Offline after the first build.
set -eu
B=${SLATE_BUILDDIR:?}
S=${SLATE_SRCDIR:?}
skip() { echo "SKIP: $*"; exit 77; }
GUEST=$B/tests/guest/out
[ -s "$GUEST/guestfs-kernel.env" ] || skip "no kernel for the libguestfs appliance (run make guest)"
. "$GUEST/guestfs-kernel.env"
[ -r "$SLATE_GUESTFS_KERNEL" ] && [ -d "$SLATE_GUESTFS_MODULES" ] || skip "no appliance kernel ($SLATE_GUESTFS_KERNEL)"
[ -d /lib/modules ] || skip "/lib/modules missing: supermin needs it (mkdir -p /lib/modules)"
command -v setpriv >/dev/null || skip "setpriv not installed (util-linux)"
OUT=$B/tests/capture/out
start=$(date +%s)
timeout 900 bash "$S/tests/capture/build-debian-min.sh" "$OUT" "$B/tests/capture/cache" >"$B/tests/capture-fixture.log" 2>&1 ||
        skip "the Debian fixture cannot be built here: $(tail -n 1 "$B/tests/capture-fixture.log")"
echo "fixture ready in $(( $(date +%s) - start )) s: $OUT"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export SLATE_CAPTURE_GOLDEN=$OUT/disk.qcow2 SLATE_CAPTURE_DEBS=$OUT/debs SLATE_CAPTURE_WORK=$T/work
export SLATE_CAPTURE_SKIP=$T/skip SLATE_CAPTURE_KERNEL=$SLATE_GUESTFS_KERNEL SLATE_CAPTURE_MODULES=$SLATE_GUESTFS_MODULES
export LIBGUESTFS_BACKEND=direct
# A test of its own: a persistent appliance cache, shared with nothing that runs in parallel.
export LIBGUESTFS_CACHEDIR=$B/tests/capture/appliance-cache
mkdir -p "$LIBGUESTFS_CACHEDIR"
r=0
"$B/tests/unit/test_capture" "$@" || r=$?
[ ! -s "$T/skip" ] || skip "$(cat "$T/skip")"
exit $r
