#!/usr/bin/env bash
# Compatibility smoke test: the stock xfreerdp client under Xvfb logs on to slated and the
# screenshot of the Xvfb screen shows alice's desktop (her background colour).
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
# The colour must cover a good part of the screen. xfreerdp negotiates RemoteFX, a lossy codec,
# so count the pixels within a few percent of the colour.
n=$(convert "$T/xfreerdp.png" -fuzz 8% -fill white -opaque "#$want" -fill black +opaque white \
        -format "%[fx:round(mean*w*h)]" info:)
say "pixels of alice's colour #$want: $n"
[ "$n" -gt 100000 ] || fail "the xfreerdp screenshot does not show alice's desktop"
cp "$T/xfreerdp.png" "${SLATE_BUILDDIR}/tests/e2e/xfreerdp-last.png" 2>/dev/null || true
stop_slated TERM
echo "PASS: xfreerdp"
