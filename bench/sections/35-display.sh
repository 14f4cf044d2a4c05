#!/bin/sh
# Section: a moving picture through slate-session's encoders (bench/bench_gfx.c), side by side with
# FreeRDP 2.11's own H.264 encoder and RemoteFX on the same frames, in one process.
prog="$SLATE_BUILDDIR/bench/bench_gfx"
[ -x "$prog" ] || { echo "bench_gfx not built (make bench builds it)" >&2; exit 77; }
n=${BENCH_N:-30}
[ "$n" -ge 60 ] || n=60
cat <<MD
## Display: a moving picture (H.264 through the graphics pipeline)

*moving*: a 480x360 photo-like window moving 8 px a frame over a still desktop; *video*: the same
window in place, its picture drifting every frame like a camera pan; $n frames each. Slate encodes
the damaged rects (the window's old and new place) with libx264 (zero latency, infinite GOP); FreeRDP
2.11's \`avc420_compress\` (its libavcodec/x264 set-up, preset medium, VBR 10 Mb/s as its shadow
server uses it) takes the whole frame; RemoteFX is slate-session's surface-bits codec on the same
rects. CPU time of the encoding thread(s) in this process; PSNR of the moved area as FreeRDP's
decoder (xfreerdp's) shows it. KB/s: what 30 such frames a second would take. slate-session
uses superfast, CRF 23 (docs/design.md, "Display").

MD
# FreeRDP's libavcodec logs x264's statistics on stderr: kept out of the table, shown on failure.
err=$(mktemp)
rc=0
"$prog" -n "$n" 2>"$err" || rc=$?
[ $rc -eq 0 ] || cat "$err" >&2
rm -f "$err"
exit $rc
