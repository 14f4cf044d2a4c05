#!/usr/bin/env bash
# Section: instant clones (issue 19) against cold boots, the tiny test guest through a private
# slated: creation → READY one at a time (a clone's includes the new identity), memory of an
# idle desktop (smaps_rollup of its QEMU), and a storm of desktops to all-ready with the host's
# MemAvailable drop. Interleaved clone/cold. Everything lives in private temp dirs.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
BENCH_NAME=clone
. "$(dirname "$0")/../lib.sh"
bench_require jq qemu-img qemu-system-x86_64
N=${BENCH_N:-30}
[ "$N" -le 10 ] || N=10                 # each cold sample is a full TCG boot
STORM=${BENCH_CLONE_STORM:-20}
busy_start=$(busy_now)
bench_slated_start ucl:pw uco:pw
bench_publish_tiny

ready_count() { jctl desktop list --pool "$1" | jq '[.[] | select(.state == "ready")] | length'; }
none_left() { [ "$(jctl desktop list --pool "$1" | jq length)" = 0 ]; }
has() { [ "$(ready_count "$1")" -ge "$2" ]; }
tmpl_ready() { jctl template list | jq -e --argjson m "$1" 'any(.state == "ready" and .memory == $m)' >/dev/null; }
# kB of a field of smaps_rollup
smaps() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/smaps_rollup"; }

# A logon with no spare waiting: its desktop is made for it at normal CPU priority (a spare
# boots at idle priority, which on a shared host measures the other jobs, not the boot).
ctl pool create cl --image tiny --warm 0 --max 1 --memory 256M --clone >/dev/null
ctl pool create co --image tiny --warm 0 --max 1 --memory 256M --boot >/dev/null
ctl pool entitle cl user:ucl >/dev/null
ctl pool entitle co user:uco >/dev/null
wait_for 600 "the 256M template" tmpl_ready $((256 << 20))
build_ms=$(jctl template list | jq '[.[] | select(.memory == 268435456)][0].build_ms')
no_sessions() { [ "$(jctl session list | jq length)" -eq 0 ]; }
: >"$T/ready.cl" ; : >"$T/ready.co"; : >"$T/spawn.cl"; : >"$T/spawn.co"; : >"$T/pss.cl"; : >"$T/pss.co"; : >"$T/priv.cl"; : >"$T/priv.co"
for i in $(seq 1 "$N"); do
        order="cl co"
        [ $((i % 2)) = 0 ] && order="co cl"
        for p in $order; do
                u=u$p
                "$RDPC" --host 127.0.0.1 --port "$RDP_PORT" --timeout 600 --user "$u" --password pw --wait-desktop \
                        >"$T/out" 2>&1 || fail "$u logon: $(tail -3 "$T/out")"
                d=$(jctl desktop list --pool "$p" | jq -c '.[0]')
                echo "$d" | jq .boot_ms >>"$T/ready.$p"
                echo "$d" | jq '.spawn_ready_ms // empty' >>"$T/spawn.$p"
                [ "$p" = co ] || [ "$(echo "$d" | jq -r .boot_mode)" = clone ] || fail "pool cl gave a cold desktop: $d"
                id=$(jctl session list --user "$u" | jq -r '.[0].id')
                pid=$(echo "$d" | jq .pid)
                sleep 5                 # the test session drawn and settled
                smaps "$pid" Pss >>"$T/pss.$p"
                echo $(($(smaps "$pid" Private_Clean) + $(smaps "$pid" Private_Dirty))) >>"$T/priv.$p"
                ctl session end "$id" >/dev/null
                wait_for 120 "$u's session ended" no_sessions
                wait_for 60 "pool $p empty" none_left "$p"
        done
done

