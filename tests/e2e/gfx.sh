#!/usr/bin/env bash
# The graphics pipeline end to end: slate-session with a real QEMU console (TCG, no disk:
# SeaBIOS's text screen), slated's part played by tests/e2e/session-harness, no VM boot.
# - rdp-client offering GFX with H.264: the pipeline comes up, frames are AVC420 encoded by
#   Slate, decoded by FreeRDP's client and the picture matches the exact one (legacy bitmaps,
#   same console) within a PSNR bound; once still, the lossless pass makes it exact.
# - the same client against a session with the pipeline off (SLATE_SESSION_NO_GFX): surface
#   bits, same picture.
# - stock xfreerdp with its default options gets the pipeline and draws the console.
CONSOLE_LIB_NAME=gfx
. "$(dirname "$0")/console-lib.sh"
PSNR_MIN=40
# SeaBIOS has written its lines and stops at "No bootable device": the picture holds still.
sleep 4
CONSOLE=2,2,a8a8a8,48 # the top of SeaBIOS's first letter

harness() {
        PORT=$(port)
        "$HARNESS" --port "$PORT" --vnc "$T/vnc.sock" --cert "$T/cert.pem" --key "$T/key.pem" --user alice \
                --password secret "$@" >"$T/h.log" 2>&1 &
        HPID=$!
        for _ in $(seq 50); do grep -q listening "$T/h.log" 2>/dev/null && return; sleep 0.1; done
        fail "the harness does not listen"
}
# shot CODEC FILE: log on with rdp-client offering CODEC, wait for the console, keep the last frame.
shot() {
        local rc=0
        "$CLIENT" --host 127.0.0.1 --port "$PORT" --timeout 30 --codec "$1" --user alice --password secret \
                --wait-frame --after-pixel "$CONSOLE" --sleep 1500 --hold 1 --screenshot "$2" >"$T/c.out" 2>&1 || rc=$?
        [ $rc -eq 0 ] || fail "$1: rdp-client exit $rc: $(cat "$T/c.out")"
        harness_end
}
diff_pixels() { { compare -metric AE "$1" "$2" null: 2>&1 || true; } | awk '{ printf "%d", $1 }'; }
CURSOR_PIXELS=100
psnr() { { compare -metric PSNR "$1" "$2" null: 2>&1 || true; } | awk '{ v = $1; if (v == "inf") v = 99; printf "%.1f", v }'; }

say "the exact picture: rdp-client offering bitmaps only"
harness
shot legacy "$T/exact.ppm"
grep -q "encoder: planar" "$T/h.log" || fail "legacy: the session did not use planar bitmaps"

say "rdp-client offering GFX with H.264: AVC420 encoded by slate-session"
SLATE_LOG_LEVEL=debug harness
shot gfx "$T/gfx.ppm"
grep -q "gfx: capabilities .* confirmed" "$T/h.log" || fail "gfx: no capabilities confirmed"
grep -q "encoder: avc420 720x400" "$T/h.log" || fail "gfx: the console's frames were not H.264"
# What the client received: H.264 for what changed (SeaBIOS's blinking cursor at least), planar
# for whole pictures and the lossless pass.
avc=$(sed -n 's/.*gfx_avc420=\([0-9]*\).*/\1/p' "$T/c.out")
pl=$(sed -n 's/.*gfx_planar=\([0-9]*\).*/\1/p' "$T/c.out")
say "gfx: the client received $avc AVC420 and $pl planar surface commands"
[ "${avc:-0}" -ge 1 ] || fail "gfx: the client received no H.264 frame: $(cat "$T/c.out")"
[ "${pl:-0}" -ge 1 ] || fail "gfx: the client received no planar (lossless) command: $(cat "$T/c.out")"
q=$(psnr "$T/exact.ppm" "$T/gfx.ppm")
say "gfx: PSNR $q dB against the exact picture"
awk -v q="$q" -v m=$PSNR_MIN 'BEGIN { exit !(q >= m) }' || fail "gfx: PSNR $q dB, under $PSNR_MIN dB"
# Still for 1.5 s before the screenshot: what went as H.264 went again losslessly (planar), so the
# picture is exact but for SeaBIOS's blinking cursor (a few dozen pixels; lossy H.264 alone
# leaves thousands off by a little).
grep -q "lossless pass" "$T/h.log" || fail "gfx: no lossless pass over the still picture"
ae=$(diff_pixels "$T/exact.ppm" "$T/gfx.ppm")
say "gfx: $ae pixels differ from the exact picture after the lossless pass"
[ "$ae" -le $CURSOR_PIXELS ] || fail "gfx: $ae pixels differ after the lossless pass (the cursor is at most $CURSOR_PIXELS)"

say "the same client, the pipeline off in the session: surface bits, same picture"
SLATE_SESSION_NO_GFX=1 harness
shot gfx "$T/nogfx.ppm"
! grep -q "encoder: avc420" "$T/h.log" || fail "no-gfx: H.264 was used"
grep -q "encoder: " "$T/h.log" || fail "no-gfx: no encoder"
q=$(psnr "$T/exact.ppm" "$T/nogfx.ppm")
say "no-gfx: $(grep -o 'encoder: [a-z0-9]*' "$T/h.log" | tail -1), PSNR $q dB"
awk -v q="$q" -v m=$PSNR_MIN 'BEGIN { exit !(q >= m) }' || fail "no-gfx: PSNR $q dB, under $PSNR_MIN dB"

say "stock xfreerdp, default options: it gets the pipeline"
if command -v xfreerdp >/dev/null && command -v Xvfb >/dev/null && command -v xwd >/dev/null; then
        harness
        rc=0
        XFREERDP_SMOKE_PAST=152233 bash "$S/tests/e2e/xfreerdp-smoke.sh" 127.0.0.1 "$PORT" alice secret "$T/xfreerdp.png" \
                >"$T/x.out" 2>&1 || rc=$?
        kill "$HPID" 2>/dev/null || true
        harness_end
        [ $rc -eq 0 ] || fail "xfreerdp: exit $rc: $(tail -5 "$T/x.out")"
        grep -q "gfx: capabilities .* confirmed" "$T/h.log" || fail "xfreerdp: no graphics pipeline"
        grep -q "encoder: avc420" "$T/h.log" || fail "xfreerdp: no H.264"
        say "xfreerdp: $(grep -o 'gfx: capabilities .* confirmed' "$T/h.log" | head -1)"
else
        say "xfreerdp, Xvfb or xwd not installed: stock-client case not run"
        exit 77
fi
echo "PASS"
