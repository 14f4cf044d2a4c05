#!/usr/bin/env bash
# Section: desktop boot. The test guest's spawn→READY through a private slated (boot_ms, per overlay
# mode) next to the same QEMU line replayed by hand (boot-ref.py), then 20 desktops cold to ready.
# Never touches a system slated: everything lives in its own temp dirs and is removed on exit.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

B=${SLATE_BUILDDIR:?set by bench/run}
S=${SLATE_SRCDIR:?set by bench/run}
GUEST=$B/tests/guest/out
SLATED=$B/broker/slated
SLATECTL=$B/broker/slatectl
REF=$(dirname "$0")/boot-ref.py
N=${BENCH_N:-30}
[ "$N" -le 10 ] || N=10 # every sample is a full guest boot under TCG: 10 is plenty
STORM=20

skip() { echo "$*" >&2; exit 77; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
command -v qemu-img >/dev/null || skip "qemu-img not installed (apt-get install qemu-utils)"
command -v jq >/dev/null || skip "jq not installed (apt-get install jq)"
[ -x "$SLATED" ] && [ -x "$SLATECTL" ] || skip "slated/slatectl not built in $B"
for f in vmlinux initrd.img disk.qcow2 cmdline; do
        [ -s "$GUEST/$f" ] || skip "test guest not built ($GUEST/$f missing; run make guest)"
done
have_python=0
command -v python3 >/dev/null && python3 -c 'import struct' 2>/dev/null && have_python=1

# The development machines are shared: say how busy this one was (QEMUs not ours, load).
foreign_qemu() { pgrep -c qemu-system || true; }
busy_start="load $(cut -d' ' -f1-3 /proc/loadavg), $(foreign_qemu) other QEMU processes running"

T=$(mktemp -d "${BENCH_DISK_DIR:-/var/tmp}/slate-bench-boot.XXXXXX")
RAM=$(mktemp -d "${BENCH_RAM_DIR:-/dev/shm}/slate-bench-boot.XXXXXX")
chmod 755 "$T" "$RAM"
SLATED_PID=
SAMPLER_PID=

cleanup() {
        set +e
        [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
        if [ -n "$SLATED_PID" ]; then
                kill -KILL "$SLATED_PID" 2>/dev/null
                wait "$SLATED_PID" 2>/dev/null
        fi
        # QEMUs of this run only: their command lines name our private dirs.
        local p
        for p in $(pgrep -f "qemu-system.*($T|$RAM)/" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        sleep 0.3
        rm -rf "$T" "$RAM"
}
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT TERM

fail() {
        echo "20-boot: $*" >&2
        [ -f "$T/slated.log" ] && tail -n 15 "$T/slated.log" >&2
        exit 1
}

ctl() { "$SLATECTL" --socket "$T/run/control.sock" "$@"; }
jctl() { "$SLATECTL" --socket "$T/run/control.sock" --json "$@"; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll every 0.5 s until COMMAND succeeds (slatectl + jq
# cost CPU that the booting guests would otherwise get; boot_ms is slated's own clock anyway).
wait_for() {
        local secs=$1 what=$2
        shift 2
        local end=$((SECONDS + secs))
        while [ $SECONDS -lt $end ]; do
                "$@" && return 0
                sleep 0.5
        done
        fail "timed out after ${secs}s waiting for $what"
}

qemu_pids() { pgrep -f "qemu-system.*$T/run/desktops/" || true; }
ready_in() { jctl desktop list --pool "$1" | jq -e --argjson n "$2" '[.[] | select(.state == "ready")] | length >= $n' >/dev/null; }
no_desktops() { [ "$(jctl desktop list | jq length)" -eq 0 ] && [ -z "$(qemu_pids)" ]; }

# stats: numbers on stdin → "median p90" (nearest rank, as bench_overlay.c).
stats() {
        sort -n | awk '{ v[NR] = $1 } END {
                if (NR == 0) { print "– –"; exit }
                m = int(NR * 0.5); if (m < NR * 0.5) m++; if (m < 1) m = 1
                p = int(NR * 0.9); if (p < NR * 0.9) p++; if (p < 1) p = 1
                print v[m], v[p] }'
}

# ---- a private slated, accel = auto (it probes) ----
cat >"$T/slate.conf" <<CONF
state-dir = $T/state
run-dir = $T/run
ram-dir = $RAM
log-level = info
accel = auto
probe-kernel = $GUEST/vmlinux
probe-initrd = $GUEST/initrd.img
listen = none
tls-cert = $T/tls/cert.pem
tls-key = $T/tls/key.pem
CONF
"$SLATED" --config "$T/slate.conf" --foreground >>"$T/slated.log" 2>&1 &
SLATED_PID=$!
for _ in $(seq 1 600); do
        ctl status >/dev/null 2>&1 && break
        kill -0 "$SLATED_PID" 2>/dev/null || fail "slated exited at start"
        sleep 0.1
done
ctl status >/dev/null 2>&1 || fail "slated did not open its control socket in 60 s"
status=$(jctl status)
accel=$(jq -r .accel <<<"$status")
accel_reason=$(jq -r .accel_reason <<<"$status")
boot_parallel=$(jq -r .boot_parallel <<<"$status")

jctl image publish tiny "$GUEST/disk.qcow2" --kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd.img" \
        --cmdline "$(cat "$GUEST/cmdline")" --current >"$T/publish.json" 2>"$T/publish.err" || fail "image publish failed: $(tail -3 "$T/publish.err")"
golden=$(jq -r .path "$T/publish.json")

# ---- 1. one desktop's boot, Slate vs the same QEMU line by hand ----
declare -A slate_ms slate_med ref_ms ref_create_ms
modes=(encrypted ram plain)
for mode in "${modes[@]}"; do
        pool=b-$mode
        ctl pool create "$pool" --image tiny --warm 1 --max 1 --memory 256M --overlay "$mode" >/dev/null ||
                fail "pool create $pool failed"
        # The first boot warms the page cache (kernel, initrd, golden): not counted.
        wait_for 300 "$pool: first desktop ready" ready_in "$pool" 1
        d=$(jctl desktop list --pool "$pool" | jq -c '[.[] | select(.state == "ready")][0]')
        pid=$(jq -r .pid <<<"$d")
        cp "/proc/$pid/cmdline" "$T/argv-$mode" || fail "cannot read /proc/$pid/cmdline"
        slate_run=$(jq -r .run_dir <<<"$d")
        slate_ov=$(jq -r .overlay_path <<<"$d")
        ovdir=$T/ref
        [ "$mode" = ram ] && ovdir=$RAM/ref
        mkdir -p "$T/ref" "$ovdir"
        ref() { # [warmup]: boot once, record unless warming up
                [ $have_python = 1 ] || return 0
                local out
                out=$(python3 "$REF" "$T/argv-$mode" "$slate_run" "$slate_ov" "$golden" "$mode" "$T/ref" "$ovdir") ||
                        fail "reference boot ($mode) failed"
                [ -z "${1:-}" ] || return 0
                ref_ms[$mode]+="${out% *} "
                ref_create_ms[$mode]+="${out#* } "
        }
        ref warmup # the reference gets a warm-up too, not counted
        for i in $(seq 1 "$N"); do
                # Alternate which goes first, so neither always runs right after the other.
                if [ $((i % 2)) -eq 0 ]; then ref; fi
                id=$(jq -r .id <<<"$d")
                ctl desktop destroy "$id" >/dev/null || fail "desktop destroy $id failed"
                next_ready() {
                        d=$(jctl desktop list --pool "$pool" |
                                jq -c --arg old "$id" '[.[] | select(.state == "ready" and .id != $old)][0] // empty')
                        [ -n "$d" ]
                }
                wait_for 300 "$pool: replacement of $id ready" next_ready
                slate_ms[$mode]+="$(jq -r .boot_ms <<<"$d") "
                if [ $((i % 2)) -eq 1 ]; then ref; fi
        done
        ctl pool delete "$pool" >/dev/null || fail "pool delete $pool failed"
        wait_for 60 "$pool drained" no_desktops
done

cat <<MD
## Desktop boot

Test guest (tests/guest: Debian kernel, busybox disk, slate-agent) from spawn to the agent's READY
frame. Accelerator: **$accel** (chosen by slated's probe, \`accel = auto\`: $accel_reason).
**Slate** = \`boot_ms\` of \`slatectl --json desktop list\` for a pool \`--warm 1 --max 1 --memory 256M\`
(overlay creation + QEMU spawn + boot to READY, as slated measures it), one sample per
\`desktop destroy\` → replacement ready. **Reference** = the same QEMU command line taken from
\`/proc/<pid>/cmdline\` of that Slate desktop (same devices, blockdev options, accel), replayed by hand
as root (no setpriv) over a \`qemu-img create\` overlay of the same mode and directory, timed from
\`qemu-img create\` to READY on the virtio-serial socket (tests/guest/agent-check.py's reader).
N=$N per row (BENCH_N capped at 10), Slate and reference interleaved in alternating order; one
warm-up each not counted; the other side's desktop is idle (Slate's) or gone (reference's) meanwhile.
Times in ms. At the start of the section: $busy_start.

| overlay | method | N | overlay + boot to READY median | p90 | of which qemu-img create median | p90 |
|---|---|---|---|---|---|---|
MD
for mode in "${modes[@]}"; do
        read -r sm sp < <(tr ' ' '\n' <<<"${slate_ms[$mode]}" | grep . | stats)
        echo "| $mode | Slate | $N | $sm | $sp | – | – |"
        slate_med[$mode]=$sm
        if [ $have_python = 1 ]; then
                read -r rm rp < <(tr ' ' '\n' <<<"${ref_ms[$mode]}" | grep . | stats)
                read -r cm cp < <(tr ' ' '\n' <<<"${ref_create_ms[$mode]}" | grep . | stats)
                echo "| $mode | plain QEMU | $N | $rm | $rp | $cm | $cp |"
                echo "$mode $sm $rm $cm" >>"$T/summary"
        else
                echo "| $mode | plain QEMU | – | skipped: no python3 | | | |"
        fi
done
echo
if [ -s "$T/summary" ]; then
        awk 'BEGIN { printf "Reading: " }
             { d = $2 - $3; printf "%s%s: Slate %+d ms (%+.0f %%) vs plain QEMU", (NR > 1 ? "; " : ""), $1, d, 100 * d / $3 }
             END { printf ". Differences under ~20 %% are noise on this shared machine (bench/README.md); encrypted boots pay qemu-img'"'"'s LUKS create (%d ms of them here, see the overlay section); the reference boots run beside the pool'"'"'s idle desktop, the Slate ones beside the dying one.\n", c }' \
                c="$(awk '$1 == "encrypted" { print $4 }' "$T/summary")" "$T/summary"
        echo
fi

# ---- 2. 20 desktops cold to ready ----
wait_for 60 "an idle slated" no_desktops
mem_avail() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }
# Sum of VmRSS (KiB) of this slated's QEMUs.
qemu_rss() {
        local p s=0 r
        for p in $(qemu_pids); do
                r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || r=0
                s=$((s + ${r:-0}))
        done
        echo $s
}
# The sampler: every 0.5 s, "<elapsed ms> <qemu rss KiB> <MemAvailable KiB> <qemu count>".
sampler() {
        while :; do
                echo "$(( $(date +%s%3N) - t0 )) $(qemu_rss) $(mem_avail) $(qemu_pids | wc -l)"
                sleep 0.5
        done
}
avail0=$(mem_avail)
t0=$(date +%s%3N)
sampler >"$T/samples" &
SAMPLER_PID=$!
ctl pool create storm --image tiny --warm $STORM --max $STORM --memory 128M --overlay ram >/dev/null ||
        fail "pool create storm failed"
wait_for 1200 "$STORM desktops ready" ready_in storm $STORM
t_ready=$(( $(date +%s%3N) - t0 ))
sleep 1 # one more sample or two at steady state
kill "$SAMPLER_PID" 2>/dev/null
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=
storm_list=$(jctl desktop list --pool storm)
read -r boot_med boot_p90 < <(jq -r '.[].boot_ms' <<<"$storm_list" | stats)
boot_max=$(jq '[.[].boot_ms] | max' <<<"$storm_list")
read -r rss_peak drop_peak qemu_max < <(awk -v a0="$avail0" '
        { if ($2 > r) r = $2; if (a0 - $3 > d) d = a0 - $3; if ($4 > q) q = $4 }
        END { printf "%d %d %d\n", r, d, q }' "$T/samples")
rss_end=$(qemu_rss)
drop_end=$((avail0 - $(mem_avail)))
nsamples=$(wc -l <"$T/samples")

t_del=$(date +%s%3N)
ctl pool delete storm >/dev/null || fail "pool delete storm failed"
wait_for 120 "storm pool drained" no_desktops
t_gone=$(( $(date +%s%3N) - t_del ))
left=$(qemu_pids | wc -l)
overlays_left=$(find "$RAM" -name '*.qcow2' | wc -l)

single_ram=${slate_med[ram]}
busy_end="load $(cut -d' ' -f1-3 /proc/loadavg), $(foreign_qemu) other QEMU processes running"
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
sec() { awk -v m="$1" 'BEGIN { printf "%.1f", m / 1000 }'; }
cat <<MD
### $STORM desktops cold to ready

\`pool create storm --warm $STORM --max $STORM --memory 128M --overlay ram\` on the same slated, idle
(no desktop) before; accelerator **$accel**, boot-parallel **$boot_parallel** (\`slatectl --json
status\` → boot_parallel: at most that many desktops booting at once). Wall time from \`pool create\`
until $STORM are ready (polled every 0.5 s); memory sampled every 0.5 s ($nsamples samples): sum of
VmRSS of the pool's QEMU processes, and the drop of MemAvailable (/proc/meminfo) from before the
create (whole host: includes tmpfs overlays, page cache and anything else running).

| desktops | boot-parallel | wall time to all ready | per-desktop boot_ms median | p90 | max | peak QEMU RSS sum | at all ready | peak MemAvailable drop | at all ready |
|---|---|---|---|---|---|---|---|---|---|
| $STORM | $boot_parallel | $(sec "$t_ready") s | $boot_med | $boot_p90 | $boot_max | $(mib "$rss_peak") MiB | $(mib "$rss_end") MiB ($(mib $((rss_end / STORM))) MiB each) | $(mib "$drop_peak") MiB | $(mib "$drop_end") MiB |

\`pool delete storm\`: all drained in $(sec "$t_gone") s; QEMU processes left: **$left**, ram overlays left: **$overlays_left** (peak QEMU count seen: $qemu_max). At the end of the section: $busy_end.

Reading: with boot-parallel $boot_parallel the storm runs in ~$(( (STORM + boot_parallel - 1) / boot_parallel )) waves, so the wall time is about $(( (STORM + boot_parallel - 1) / boot_parallel )) × one boot under contention ($(sec "$t_ready") s for $STORM ≈ $(awk -v t="$t_ready" -v n="$STORM" -v p="$boot_parallel" 'BEGIN { printf "%.1f", t / ((n + p - 1) / p) / 1000 }') s per wave, against a median boot_ms of $boot_med ms here and $single_ram ms for one ram desktop booting alone above: the cores are shared by the boots in flight and the desktops already up); an idle $([ "$accel" = tcg ] && echo TCG || echo "$accel") desktop at 128M costs the host ~$(mib $((drop_end / STORM))) MiB (MemAvailable drop / $STORM); the RSS sum (~$(mib $((rss_end / STORM))) MiB each) is higher because it counts the pages the QEMUs share (binary, libraries, kernel and initrd in the page cache) once per process.

MD
[ "$left" -eq 0 ] || fail "$left QEMU processes left after pool delete"
ctl status >/dev/null
exit 0