# The storm: STORM desktops of 128M at once, template built first for the clones. Spares boot at
# idle priority: on a host busy with other jobs this measures those (BENCH_CLONE_STORM=0: none).
storm_cl_ms=– storm_cl_kb=0 storm_co_ms=– storm_co_kb=0
if [ "$STORM" -gt 0 ]; then
ctl pool create scl --image tiny --warm 0 --max "$STORM" --memory 128M --overlay ram --clone >/dev/null
ctl pool create sco --image tiny --warm 0 --max "$STORM" --memory 128M --overlay ram --boot >/dev/null
ctl pool set scl --warm 1 >/dev/null
wait_for 300 "the 128M template" tmpl_ready $((128 << 20))
wait_for 300 "the first storm clone" has scl 1
ctl pool set scl --warm 0 >/dev/null
wait_for 60 "pool scl empty" none_left scl
storm() { # POOL → "wall_ms memavail_drop_kB"
        local before after t
        before=$(awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo)
        t=$(now_ms)
        ctl pool set "$1" --warm "$STORM" >/dev/null
        wait_for 1800 "$STORM ready in $1" has "$1" "$STORM"
        local wall=$(($(now_ms) - t))
        sleep 5
        after=$(awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo)
        echo "$wall $((before - after))"
        ctl pool set "$1" --warm 0 >/dev/null
        wait_for 300 "pool $1 empty" none_left "$1"
}
read -r storm_cl_ms storm_cl_kb < <(storm scl)
read -r storm_co_ms storm_co_kb < <(storm sco)
fi
clones=$(grep -c 'clone of .* running' "$T/slated.log" || true)
fallbacks=$(grep -c 'cold boot: ' "$T/slated.log" || true)
busy_end=$(busy_now)

read -r rc50 rc90 < <(stats <"$T/ready.cl")
read -r ro50 ro90 < <(stats <"$T/ready.co")
read -r sc50 sc90 < <(stats <"$T/spawn.cl")
read -r so50 so90 < <(stats <"$T/spawn.co")
read -r pc50 _ < <(stats <"$T/pss.cl")
read -r po50 _ < <(stats <"$T/pss.co")
read -r vc50 _ < <(stats <"$T/priv.cl")
read -r vo50 _ < <(stats <"$T/priv.co")
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
storm_md="Storm: not run (BENCH_CLONE_STORM=0)."
if [ "$STORM" -gt 0 ]; then
        storm_md="Storm: $STORM desktops of 128 MiB with ram overlays asked for at once (\`pool set --warm $STORM\`,
boot-parallel default, spares at idle CPU priority), wall time to all READY and the host's
MemAvailable drop 5 s later:

| | all READY | MemAvailable drop |
|---|---|---|
| clones | $storm_cl_ms ms | $(mib "$storm_cl_kb") MiB |
| cold boots | $storm_co_ms ms | $(mib "$storm_co_kb") MiB |"
fi
cat <<EOF2
## Instant clones vs cold boots (tiny guest)

Private slated, accelerator $(jctl status | jq -r '.accel // "?"'), 256 MiB, encrypted overlays,
N=$N each, interleaved: a logon (\`rdp-client --wait-desktop\`) to a pool with no spare, so its
desktop is made for it, at normal CPU priority. Created → READY is slated's \`boot_ms\` (the
overlay: a rekeyed copy of a blank LUKS overlay, made with qemu-img once per backing file; QEMU
spawn; state load or boot; agent HELLO/READY; identity applied); spawn → READY leaves the
overlay out. Memory: the desktop's QEMU 5 s after
the logon, test session drawn (\`/proc/PID/smaps_rollup\`; private = Private_Clean +
Private_Dirty). Template (boot once to READY, settle 1 s, save): ${build_ms} ms. Host at start:
$busy_start; at end: $busy_end.

| | created → READY p50 | p90 | spawn → READY p50 | p90 | PSS p50 | private p50 |
|---|---|---|---|---|---|---|
| clone | $rc50 ms | $rc90 ms | $sc50 ms | $sc90 ms | $(mib "$pc50") MiB | $(mib "$vc50") MiB |
| cold boot | $ro50 ms | $ro90 ms | $so50 ms | $so90 ms | $(mib "$po50") MiB | $(mib "$vo50") MiB |

$storm_md

$clones clones started in this run, $fallbacks desktops of clone pools booted cold (the log says why).

EOF2
