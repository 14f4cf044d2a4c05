#!/usr/bin/env bash
# Section: the Debian Xfce desktop image (imaging/recipes/debian-desktop): publish time by step
# (slated's pipeline: convert, libguestfs launch + inspect, seal, agent, checksum, store) and
# boot-to-READY of a desktop from it. Skipped unless the image was built (make desktop-image).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

B=${SLATE_BUILDDIR:?set by bench/run}
S=${SLATE_SRCDIR:?set by bench/run}
IMG=$B/imaging/recipes/debian-desktop/out
GUEST=$B/tests/guest/out
N=${BENCH_N:-30}
[ "$N" -le 3 ] || N=3  # a 2 GiB desktop boot under TCG is slow: three samples

skip() { echo "$*" >&2; exit 77; }
command -v jq >/dev/null || skip "jq not installed (apt-get install jq)"
for f in disk.qcow2 vmlinuz initrd.img cmdline; do
        [ -s "$IMG/$f" ] || skip "desktop image not built ($IMG/$f missing; run make desktop-image)"
done
[ -s "$GUEST/guestfs-kernel.env" ] || skip "test guest not built (make guest): it provides the appliance kernel"

T=$(mktemp -d "${BENCH_DISK_DIR:-/var/tmp}/slate-bench-desktop.XXXXXX")
chmod 755 "$T"
SLATED_PID=
cleanup() {
        set +e
        [ -n "$SLATED_PID" ] && { kill -KILL "$SLATED_PID"; wait "$SLATED_PID"; } 2>/dev/null
        local p
        for p in $(pgrep -f "qemu-system.*$T/" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        sleep 0.3
        chmod -R u+w "$T" 2>/dev/null
        rm -rf "$T"
}
trap 'rc=$?; cleanup; exit $rc' EXIT
. "$GUEST/guestfs-kernel.env"
cat >"$T/slate.conf" <<CONF
state-dir = $T/state
run-dir = $T/run
ram-dir = /dev/shm
listen = none
accel = auto
probe-kernel = $GUEST/vmlinux
probe-initrd = $GUEST/initrd.img
guestfs-kernel = $SLATE_GUESTFS_KERNEL
guestfs-modules = $SLATE_GUESTFS_MODULES
agent-binary = $B/agent/slate-agent
agent-session-script = $S/agent/session-script
CONF
ctl() { "$B/broker/slatectl" --socket "$T/run/control.sock" --json "$@"; }
"$B/broker/slated" --config "$T/slate.conf" --foreground >"$T/slated.log" 2>&1 &
SLATED_PID=$!
for _ in $(seq 1 300); do ctl status >/dev/null 2>&1 && break; sleep 0.2; done
accel=$(ctl status | jq -r .accel)

start=$(date +%s%N)
v=$(ctl image publish desktop "$IMG/disk.qcow2" --kernel "$IMG/vmlinuz" --initrd "$IMG/initrd.img" \
        --cmdline "$(cat "$IMG/cmdline")" --current 2>/dev/null)
total=$(( ($(date +%s%N) - start) / 1000000 ))

echo "## Desktop image"
echo
echo "The Debian 12 Xfce golden image ($(du -h --apparent-size "$IMG/disk.qcow2" | cut -f1) qcow2 as built,"
echo "$(echo "$v" | jq -r '.virtual_size / 1073741824 | floor') GiB virtual) published through slated's pipeline, then booted"
echo "in a pool (\`--memory 2G --vcpus 2\`, encrypted overlay). Accelerator: **$accel**."
echo
echo "| publish step | ms |"
echo "|---|---|"
echo "$v" | jq -r '.publish.timings_ms // {} | to_entries[] | "| \(.key) | \(.value) |"'
echo "| **total, as slatectl sees it** | **$total** |"
echo
ctl pool create d --image desktop --warm 1 --max 1 --memory 2G --vcpus 2 >/dev/null
samples=()
for i in $(seq 1 "$N"); do
        for _ in $(seq 1 600); do
                ms=$(ctl desktop list | jq -r '[.[] | select(.state == "ready")][0].boot_ms // empty')
                [ -n "$ms" ] && break
                sleep 1
        done
        [ -n "$ms" ] || { echo "desktop did not become ready" >&2; exit 1; }
        samples+=("$ms")
        id=$(ctl desktop list | jq -r '.[0].id')
        [ "$i" -lt "$N" ] && ctl desktop destroy "$id" >/dev/null && sleep 2
done
echo "| desktop boot to READY (spawn → agent READY) | N | samples (ms) |"
echo "|---|---|---|"
echo "| Debian Xfce, 2 GiB, 2 vCPU | $N | ${samples[*]} |"
echo
echo "Publishing is dominated by the libguestfs appliance (launch + inspect) under TCG; the agent's"
echo "READY comes once systemd has started slate-agent (X is prepared in parallel); Xfce itself draws"
echo "after logon (see the RDP section)."
