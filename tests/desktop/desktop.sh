#!/usr/bin/env bash
# Opt-in (make check-desktop; minutes under TCG, not part of make check): the Debian Xfce golden
# image of imaging/recipes/debian-desktop in a real pool. It boots to READY, alice logs on over
# RDP and sees the Xfce desktop drawn by Xorg (not the text console), the administrator ends her
# session and the desktop is erased; the logon ends when the image's ready hook says the panel and
# desktop are mapped (usable). Prints boot-to-ready and logon-to-first-frame times and
# keeps the screenshot as tests/desktop/alice.png (and .ppm) in the build tree.
# SLATE_DESKTOP_CLONE=1 makes the desktop an instant clone of the image's template (printed: the
# template's build, the clone's spawn → READY).
. "$(dirname "$0")/../integration/lib.sh"
OUT=${SLATE_DESKTOP_IMAGE:-$B/imaging/recipes/debian-desktop/out}
require_tools
for f in disk.qcow2 vmlinuz initrd.img cmdline; do
        [ -s "$OUT/$f" ] || skip "desktop image not built ($OUT/$f missing; run make desktop-image)"
done
command -v python3 >/dev/null || skip "python3 not installed"
KEEP_DIR=$B/tests/desktop
mkdir -p "$KEEP_DIR"
BOOT_TIMEOUT=${SLATE_DESKTOP_BOOT_TIMEOUT:-600}
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

setup tcg
# A desktop boots in tens of seconds under TCG and its agent answers more slowly while Xfce
# starts on two busy vCPUs: generous bounds.
cat >>"$CONF" <<CONF
boot-timeout = $BOOT_TIMEOUT
CONF
sed -i 's/^heartbeat-misses = .*/heartbeat-misses = 30/' "$CONF"
# With the publish pipeline (libguestfs: inspect, seal, inject the agent) in slated, it installs
# this tree's agent and session script over the image's own copies; without it the image is
# stored as it is and runs the agent it was built with.
conf_default() { # key value: unless lib.sh's setup already set it
        grep -q "^$1 *=" "$CONF" || printf '%s = %s\n' "$1" "$2" >>"$CONF"
}
if grep -qa 'agent-session-script' "$SLATED"; then
        [ -s "$GUEST/guestfs-kernel.env" ] && . "$GUEST/guestfs-kernel.env"
        if [ -n "${SLATE_GUESTFS_KERNEL:-}" ] && [ -r "$SLATE_GUESTFS_KERNEL" ]; then
                export SUPERMIN_KERNEL=$SLATE_GUESTFS_KERNEL SUPERMIN_MODULES=$SLATE_GUESTFS_MODULES
                export SUPERMIN_KERNEL_VERSION=${SLATE_GUESTFS_MODULES##*/}
                export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct} LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}
                conf_default guestfs-kernel "$SLATE_GUESTFS_KERNEL"
                conf_default guestfs-modules "$SLATE_GUESTFS_MODULES"
        fi
        conf_default agent-binary "$B/agent/slate-agent"
        conf_default agent-session-script "$S/agent/session-script"
fi
setup_pam alice:secret bob:secret2
setup_rdp
start_slated

say "publish the desktop image ($(du -h "$OUT/disk.qcow2" | cut -f1))"
jctl image publish desktop "$OUT/disk.qcow2" --kernel "$OUT/vmlinuz" --initrd "$OUT/initrd.img" \
        --cmdline "$(cat "$OUT/cmdline")" --current >"$T/publish.json" || fail "publish failed"
t_pool=$(date +%s.%N)
# SLATE_DESKTOP_CLONE=1: the desktop is an instant clone; the pool (warm 0 first) has its
# template built ahead, then the warm desktop is cloned from it.
if [ "${SLATE_DESKTOP_CLONE:-0}" = 1 ]; then
        ctl pool create desk --image desktop --warm 0 --max 1 --memory 2G --vcpus 2 --clone >/dev/null
        tmpl_ready() { jctl template list | jq -e '[.[] | select(.image == "desktop" and .state == "ready")] | length == 1' >/dev/null; }
        wait_for "$BOOT_TIMEOUT" "a ready template" tmpl_ready
        say "template made: $(since $t_pool) s (boot, settle, save)"
        t_pool=$(date +%s.%N)
        ctl pool set desk --warm 1 >/dev/null
else
        ctl pool create desk --image desktop --warm 1 --max 1 --memory 2G --vcpus 2 --boot >/dev/null
