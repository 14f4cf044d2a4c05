#!/usr/bin/env bash
# Section: app capture time by step (issue: capture time by step). A private slated publishes the
# Debian minbase fixture as `debmin` and runs `slatectl app capture helloK --image debmin --packages
# hello --deb-dir DEBS` N times (offline, the fixture's cached .deb); the per-step timings come
# from slated's own account (audit app.add, "capture of PKGS (timings {...})"). Beside each, the
# same work with the stock tool: virt-customize on a qcow2 overlay of the same golden file
# (--copy-in the debs, dpkg -i), same libguestfs appliance kernel and backend, order alternated.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
BENCH_NAME=capture
. "${SLATE_SRCDIR:?set by bench/run}/bench/lib.sh"
bench_require qemu-system-x86_64 qemu-img jq setpriv virt-customize sha256sum
N=${BENCH_N:-3}
[ "$N" -le 3 ] || N=3   # a capture is 1-2 minutes under TCG, and so is the reference
FIX=$B/tests/capture/out
FCACHE=$B/tests/capture/cache
timeout 900 bash "$S/tests/capture/build-debian-min.sh" "$FIX" "$FCACHE" >"$T/fixture.log" 2>&1 ||
        skip "the Debian fixture cannot be built here: $(tail -n 1 "$T/fixture.log")"
tar=$(ls "$FCACHE"/debian-min-*.tar 2>/dev/null | head -1)
[ -n "$tar" ] || skip "no cached Debian tree in $FCACHE"
ls "$FIX"/debs/*.deb >/dev/null 2>&1 || skip "no .deb in $FIX/debs"
busy_start=$(busy_now)
bench_slated_start
accel=$(jctl status | jq -r .accel)
. "$S/tests/capture/publish-debmin.sh"
publish_debmin "$tar" hello
golden=$(jctl image show debmin | jq -r '.versions[0].path')
gfmt=$(qemu-img info --output=json "$golden" | jq -r .format)
sum_before=$(sha256sum "$golden" | cut -d' ' -f1)

# The reference gets the appliance slated's captures get: the kernel from slate.conf (exported
# by bench_slated_start as SUPERMIN_*), the direct backend, TCG when slated runs TCG.
export LIBGUESTFS_BACKEND=direct
[ "$accel" != tcg ] || export LIBGUESTFS_BACKEND_SETTINGS=force_tcg

: >"$T/steps" # "step ms" lines, all rounds
: >"$T/wall"
: >"$T/ref"
slate_capture() { # ROUND
        local t0 t1 detail
        t0=$(now_ms)
        ctl app capture "hello$1" --image debmin --packages hello --deb-dir "$FIX/debs" >"$T/capture.out" 2>"$T/capture.err" ||
                fail "app capture hello$1: $(tail -3 "$T/capture.err")"
        t1=$(now_ms)
        echo $((t1 - t0)) >>"$T/wall"
        detail=$(jctl audit --kind app.add | jq -r --arg n "hello$1" '[.[] | select(.subject == $n)][0].detail // empty')
        case $detail in *"(timings {"*) ;; *) fail "no timings in the audit of hello$1: $detail" ;; esac
        echo "$detail" | sed -n 's/.*(timings \({[^}]*}\)).*/\1/p' | jq -r --argjson w $((t1 - t0)) \
                'to_entries | (.[] | "\(.key) \(.value)"), "rest \($w - (map(.value) | add))"' >>"$T/steps" ||
                fail "no timings in the audit of hello$1: $detail"
}
stock_capture() { # ROUND
        local t0 o=$T/ref-$1.qcow2
        t0=$(now_ms)
        qemu-img create -q -f qcow2 -F "$gfmt" -b "$golden" "$o"
        virt-customize --format qcow2 -a "$o" --copy-in "$FIX/debs:/tmp" \
                --run-command 'dpkg -i /tmp/debs/*.deb' >"$T/ref.log" 2>&1 ||
                fail "virt-customize: $(grep -m3 -i -e "error" -e "failed" "$T/ref.log" || tail -3 "$T/ref.log")"
        echo $(($(now_ms) - t0)) >>"$T/ref"
        rm -f "$o"
}
for i in $(seq 1 "$N"); do
        if [ $((i % 2)) -eq 1 ]; then slate_capture "$i"; stock_capture "$i"
        else stock_capture "$i"; slate_capture "$i"; fi
done
sum_after=$(sha256sum "$golden" | cut -d' ' -f1)

# numbers on stdin → "p50 max"
p50max() { sort -n | awk '{ v[NR] = $1 } END { m = int((NR + 1) / 2); print v[m] " | " v[NR] }'; }
cat <<MD
## App capture time by step

\`slatectl app capture helloK --image debmin --packages hello --deb-dir DEBS\`, $N captures (distinct
app names), offline (the fixture's cached hello .deb), libguestfs appliance under $accel, on the
Debian 12 minbase fixture published as \`debmin\` ($gfmt golden). Steps as slated times them (audit
\`app.add\`); *rest* = the slatectl wall time − the steps (request, layer build: mkfs.ext4 -d,
hash, commit). Beside it, once per round, order alternated, the stock tool on the same work:
\`qemu-img create\` of a qcow2 overlay of the same golden file + \`virt-customize --copy-in
DEBS:/tmp --run-command 'dpkg -i /tmp/debs/*.deb'\` (LIBGUESTFS_BACKEND=direct${LIBGUESTFS_BACKEND_SETTINGS:+, LIBGUESTFS_BACKEND_SETTINGS=$LIBGUESTFS_BACKEND_SETTINGS}, the same
appliance kernel), wall. At start: $busy_start.

| step | p50 (ms) | max (ms) |
|---|---|---|
MD
for s in $(awk '!seen[$1]++ { print $1 }' "$T/steps"); do
        echo "| $s | $(awk -v s="$s" '$1 == s { print $2 }' "$T/steps" | p50max) |"
done
cat <<MD
| **slatectl app capture, wall** | $(p50max <"$T/wall") |
| **stock: overlay + virt-customize, wall** | $(p50max <"$T/ref") |

virt-customize's own progress marks (last round, s since its start): $(grep -E '^\[ *[0-9.]+\]' "$T/ref.log" |
        sed 's/^\[ *\([0-9.]*\)\] \(.*\)$/\1 \2/' | cut -c1-60 | paste -sd ';' | sed 's/;/; /g').

Golden file sha256 before: \`$sum_before\`, after all captures and references: \`$sum_after\`
($( [ "$sum_before" = "$sum_after" ] && echo unchanged || echo CHANGED)).

At end: $(busy_now).
MD
[ "$sum_before" = "$sum_after" ] || fail "the golden image changed"
