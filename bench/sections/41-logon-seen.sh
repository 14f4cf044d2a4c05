#!/usr/bin/env bash
# Section: logon as users see it. A stock xfreerdp (default options, 1280x800) on an Xvfb, watched
# from outside by bench/xwatch: the first frame that is not black, every empty screen after it
# (one colour over the whole window: black or a bare backdrop), and the moment the desktop is
# usable (the Xfce panel drawn; on the tiny test guest, its session's colour). Fresh logons to a
# warm desktop with the pool's refill booting beside them (warm 1, max 2) and without one (warm 1,
# max 1: nothing boots), then a reconnect to each session; freerdp-shadow-cli on an Xvfb showing
# the same picture, same client, same run, as the reference. Once for the Debian Xfce image (when
# built: make desktop-image) and once for the tiny test guest, each in its own private slated.
#   41-logon-seen.sh               both, prints the section
#   41-logon-seen.sh tiny|desktop  one image, prints table rows (used by the above)
# BENCH_SETTLE: seconds the Xfce desktops sit ready before each logon (default 20).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

if [ $# -eq 0 ]; then
        S=${SLATE_SRCDIR:?set by bench/run}
        out=$(mktemp -d)
        trap 'rm -rf "$out"' EXIT
        tiny_rc=0 desk_rc=0
        bash "$0" tiny >"$out/tiny" 2>"$out/tiny.err" || tiny_rc=$?
        bash "$0" desktop >"$out/desktop" 2>"$out/desktop.err" || desk_rc=$?
        [ $tiny_rc -eq 0 ] || [ $desk_rc -eq 0 ] || {
                cat "$out/tiny.err" "$out/desktop.err" >&2
                [ $tiny_rc -eq 77 ] && [ $desk_rc -eq 77 ] && exit 77
                exit 1
        }
        cat <<MD
## Logon as users see it (stock xfreerdp)

Stock \`xfreerdp /v:… /u:… /p:… /cert:ignore /size:1280x800\` (FreeRDP $(xfreerdp --version 2>&1 | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1)) on an Xvfb, sampled every 50 ms from
outside by \`bench/xwatch\`; seconds from starting the client, p50 / p90. *first frame*: the first
sample that is not black; *usable*: the Xfce top panel drawn (pixel 640,5 near #f6f5f4), or on the
tiny guest its session's colour; *empty screens*: runs of one-colour samples (black, or a bare
backdrop) between the first frame and usable, summed over the logons. *with refill*: a warm
desktop of a pool with warm 1, max 2, so a replacement boots beside the logon; *no refill*: warm 1,
max 1. Each logon is followed by a reconnect (the client killed, then started again). Pools have
profiles off (no disk creation in the figures); the host was quiet (every desktop booted and
settled) before each logon. freerdp-shadow-cli shows a screenshot of the usable desktop on an
Xvfb: its figures are what the RDP connection alone costs with this client.

| image | case | N | first frame | usable | empty screens | slated: first-frame / usable steps, p50 |
|---|---|---|---|---|---|---|
MD
        [ $tiny_rc -eq 0 ] && cat "$out/tiny" || echo "| tiny guest | skipped: $(tail -1 "$out/tiny.err") | | | | | |"
        [ $desk_rc -eq 0 ] && cat "$out/desktop" || echo "| Xfce | skipped: $(tail -1 "$out/desktop.err") | | | | | |"
        echo
        exit 0
fi

IMAGE=$1
BENCH_NAME=logon-seen-$IMAGE
W=1280
H=800
if [ "$IMAGE" = desktop ]; then
        BENCH_AGENT_BINARY=${SLATE_BUILDDIR:?}/agent/slate-agent
        export BENCH_AGENT_BINARY
fi
. "${SLATE_SRCDIR:?set by bench/run}/bench/lib.sh"
bench_require qemu-system-x86_64 qemu-img jq Xvfb xfreerdp freerdp-shadow-cli xwd convert display
XWATCH=$B/bench/xwatch
[ -x "$XWATCH" ] || skip "$XWATCH not built (make bench builds it)"
N=${BENCH_N:-30}
if [ "$IMAGE" = desktop ]; then
        DIMG=$B/imaging/recipes/debian-desktop/out
        for f in disk.qcow2 vmlinuz initrd.img cmdline; do
                [ -s "$DIMG/$f" ] || skip "desktop image not built ($DIMG/$f missing; make desktop-image)"
        done
        [ "$N" -le 3 ] || N=3   # a logon is ~1 min of TCG, each followed by a 2 GiB desktop boot
        MEM=2G VCPUS=2 SETTLE=${BENCH_SETTLE:-20} USABLE_S=300
else
        [ "$N" -le 8 ] || N=8
        MEM=256M VCPUS=1 SETTLE=2 USABLE_S=60
fi
busy_start=$(busy_now)
bench_slated_start rfuser:pw nruser:pw
accel=$(jctl status | jq -r .accel)
if [ "$IMAGE" = desktop ]; then
        grep -q "^guestfs-kernel" "$T/slate.conf" || skip "no appliance kernel for the publish pipeline (make guest)"
        jctl image publish img "$DIMG/disk.qcow2" --kernel "$DIMG/vmlinuz" --initrd "$DIMG/initrd.img" \
                --cmdline "$(cat "$DIMG/cmdline")" --current >/dev/null 2>"$T/publish.err" ||
                fail "desktop image publish failed: $(tail -3 "$T/publish.err")"
        LABEL=Xfce
else
        jctl image publish img "$GUEST/disk.qcow2" --kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd.img" \
                --cmdline "$(cat "$GUEST/cmdline")" --current >/dev/null 2>"$T/publish.err" ||
                fail "image publish failed: $(tail -3 "$T/publish.err")"
        LABEL="tiny guest"
fi
usable_pixel() { # USER
        if [ "$IMAGE" = desktop ]; then echo "640,5,f6f5f4,12"; else echo "5,5,$(desk_user_rgb "$1"),14"; fi
}
for p in rf:2 nr:1; do
        ctl pool create "${p%%:*}" --image img --warm 1 --max "${p#*:}" --memory $MEM --vcpus $VCPUS \
                --profiles off --disconnect-timeout 600 >/dev/null
done
ctl pool entitle rf user:rfuser >/dev/null
ctl pool entitle nr user:nruser >/dev/null

# The client's display: black root (-br), so an unmapped or undrawn client reads as black.
bench_xvfb CD client -br

quiet() { # every desktop of both pools ready, none booting
        jctl desktop list | jq -e 'length >= 2 and all(.[]; .state == "ready")' >/dev/null
}
no_sessions() { [ "$(jctl session list | jq length)" -eq 0 ]; }
state_is() { # USER STATE
        jctl session list --user "$1" | jq -e --arg s "$2" '.[0].state == $s' >/dev/null
}

XF_PID=
client_start() { # HOST_PORT USER PASSWORD
        DISPLAY=$CD xfreerdp "/v:$1" "/u:$2" "/p:$3" /cert:ignore /size:${W}x${H} >>"$T/xfreerdp.log" 2>&1 &
        XF_PID=$!
        PIDS+=("$XF_PID")
}
client_stop() {
        [ -n "$XF_PID" ] || return 0
        kill -TERM "$XF_PID" 2>/dev/null || true
        wait "$XF_PID" 2>/dev/null || true
        # xfreerdp leaves its TSMF shared memory behind, named after its pid.
        rm -f "/dev/shm/com.freerdp.xfreerdp.tsmf_$(printf '%016X' "$XF_PID")"
        XF_PID=
}
field() { sed -n "s/.*$1=\\(-\\?[0-9]*\\).*/\\1/p"; }
secs() { awk '{ if ($1 < 0) print "never"; else printf "%.1f\n", $1 / 1000 }'; }

# watch USER KEY: starts the client for USER, appends "first usable empty" (ms) to $T/KEY.
watch() {
        local t0 out
        t0=$(now_ms)
        client_start "127.0.0.1:$RDP_PORT" "$1" pw
        out=$(DISPLAY=$CD "$XWATCH" --t0 "$t0" --timeout $USABLE_S --usable "$(usable_pixel "$1")") || true
        echo "$(field first_ms <<<"$out") $(field usable_ms <<<"$out") $(field empty_after_first <<<"$out")" >>"$T/$2"
}

# logon USER POOL KEY: a fresh logon, then a reconnect, then the session ends.
SHOT=
logon() {
        wait_for 900 "both pools ready" quiet
        sleep $SETTLE
        watch "$1" "$3"
        [ -n "$SHOT" ] || { SHOT=$T/usable.xwd; DISPLAY=$CD xwd -root -silent >"$SHOT"; }
        local id
        id=$(jctl session list --user "$1" | jq -r '.[0].id // empty')
        [ -n "$id" ] || fail "$1: no session after the logon ($(tail -3 "$T/xfreerdp.log"))"
        jctl session show "$id" | jq -r '[.timeline[0].steps[] | {(.step): .ms}] | add |
                "\(."first-frame" // "–") \(.usable // "–")"' >>"$T/$3.server"
        client_stop
        wait_for 30 "$1 disconnected" state_is "$1" disconnected
        watch "$1" "$3.re"
        client_stop
        ctl session end "$id" >/dev/null
        wait_for 120 "$1's session ended" no_sessions
}

: >"$T/rf" ; : >"$T/nr"; : >"$T/rf.server"; : >"$T/nr.server"
for i in $(seq 1 "$N"); do
        if [ $((i % 2)) -eq 1 ]; then
                logon rfuser rf rf
                logon nruser nr nr
        else
                logon nruser nr nr
                logon rfuser rf rf
        fi
done

# ---- the reference: freerdp-shadow-cli showing the usable desktop ----
bench_xvfb SD shadow
convert "xwd:$SHOT" "$T/usable.ppm"
bench_shadow_start "$SD" "$T/usable.ppm"
: >"$T/shadow"
px=$(usable_pixel rfuser)
for _ in $(seq 1 $((2 * N))); do
        t0=$(now_ms)
        client_start "127.0.0.1:$SH_PORT" u p
        out=$(DISPLAY=$CD "$XWATCH" --t0 "$t0" --timeout 60 --usable "$px") || true
        echo "$(field first_ms <<<"$out") $(field usable_ms <<<"$out") $(field empty_after_first <<<"$out")" >>"$T/shadow"
        client_stop
done

cell() { # FILE COLUMN: "p50 / p90" in seconds
        local s
        s=$(awk -v c="$2" '$c >= 0 { print $c }' "$1" | stats)
        if [ "$s" = "– –" ]; then echo "never"; return; fi
        echo "$(echo "${s% *}" | secs) / $(echo "${s#* }" | secs)"
}
never() { awk -v c="$2" '$c < 0 { n++ } END { if (n) printf " (%d never)", n }' "$1"; }
empties() { awk '{ n += $3 } END { print n + 0 }' "$1"; }
server() { # FILE: slated's first-frame and usable steps, p50 in ms
        local ff us
        ff=$(awk '$1 != "–" { print $1 }' "$1" | stats | cut -d' ' -f1)
        us=$(awk '$2 != "–" { print $2 }' "$1" | stats | cut -d' ' -f1)
        echo "$ff / $us ms"
}
row() { # LABEL FILE [SERVER]
        echo "| $LABEL ($accel) | $1 | $(wc -l <"$2") | $(cell "$2" 1)$(never "$2" 1) | $(cell "$2" 2)$(never "$2" 2) | $(empties "$2") | ${3:-} |"
}
row "fresh logon, with refill" "$T/rf" "$(server "$T/rf.server")"
row "fresh logon, no refill" "$T/nr" "$(server "$T/nr.server")"
row "reconnect, with refill pool" "$T/rf.re"
row "reconnect, no refill pool" "$T/nr.re"
row "freerdp-shadow-cli, same picture" "$T/shadow"
echo "| $LABEL | host | | at start: $busy_start | at end: $(busy_now) | | |"
