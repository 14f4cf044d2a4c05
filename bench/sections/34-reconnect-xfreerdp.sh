#!/usr/bin/env bash
# Section: reconnect with stock xfreerdp, Slate vs freerdp-shadow-cli. A private slated (bench/lib.sh:
# pam_wrapper, loopback RDP, a pool of the tiny test guest) with one disconnected session; the stock
# xfreerdp (default options but /v /u /p /cert:ignore /size) on a private Xvfb reconnects to it, and
# to freerdp-shadow-cli serving another Xvfb that shows the same picture, interleaved. The client-side
# first frame is bench/xfirst's: process start → five pixels of the client's screen show the user's
# colour. Every process started here is ended by its pid on exit.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

BENCH_NAME=reconnect-xf
. "$(dirname "$0")/../lib.sh"
N=${BENCH_N:-15}
[ "$N" -le 30 ] || N=30
[ "$N" -ge 10 ] || N=10
W=1280
H=800

bench_require qemu-system-x86_64 qemu-img jq Xvfb xfreerdp freerdp-shadow-cli convert display
# The pixel watcher links libX11, which Slate itself does not need: built here, not by configure.
XFIRST=$T/xfirst
cc -O2 -o "$XFIRST" "$S/bench/xfirst.c" $(pkg-config --cflags --libs x11 2>/dev/null || echo -lX11) 2>"$T/xfirst.err" ||
        skip "cannot build bench/xfirst.c (apt-get install libx11-dev): $(head -1 "$T/xfirst.err")"
# BENCH_BASELINE_SESSION: another build's slate-session (same IPC version, with --spare) to compare
# with, on the same slated, session and desktop: slated starts a wrapper that runs the binary named
# in a file; a switch kills the spare that runs the other one.
SIDES="slate shadow"
# BENCH_SPARES_BASELINE=1: a side "Slate, no spare ready" on the same slated and build: the spare
# slated keeps (session-spares) is started by a wrapper that waits until the client's socket is
# on its IPC before it execs slate-session, so exec, loading and initialisation come after the
# accept as they did before spares. The Slate side waits before each sample until its spare is
# ready (what a spare is for); either side's switch kills the other kind's waiting spare.
if [ -n "${BENCH_SPARES_BASELINE:-}" ]; then
        SIDES="slate late shadow"
        cat >"$T/session-pick" <<SH
#!/bin/sh
if [ "\$1" = --spare ] && [ "\$(cat $T/spare-mode)" = late ]; then
        exec python3 -c 'import os, select, sys; select.select([4], [], []); os.execv(sys.argv[1], sys.argv[1:])' "$SESSION" "\$@"
fi
exec "$SESSION" "\$@"
SH
        chmod 755 "$T/session-pick"
        echo ready >"$T/spare-mode"
        chmod 644 "$T/spare-mode"
        SESSION=$T/session-pick
elif [ -n "${BENCH_BASELINE_SESSION:-}" ]; then
        [ -x "$BENCH_BASELINE_SESSION" ] || skip "BENCH_BASELINE_SESSION=$BENCH_BASELINE_SESSION is not executable"
        SIDES="slate base shadow"
        printf '#!/bin/sh\nexec "$(cat %s/session-prog)" "$@"\n' "$T" >"$T/session-pick"
        chmod 755 "$T/session-pick"
        echo "$SESSION" >"$T/session-prog"
        chmod 644 "$T/session-prog"
        SESSION_B=$SESSION
        SESSION=$T/session-pick
fi

busy_start=$(busy_now)
bench_slated_start alice:secret
bench_publish_tiny
ctl pool create desk --image tiny --warm 1 --max 2 --memory 256M >/dev/null
ctl pool entitle desk user:alice >/dev/null
accel=$(jctl status | jq -r '.accel // .accelerator // "?"' 2>/dev/null || echo "?")
quiet() { jctl desktop list --pool desk | jq -e '([.[] | select(.state == "ready")] | length >= 1) and all(.state == "ready" or .state == "assigned")' >/dev/null; }
disconnected() { jctl session list --user alice | jq -e 'length == 1 and .[0].state == "disconnected"' >/dev/null; }
wait_for 600 "a ready desktop" quiet

color=$(desk_user_rgb alice)
# The session: alice logs on once with the test client and leaves; every sample reconnects to it.
"$RDPC" --host 127.0.0.1 --port "$RDP_PORT" --timeout 120 --width $W --height $H --user alice --password secret \
        --wait-frame --expect-pixel "20,20,$color" >"$T/alice.out" 2>&1 || fail "alice's first logon: $(cat "$T/alice.out")"