fi
ctl pool entitle desk user:alice >/dev/null
ctl pool entitle desk user:bob >/dev/null
wait_for "$BOOT_TIMEOUT" "a ready desktop" pool_ready desk 1
boot_s=$(since $t_pool)
say "boot to ready: $boot_s s (pool create or warm 1 → desktop ready, includes QEMU start)"
desk=$(jctl desktop list --pool desk | jq -r '[.[] | select(.state == "ready")][0].id')
if [ "${SLATE_DESKTOP_CLONE:-0}" = 1 ]; then
        jctl desktop list --pool desk | jq -e --arg d "$desk" '.[] | select(.id == $d) | .boot_mode == "clone"' >/dev/null ||
                fail "the desktop is not a clone: $(jctl desktop list --pool desk)"
        say "clone: spawn → READY $(jctl desktop list --pool desk | jq -r --arg d "$desk" '.[] | select(.id == $d) | .spawn_ready_ms') ms, created → READY $(jctl desktop list --pool desk | jq -r --arg d "$desk" '.[] | select(.id == $d) | .boot_ms') ms"
fi
# A warm desktop waits in the pool before someone logs on; meanwhile it finishes booting and
# its X server comes up (session-script prepare). 0 measures a logon right at READY.
settle=${SLATE_DESKTOP_SETTLE:-20}
[ "$settle" -eq 0 ] || { say "desktop warm in the pool for $settle s"; sleep "$settle"; }

say "alice logs on: the Xfce desktop, not a text console"
# The first non-black frame is the backdrop colour the session script paints as soon as X
# answers; Xfce then takes tens of seconds under TCG to draw its panel. --expect-pixel waits
# (up to --timeout) for the panel's background at the top centre (Adwaita #f6f5f4); the
# screenshot is the frame after a few more seconds.
t_rdp=$(date +%s.%N)
rdp --user alice --password secret --timeout 300 --width 1280 --height 800 --wait-frame --expect-not-black \
        --expect-pixel "640,5,f6f5f4,12" --hold "${SLATE_DESKTOP_HOLD:-5}" --screenshot "$KEEP_DIR/alice.ppm" >"$T/out" 2>&1 ||
        fail "alice logon: $(cat "$T/out")"
desktop_s=$(awk -v a="$(since $t_rdp)" -v h="${SLATE_DESKTOP_HOLD:-5}" 'BEGIN { printf "%.1f", a - h }')
say "$(tail -1 "$T/out")"
first_frame_ms=$(tail -1 "$T/out" | tr ' ' '\n' | sed -n 's/^first_frame_ms=//p')
say "logon to first frame: ${first_frame_ms:-?} ms (rdp-client, from connect); to the Xfce panel drawn: ${desktop_s} s"
s=$(jctl session list --user alice | jq '.[0]')
[ "$(echo "$s" | jq -r .desktop)" = "$desk" ] || fail "alice did not get the warm desktop $desk"
# The image's ready hook (XDG autostart, agent/session-ready --wait-xfce) says usable once the
# panel and xfdesktop are mapped: the logon ends there, not at the bare backdrop's first frame.
tl=$(jctl session show "$(echo "$s" | jq -r .id)" | jq -c '.timeline[0].steps')
echo "$tl" | jq -e '[.[] | select(.step == "first-frame" or .step == "usable") | .result] == ["ok","ok"]' >/dev/null ||
        fail "alice's logon did not end at a usable desktop: $tl"
say "slated: first frame $(echo "$s" | jq .logon_first_frame_ms) ms, usable $(echo "$s" | jq .logon_ms) ms after connect"

# A text console (VGA text or fbcon) has at most 16 colours, mostly black. Xfce's default
# desktop has hundreds (icons, anti-aliased text) and its panel is a band across the top in a
# colour of its own.
python3 - "$KEEP_DIR/alice.ppm" "$KEEP_DIR/alice.png" >"$T/verdict" <<'PY' || fail "screenshot is not an Xfce desktop: $(cat "$T/verdict")"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
parts = data.split(maxsplit=4)
assert parts[0] == b"P6", "not a P6 PPM"
w, h = int(parts[1]), int(parts[2])
px = data[len(data) - w * h * 3:]
at = lambda x, y: px[(y * w + x) * 3:(y * w + x) * 3 + 3]
colours = {px[i:i + 3] for i in range(0, len(px), 3)}
black = sum(1 for i in range(0, len(px), 3) if px[i:i + 3] == b"\0\0\0") / (w * h)
# The panel: rows 2..20 at the top share one dominant colour (over half the width: the menu,
# workspaces and clock take the rest) that is not the backdrop's (the dominant one mid-screen).
def dominant(y):
    c = {}
    for x in range(0, w, 4):
        c[at(x, y)] = c.get(at(x, y), 0) + 1
    top = max(c, key=c.get)
    return top, c[top] / len(range(0, w, 4))
