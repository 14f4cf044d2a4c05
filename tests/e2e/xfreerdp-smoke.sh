#!/bin/bash
# xfreerdp-smoke.sh: the stock xfreerdp, on a private Xvfb, must draw a non-black
# desktop from HOST:PORT within 60 s. Proves a real X client can use the server; it
# never touches the caller's display and leaves no Xvfb or xfreerdp behind.
#
# usage: xfreerdp-smoke.sh HOST PORT USER PASSWORD OUTPNG
# exit: 0 drawn (OUTPNG written), 1 failed, 2 usage, 77 a tool is missing (skip)
# XFREERDP_SMOKE_PAST=RRGGBB: a screen mostly of that colour (slate-session's progress screen,
# #152233) does not count as drawn yet: wait for the desktop behind it (ImageMagick only).
set -u

WAIT_S=${XFREERDP_SMOKE_WAIT:-60}
PAST=${XFREERDP_SMOKE_PAST:-}

if [ $# -ne 5 ]; then
	echo "usage: $0 HOST PORT USER PASSWORD OUTPNG" >&2
	exit 2
fi
host=$1 port=$2 user=$3 password=$4 out=$5

skip() {
	echo "SKIP: $1 not found (apt-get install $2)" >&2
	exit 77
}
command -v Xvfb >/dev/null || skip Xvfb xvfb
command -v xfreerdp >/dev/null || skip xfreerdp freerdp2-x11
command -v xwd >/dev/null || skip xwd x11-apps
# Image conversion: ImageMagick, else netpbm.
if command -v convert >/dev/null; then
	conv=im
elif command -v xwdtopnm >/dev/null && command -v pnmtopng >/dev/null &&
	command -v pamsumm >/dev/null; then
	conv=netpbm
else
	skip "convert (or xwdtopnm/pnmtopng/pamsumm)" "imagemagick or netpbm"
fi

work=$(mktemp -d /tmp/xfreerdp-smoke.XXXXXX) || exit 1
xvfb_pid= xfreerdp_pid=
cleanup() {
	# Only the processes this script started, by pid.
	[ -n "$xfreerdp_pid" ] && kill "$xfreerdp_pid" 2>/dev/null
	[ -n "$xvfb_pid" ] && kill "$xvfb_pid" 2>/dev/null
	[ -n "$xfreerdp_pid" ] && wait "$xfreerdp_pid" 2>/dev/null
	[ -n "$xvfb_pid" ] && wait "$xvfb_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "FAIL: $1" >&2
	for f in "$work/xfreerdp.log" "$work/xvfb.log"; do
		[ -s "$f" ] && { echo "--- $(basename "$f") (last 20 lines)" >&2; tail -n 20 "$f" >&2; }
	done
	exit 1
}

# -displayfd lets Xvfb pick a free display itself: no race with other tests.
# -br: a black root, so "non-black" means xfreerdp drew the remote desktop.
Xvfb -displayfd 3 -screen 0 1024x768x24 -br -nolisten tcp 3>"$work/display" \
	>"$work/xvfb.log" 2>&1 &
xvfb_pid=$!
for _ in $(seq 50); do
	[ -s "$work/display" ] && break
	kill -0 "$xvfb_pid" 2>/dev/null || fail "Xvfb exited"
	sleep 0.1
done
[ -s "$work/display" ] || fail "Xvfb did not report a display within 5 s"
display=:$(head -n 1 "$work/display")

DISPLAY=$display xfreerdp "/v:$host:$port" "/u:$user" "/p:$password" /cert:ignore \
	/size:1024x768 </dev/null >"$work/xfreerdp.log" 2>&1 &
xfreerdp_pid=$!

# Prints the largest channel value of the root window (0 = all black).
root_max() {
	xwd -display "$display" -root -silent >"$work/root.xwd" 2>/dev/null || return 1
	case $conv in
	im) convert "xwd:$work/root.xwd" -format '%[fx:int(255*maxima)]' info: 2>/dev/null ;;
	netpbm) xwdtopnm "$work/root.xwd" 2>/dev/null | pamsumm -max -brief 2>/dev/null ;;
	esac
}

deadline=$((SECONDS + WAIT_S))
drawn=
while [ $SECONDS -lt $deadline ]; do
	if ! kill -0 "$xfreerdp_pid" 2>/dev/null; then
		wait "$xfreerdp_pid"
		rc=$?
		xfreerdp_pid=
		fail "xfreerdp exited with status $rc before drawing anything"
	fi
	max=$(root_max) || max=0
	if [ "${max%%.*}" -gt 0 ] 2>/dev/null; then
		if [ -n "$PAST" ] && [ $conv = im ] &&
			[ "$(convert "xwd:$work/root.xwd" -fuzz 6% -fill white -opaque "#$PAST" -fill black \
				+opaque white -format '%[fx:int(100*mean)]' info: 2>/dev/null)" -gt 50 ] 2>/dev/null; then
			sleep 1
			continue
		fi
		drawn=1
		break
	fi
	sleep 1
done
[ -n "$drawn" ] || fail "nothing but black on $display after ${WAIT_S} s"

# Let a partial first update finish before keeping the picture.
sleep 1
xwd -display "$display" -root -silent >"$work/root.xwd" || fail "xwd failed"
case $conv in
im) convert "xwd:$work/root.xwd" "png:$out" ;;
netpbm) xwdtopnm "$work/root.xwd" 2>/dev/null | pnmtopng >"$out" ;;
esac || fail "cannot write $out"
echo "ok: xfreerdp drew $host:$port on $display; screenshot $out"
exit 0