wait_for 60 "alice's session disconnected" disconnected
wait_for 600 "the pool settled" quiet

# ---- freerdp-shadow-cli on an Xvfb showing alice's colour ----
bench_xvfb SX shadow
convert -size ${W}x$H "xc:#$color" "$T/alice.ppm"
convert -size ${W}x$H "xc:#000000" "$T/black.ppm"
bench_shadow_start "$SX" "$T/alice.ppm"

# ---- the client's screen: black root, xfreerdp's window on it ----
bench_xvfb CX client -br
mkdir -p "$T/xf-home"
xf() { # PORT USER PASSWORD LOG → "start→frame connect→frame" (ms)
        HOME=$T/xf-home DISPLAY=$CX XFIRST_PORT=$1 "$XFIRST" "$color" $W $H 30 \
                xfreerdp "/v:127.0.0.1:$1" "/u:$2" "/p:$3" /cert:ignore /size:${W}x$H 2>>"$4"
}
spare_now() { # the pid of the spare slated keeps now, if one runs
        local p
        p=$(sed -n 's/.*spare: pid \([0-9]*\) uid .*started.*/\1/p' "$T/slated.log" | tail -1)
        [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"
}
spare_fit() { # OLD MODE: a spare other than OLD runs, and in mode ready it has initialised
        local p
        p=$(spare_now) && [ "$p" != "$1" ] || return 1
        [ "$2" = late ] || grep -q "(pid $p): .*spare: ready, waits for a client" "$T/slated.log"
}
spare_switch() { # FILE VALUE MODE: VALUE in FILE (what the next spare runs); when that changes, the
        # spare waiting now is killed. Then wait for a spare of the new kind (MODE ready: initialised).
        local old=none
        if [ "$(cat "$1")" != "$2" ]; then
                echo "$2" >"$1"
                old=$(spare_now) && kill -KILL "$old"
        fi
        wait_for 60 "a spare ($2)" spare_fit "$old" "$3"
}
server_ms() { # SIDE → appends the last connection's accept → first TLS signature (ms) to $T/SIDE.srv
        local acc pid sig
        read -r acc pid < <(sed -n 's/^<[0-9]>\([0-9:.]*\) .*connection 127.0.0.1: slate-session pid \([0-9]*\).*/\1 \2/p' "$T/slated.log" | tail -1)
        sig=$(sed -n "s/.*(pid $pid): \([0-9:.]*\) slate-session\[$pid\]: TLS: first handshake signature.*/\1/p" "$T/slated.log" | head -1)
        [ -n "$sig" ] || return 0
        echo "$acc $sig" | awk '{ split($1, a, ":"); split($2, b, ":");
                printf "%d\n", ((b[1] * 60 + b[2]) * 60 + b[3] - ((a[1] * 60 + a[2]) * 60 + a[3])) * 1000 + 0.5 }' >>"$T/$1.srv"
}
one() { # SIDE → appends "start→frame connect→frame load1" to $T/SIDE.ff
        local ms
        case $1 in
        slate | late | base)
                if [ -n "${BENCH_SPARES_BASELINE:-}" ]; then
                        spare_switch "$T/spare-mode" "$([ "$1" = late ] && echo late || echo ready)" \
                                "$([ "$1" = late ] && echo late || echo ready)"
                elif [ -n "${SESSION_B:-}" ]; then
                        spare_switch "$T/session-prog" "$([ "$1" = base ] && echo "$BENCH_BASELINE_SESSION" || echo "$SESSION_B")" ready
                fi
                wait_for 60 "alice's session disconnected" disconnected
                ms=$(xf "$RDP_PORT" alice secret "$T/xf-$1.log") || fail "xfreerdp reconnect to Slate ($1): $(tail -5 "$T/xf-$1.log")"
                server_ms "$1"
                ;;
        shadow)
                ms=$(xf "$SH_PORT" u p "$T/xf-shadow.log") || fail "xfreerdp to freerdp-shadow-cli: $(tail -5 "$T/xf-shadow.log")"
                ;;
        esac
        echo "$ms $(cut -d' ' -f1 /proc/loadavg)" >>"$T/$1.ff"
        # xfreerdp leaves its TSMF shared memory behind, named after its pid.
        rm -f /dev/shm/com.freerdp.xfreerdp.tsmf_* 2>/dev/null || true
}
rotate() { # I → the sides in the order of round I (each side first in turn)
        local a=($SIDES) k=$(( $1 % ${#a[@]} )) j
        for ((j = 0; j < ${#a[@]}; j++)); do echo "${a[(k + j) % ${#a[@]}]}"; done
}
for s in $SIDES; do one $s; done       # warm-up, not counted
for s in $SIDES; do : >"$T/$s.ff"; : >"$T/$s.srv"; done
for i in $(seq 1 "$N"); do
        for s in $(rotate "$i"); do one "$s"; done
done

# ---- report ----
row() { # LABEL FILE COLUMN
        local p50 p90 n fast
        read -r p50 p90 < <(cut -d' ' -f"$3" "$2" | stats)
        n=$(wc -l <"$2")
        fast=$(cut -d' ' -f"$3" "$2" | awk '$1 <= 600 { k++ } END { print k + 0 }')
        echo "| $1 | $p50 | $p90 | $(cut -d' ' -f"$3" "$2" | sort -n | head -1) | $(cut -d' ' -f"$3" "$2" | sort -n | tail -1) | $fast/$n |"
}
label() {
        case $1 in
        slate) echo "Slate ($(git -C "$S" rev-parse --short HEAD 2>/dev/null || echo "?"))" ;;
        base) echo "Slate baseline ($BENCH_BASELINE_SESSION)" ;;
        late) echo "Slate, no spare ready (exec at accept)" ;;
        shadow) echo "freerdp-shadow-cli" ;;
        esac
}
loads=$(cat "$T"/*.ff | cut -d' ' -f3 | sort -n | sed -n '1p;$p' | tr '\n' ' ')
rs=$(jctl session list --user alice | jq -c '.[0].phases // {}')
cat <<MD
## Reconnect with stock xfreerdp: Slate vs freerdp-shadow-cli

The stock \`xfreerdp\` ($(DISPLAY=$CX xfreerdp --version 2>/dev/null | grep -o 'version [0-9.]*' | head -1)), default options but
\`/v /u /p /cert:ignore /size:${W}x$H\`, on a private Xvfb, against a private slated (pam_wrapper,
loopback RDP, a pool of the tiny test guest, accelerator **$accel**), where alice reconnects to her
disconnected session, and against \`freerdp-shadow-cli -auth /sec:tls\` serving an Xvfb that shows
alice's colour$([ -z "${BENCH_BASELINE_SESSION:-}" ] || echo "; **Slate baseline** is the same slated, session and desktop with another build's slate-session")$([ -z "${BENCH_SPARES_BASELINE:-}" ] || echo "; **Slate, no spare ready** is the same slated, build, session and desktop, its spare slate-session started by a wrapper that execs it only once the client's socket is on its IPC (exec, loading and set-up after the accept, as before spares; the Slate side waits for its spare to be ready before each sample)"). The sides take turns, each first in turn; N = $N per side after one warm-up each.
**start → frame** = \`bench/xfirst\`: xfreerdp's process start → five pixels of the client's screen
show the user's colour (polled every 2 ms); it includes xfreerdp's own start-up (X, channels, and
FreeRDP's 300 ms pixel-primitives timing), the same on every side. **connect → frame** starts when
the client's TCP connection appears in /proc/net/tcp. Times in ms, nearest rank. Load average
(1 min) at the samples: $loads(min, max). At the start: $busy_start; at the end: $(busy_now).

| start → frame (ms) | p50 | p90 | min | max | ≤ 600 ms |
|---|---|---|---|---|---|
$(for s in $SIDES; do row "$(label $s)" "$T/$s.ff" 1; done)

| connect → frame (ms) | p50 | p90 | min | max | ≤ 600 ms |
|---|---|---|---|---|---|
$(for s in $SIDES; do row "$(label $s)" "$T/$s.ff" 2; done)

$(for s in $SIDES; do [ -s "$T/$s.srv" ] && break; done
[ -s "$T/$s.srv" ] && cat <<TBL
Server side, from slated's log: the accept → slate-session's first TLS handshake signature (its
own clock), which follows the X.224 answer and the client's TLS hello:

| accept → first TLS signature (ms) | p50 | p90 | min | max | n |
|---|---|---|---|---|---|
$(for s in $SIDES; do [ -s "$T/$s.srv" ] || continue; read -r p50 p90 < <(stats <"$T/$s.srv"); echo "| $(label $s) | $p50 | $p90 | $(sort -n "$T/$s.srv" | head -1) | $(sort -n "$T/$s.srv" | tail -1) | $(wc -l <"$T/$s.srv") |"; done)
TBL
)

Slate's phases of the last reconnect (slated's timeline, ms): \`$rs\`.
MD
