#!/usr/bin/env bash
# Compatibility smoke test: the stock xfreerdp client under Xvfb logs on to slated and the
# screenshot of the Xvfb screen shows alice's desktop (her background colour), sent as H.264
# through the graphics pipeline; with rdp-h264 = off (slated restarted) the same client gets
# surface bits and the same desktop.
. "$(dirname "$0")/../integration/lib.sh"
require_tools
for t in xfreerdp Xvfb xwd convert; do
        command -v $t >/dev/null || skip "$t not installed (apt-get install freerdp2-x11 xvfb x11-apps imagemagick)"
done
setup tcg
setup_pam alice:secret
setup_rdp
start_slated
publish_guest tiny >/dev/null
ctl pool create desk --image tiny --warm 1 --max 2 --memory 256M >/dev/null
ctl pool entitle desk user:alice >/dev/null
wait_for 180 "a ready desktop" pool_ready desk 1
# Past slate-session's progress screen (its backdrop, #152233) to the desktop.
XFREERDP_SMOKE_PAST=152233 bash "$S/tests/e2e/xfreerdp-smoke.sh" 127.0.0.1 "$RDP_PORT" alice secret "$T/xfreerdp.png" ||
        fail "xfreerdp did not show a desktop"
want=$(desk_user_rgb alice)
# The colour must cover a good part of the screen. The codecs may be lossy, so count the pixels
# within a few percent of the colour.
alices_colour() { # PNG
        local n
        n=$(convert "$1" -fuzz 8% -fill white -opaque "#$want" -fill black +opaque white \
                -format "%[fx:round(mean*w*h)]" info:)
        say "pixels of alice's colour #$want: $n"
        [ "$n" -gt 100000 ] || fail "the xfreerdp screenshot does not show alice's desktop"
}
alices_colour "$T/xfreerdp.png"
grep -q "encoder: avc420" "$T/slated.log" || fail "stock xfreerdp did not get H.264 through the graphics pipeline"
cp "$T/xfreerdp.png" "${SLATE_BUILDDIR}/tests/e2e/xfreerdp-last.png" 2>/dev/null || true

say "rdp-h264 = off: the same client gets surface bits"
stop_slated TERM
echo "rdp-h264 = off" >>"$CONF"
from=$(($(wc -l <"$T/slated.log") + 1))
start_slated
XFREERDP_SMOKE_PAST=152233 bash "$S/tests/e2e/xfreerdp-smoke.sh" 127.0.0.1 "$RDP_PORT" alice secret "$T/xfreerdp-off.png" ||
        fail "xfreerdp did not show a desktop with rdp-h264 = off"
alices_colour "$T/xfreerdp-off.png"
codec=$(tail -n +"$from" "$T/slated.log" | grep -o "encoder: [a-z0-9]*" | sort -u | tr '\n' ' ')
say "with rdp-h264 = off: $codec"
case $codec in *avc420*) fail "rdp-h264 = off, yet H.264 was sent ($codec)" ;; esac
case $codec in *remotefx*) ;; *) fail "rdp-h264 = off: expected RemoteFX, got: $codec" ;; esac
stop_slated TERM
echo "PASS: xfreerdp"