band = [dominant(y) for y in range(2, 20)]
backdrop = dominant(h // 2)[0]
panel = sum(1 for col, frac in band if frac >= 0.5 and col == band[5][0]) >= 12 and band[5][0] != backdrop
print(f"{w}x{h}, {len(colours)} colours, {black:.0%} black, panel band at top: {panel} "
      f"(#{band[5][0].hex()} over {band[5][1]:.0%} of the width), backdrop #{backdrop.hex()}")
raw = b"".join(b"\0" + px[y * w * 3:(y + 1) * w * 3] for y in range(h))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
open(sys.argv[2], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                              chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
sys.exit(0 if len(colours) >= 256 and black < 0.5 and panel else 1)
PY
say "screenshot: $(cat "$T/verdict"); kept as $KEEP_DIR/alice.png"
# The session script's own account (its last line, in the agent's STARTED detail): only the
# user's part of the start should be left (agent/session-script prepare does the rest at boot).
started=$(jctl audit --kind session.started | jq -r '.[0].detail // empty')
say "the agent's session start: $started"
say "logon steps: $(grep -o 'logon done in .*' "$T/slated.log" | head -1)"

say "the administrator ends alice's session: desktop erased"
sid=$(echo "$s" | jq -r .id)
t_end=$(date +%s.%N)
ctl session end "$sid" >/dev/null || fail "session end $sid failed"
gone() { ! jctl desktop list | jq -e --arg id "$desk" '.[] | select(.id == $id)' >/dev/null; }
wait_for 60 "alice's desktop erased" gone
say "session end to desktop erased: $(since $t_end) s"
[ "$(jctl session list --user alice | jq length)" -eq 0 ] || fail "alice's session survived session end"
grep -q "did not answer\|STOP.*timed out\|stop timed out" "$T/slated.log" && say "note: the agent's STOPPED came late (see slated.log)"
jctl audit --kind logout | jq -e '.[0].subject == "alice"' >/dev/null || fail "logout not audited"

# As a user sees it: bob with the stock xfreerdp (default options but the size) on an Xvfb,
# watched from outside (bench/xwatch): from its first frame to the Xfce panel no sample may be
# an empty screen (black, or one colour all over: a bare backdrop); the progress screen shows
# what happens. The logon ends at usable in slated's timeline too.
XWATCH=$B/bench/xwatch
if command -v xfreerdp >/dev/null && command -v Xvfb >/dev/null && [ -x "$XWATCH" ]; then
        wait_for "$BOOT_TIMEOUT" "the replacement desktop" pool_ready desk 1
        [ "$settle" -eq 0 ] || sleep "$settle"
        exec 5>"$T/xvfb.display"
        Xvfb -displayfd 5 -screen 0 1280x800x24 -br -nolisten tcp -ac >"$T/xvfb.log" 2>&1 &
        xvfb_pid=$!
        exec 5>&-
        for _ in $(seq 1 100); do [ -s "$T/xvfb.display" ] && break; sleep 0.1; done
        dpy=:$(head -1 "$T/xvfb.display")
        t0=$(date +%s%3N)
        DISPLAY=$dpy HOME=$T xfreerdp /v:127.0.0.1:$RDP_PORT /u:bob /p:secret2 /cert:ignore /size:1280x800 >"$T/xfreerdp.log" 2>&1 &
        xf_pid=$!
        seen=$(DISPLAY=$dpy "$XWATCH" --t0 "$t0" --timeout 300 --usable "640,5,f6f5f4,12") || true
        kill "$xf_pid" "$xvfb_pid" 2>/dev/null; wait "$xf_pid" "$xvfb_pid" 2>/dev/null || true
        say "stock xfreerdp, seen from outside: $seen"
        case "$seen" in
        *"usable_ms=-1"*) fail "bob's xfreerdp never showed the Xfce panel: $seen ($(tail -3 "$T/xfreerdp.log"))" ;;
        *"empty_after_first=0 "*) ;;
        *) fail "bob saw an empty screen between the first frame and the desktop: $seen" ;;
        esac
        b=$(jctl session list --user bob | jq -r '.[0].id')
        tl=$(jctl session show "$b" | jq -c '.timeline[0].steps')
        echo "$tl" | jq -e '[.[] | select(.step == "first-frame" or .step == "usable") | .result] == ["ok","ok"]' >/dev/null ||
                fail "bob's logon did not end at a usable desktop: $tl"
        ctl session end "$b" >/dev/null
else
        say "skipped the stock xfreerdp logon (xfreerdp, Xvfb or $XWATCH missing)"
fi
stop_slated TERM
echo "PASS: desktop (boot to ready $boot_s s, first frame ${first_frame_ms:-?} ms, panel drawn after $desktop_s s)"
