#!/usr/bin/env bash
# Section: RDP logon and frames. Through a private slated (pam_wrapper, RDP listener on loopback,
# pool of the tiny test guest) and the headless rdp-client: logon time warm / cold / 10 at once,
# with slated's own phases, next to freerdp-shadow-cli on an Xvfb measured by the same client in
# the same run; then the cost of one full-screen frame of the same image on both sides
# (slate-session via tests/e2e/session-harness, freerdp-shadow-cli on the Xvfb).
# Everything lives in its own temp dirs; every process started here is ended by its pid on exit.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

BENCH_NAME=rdp
. "$(dirname "$0")/../lib.sh"
HARNESS=$B/tests/e2e/session-harness
N=${BENCH_N:-30}
[ "$N" -le 20 ] || N=20 # every warm sample is followed by a guest boot (the refill) under TCG
NC=$N
[ "$NC" -le 8 ] || NC=8 # every cold sample is a guest boot
NCONC=10                # users logging on at once
RCONC=3                 # rounds of those
NFRAMES=20              # full frames per codec in slate-session
NCHANGES=10             # full-screen changes forced on the shadow's display
W=1280
H=800

bench_require qemu-system-x86_64 qemu-img jq Xvfb freerdp-shadow-cli display convert identify xwd ss xfreerdp
[ -x "$HARNESS" ] || skip "$HARNESS not built (make check builds the e2e tools)"
busy_start=$(busy_now)

median() { stats | cut -d' ' -f1; }
sec() { awk -v m="$1" 'BEGIN { if (m == "–") print "–"; else printf "%.2f", m / 1000 }'; }
kb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1000 }'; }

# Bytes the server side of a loopback TCP connection on PORT has sent (TLS records, TCP payload).
tcp_sent() {
        ss -tinH state established "( sport = :$1 )" 2>/dev/null |
                grep -o 'bytes_sent:[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }'
}
# CPU time of a process (all threads), in ms.
TCK=$(getconf CLK_TCK)
cpu_ms() { sed 's/.*) //' "/proc/$1/stat" | awk -v t="$TCK" '{ printf "%d\n", ($12 + $13) * 1000 / t }'; }
# Wait until tcp_sent PORT has not moved for QUIET ms (polled every 100 ms), at most SECS.
wait_quiet() { # PORT QUIET_MS SECS
        local last=-1 cur stable=0 end=$(( $(now_ms) + $3 * 1000 ))
        while [ "$(now_ms)" -lt $end ]; do
                cur=$(tcp_sent "$1")
                if [ "$cur" = "$last" ]; then
                        stable=$((stable + 100))
                        [ $stable -ge "$2" ] && return 0
                else
                        stable=0
                        last=$cur
                fi
                sleep 0.1
        done
        return 1
}

# ---- a private slated with PAM (pam_wrapper + pam_matrix) and an RDP listener ----
users=(alice:secret wuser:pw-w cuser:pw-c)
for i in $(seq 1 $NCONC); do users+=("user$i:pw$i"); done
bench_slated_start "${users[@]}"
accel=$(jctl status | jq -r .accel)
boot_parallel=$(jctl status | jq -r .boot_parallel)
bench_publish_tiny
ctl pool create desk --image tiny --warm 1 --max $((NCONC + 2)) --memory 256M --disconnect-timeout 600 >/dev/null ||
        fail "pool create failed"
ctl pool entitle desk all >/dev/null || fail "pool entitle failed"

# All desktops of the pool ready, at least WARM of them, none booting or going away.
settled() { jctl desktop list --pool desk | jq -e --argjson w "$1" 'length >= $w and all(.state == "ready")' >/dev/null; }
no_sessions() { [ "$(jctl session list | jq length)" -eq 0 ]; }
rdp() { "$RDPC" --host 127.0.0.1 --port "$RDP_PORT" --timeout 120 --width $W --height $H --json "$@"; }
# field NAME < client json line
field() { jq -r --arg f "$1" '.[$f] // empty' 2>/dev/null; }
end_all_sessions() {
        local id
        for id in $(jctl session list | jq -r '.[].id'); do ctl session end "$id" >/dev/null || fail "session end $id"; done
        wait_for 120 "sessions ended" no_sessions
}
# slated's logon timeline of every current session (slatectl session list → phases), one line
# each: auth desktop agent first-frame-since-accept handshake
phases_now() {
        jctl session list | jq -r '.[] | select(.phases) |
                "\(.phases.auth_ms) \(.phases.desktop_ms) \(.phases.agent_ms // 0) \(.logon_first_frame_ms // .logon_ms) \(.phases.handshake_ms)"'
}
# the handshake column of a phases file
handshakes_of() { cut -d' ' -f5 "$1"; }

wait_for 300 "a ready desktop" settled 1

# ---- the warm-up logon (not counted): alice's screen, the image both sides will show ----
color=$(desk_user_rgb alice)
"$RDPC" --host 127.0.0.1 --port "$RDP_PORT" --timeout 120 --width $W --height $H --user alice --password secret \
        --wait-frame --expect-pixel "20,20,$color" --screenshot "$T/alice.ppm" >"$T/alice.out" 2>&1 ||
        fail "alice's warm-up logon: $(cat "$T/alice.out")"
end_all_sessions
convert "$T/alice.ppm" "$T/alice.png"
img_size=$(identify -format '%wx%h' "$T/alice.ppm")

# ---- the live reference: freerdp-shadow-cli on an Xvfb showing the same image ----
bench_xvfb XD xvfb
# display -window root paints the root background and exits 1 even when it worked: check the pixels once.
show() { DISPLAY=$XD display -window root "$1" >/dev/null 2>&1 || true; }
show "$T/alice.ppm"
px=$(DISPLAY=$XD xwd -root -silent | convert xwd:- -crop 1x1+20+20 -depth 8 txt:- | grep -o '#[0-9A-Fa-f]\{6\}' | head -1)
[ "${px,,}" = "#$color" ] || fail "the Xvfb root does not show alice's screen (pixel 20,20 is $px, expected #$color)"
# -auth: no credentials checked (shadow's default is off); /sec:tls as Slate offers.
bench_shadow_start "$XD" "$T/alice.ppm"
shadow_rdp() { "$RDPC" --host 127.0.0.1 --port "$SH_PORT" --timeout 120 --width $W --height $H --json --user u --password p "$@"; }
shadow_rdp --wait-frame >"$T/shadow-warmup.json" 2>>"$T/shadow-client.err" ||
        fail "warm-up logon on freerdp-shadow: $(cat "$T/shadow-warmup.json")"

# ---- 1a. warm logons, interleaved with the shadow's ----
: >"$T/warm.ff"
: >"$T/warm.conn"
: >"$T/warm.phases"
: >"$T/shadow.ff"
: >"$T/shadow.conn"
one_shadow() {
        local out
        out=$(shadow_rdp --wait-frame 2>>"$T/shadow-client.err") || fail "logon on freerdp-shadow: $out"
        field first_frame_ms <<<"$out" >>"$T/shadow.ff"
        field connect_ms <<<"$out" >>"$T/shadow.conn"
}
for i in $(seq 1 "$N"); do
        wait_for 300 "the warm desktop" settled 1
        if [ $((i % 2)) -eq 0 ]; then one_shadow; fi
        out=$(rdp --user wuser --password pw-w --wait-desktop 2>>"$T/client.err") || fail "warm logon $i: $out"
        field desktop_ms <<<"$out" >>"$T/warm.ff"
        field connect_ms <<<"$out" >>"$T/warm.conn"
        phases_now >>"$T/warm.phases"
        end_all_sessions
        if [ $((i % 2)) -eq 1 ]; then one_shadow; fi
done
handshakes_of "$T/warm.phases" >"$T/warm.hs"
wait_for 300 "the warm desktop" settled 1

# ---- 1b. cold logons: no warm desktop, each logon boots one ----
ctl pool set desk --warm 0 >/dev/null
no_desktops() { [ "$(jctl desktop list --pool desk | jq length)" -eq 0 ]; }
wait_for 60 "no desktop left" no_desktops
: >"$T/cold.ff"
: >"$T/cold.conn"
: >"$T/cold.phases"
for i in $(seq 1 "$NC"); do
        out=$(rdp --user cuser --password pw-c --wait-desktop 2>>"$T/client.err") || fail "cold logon $i: $out"
        field desktop_ms <<<"$out" >>"$T/cold.ff"
        field connect_ms <<<"$out" >>"$T/cold.conn"
        phases_now >>"$T/cold.phases"
        end_all_sessions
        wait_for 60 "no desktop left" no_desktops
done
handshakes_of "$T/cold.phases" >"$T/cold.hs"

# ---- 1c. ten users at once, warm pool of ten, three rounds ----
ctl pool set desk --warm $NCONC >/dev/null
: >"$T/conc.ff"
: >"$T/conc.conn"
: >"$T/conc.phases"
: >"$T/conc.wall"
for r in $(seq 1 $RCONC); do
        wait_for 900 "$NCONC ready desktops" settled $NCONC
        sleep 1
        pids=()
        t0=$(now_ms)
        for i in $(seq 1 $NCONC); do
                rdp --user "user$i" --password "pw$i" --wait-desktop >"$T/conc.$i.json" 2>>"$T/client.err" &
                pids+=($!)
        done
        PIDS+=("${pids[@]}")
        bad=0
        for i in $(seq 1 $NCONC); do
                wait "${pids[$((i - 1))]}" || { bad=$((bad + 1)); echo "user$i: $(cat "$T/conc.$i.json")" >&2; }
                field desktop_ms <"$T/conc.$i.json" >>"$T/conc.ff"
                field connect_ms <"$T/conc.$i.json" >>"$T/conc.conn"
        done
        # Wall time: start → the last user's first frame (the --wait-frame settle is not counted).
        jq -s --argjson n $NCONC '[.[].desktop_ms] | max' "$T"/conc.*.json >>"$T/conc.wall"
        [ $bad -eq 0 ] || fail "$bad of $NCONC concurrent logons failed in round $r"
        ndesk=$(jctl session list | jq '[.[].desktop] | unique | length')
        [ "$ndesk" -eq $NCONC ] || fail "round $r: $NCONC sessions on $ndesk desktops"
        phases_now >>"$T/conc.phases"
        end_all_sessions
done
handshakes_of "$T/conc.phases" >"$T/conc.hs"
ctl pool set desk --warm 1 >/dev/null
wait_for 120 "the pool back to one desktop" sh -c "[ \"\$($SLATECTL --socket $T/run/control.sock --json desktop list --pool desk | jq length)\" -le 1 ]"

# ---- 2. full-screen frame cost ----
# alice logs on again (her colour, her name): her desktop stays up, disconnected, for the harness.
"$RDPC" --host 127.0.0.1 --port "$RDP_PORT" --timeout 120 --width $W --height $H --user alice --password secret \
        --wait-frame --expect-pixel "20,20,$color" >"$T/alice2.out" 2>&1 || fail "alice's second logon: $(cat "$T/alice2.out")"
adesk=$(jctl session list --user alice | jq -r '.[0].desktop')
vnc=$(jctl desktop list | jq -r --arg d "$adesk" '.[] | select(.id == $d) | .run_dir')/vnc.sock
[ -S "$vnc" ] || fail "no VNC socket for alice's desktop ($vnc)"
# Booted, nothing else booting or going away; alice's desktop stays assigned.
refilled() { jctl desktop list --pool desk | jq -e '([.[] | select(.state == "ready")] | length >= 1) and all(.state == "ready" or .state == "assigned")' >/dev/null; }
wait_for 300 "the pool refilled" refilled

# One slate-session through the harness: CODEC, BENCH frames. Sets HR_BYTES to what slate-session's
# socket sent once the connection went quiet, and leaves its log in $T/h.CODEC.BENCH.log. Runs in
# this shell (not in $(...)) so that its processes are in PIDS for the cleanup.
harness_run() { # codec bench client-args...
        local codec=$1 bench=$2 port hp cp log=$T/h.$1.$2.log
        shift 2
        port=$(free_port)
        SLATE_SESSION_CODEC=$codec SLATE_SESSION_BENCH_FRAMES=$bench \
                "$HARNESS" --port "$port" --vnc "$vnc" --cert "$T/tls/cert.pem" --key "$T/tls/key.pem" \
                --user alice --password secret --session "$SESSION" >"$log" 2>&1 &
        hp=$!
        PIDS+=("$hp")
        for _ in $(seq 1 100); do grep -q listening "$log" && break; sleep 0.05; done
        "$@" --host 127.0.0.1 --port "$port" >"$log.client" 2>&1 &
        cp=$!
        PIDS+=("$cp")
        for _ in $(seq 1 600); do grep -q 'first-frame' "$log" && break; sleep 0.05; done
        grep -q 'first-frame' "$log" || fail "harness $codec: no first frame: $(tail -5 "$log") $(tail -3 "$log.client")"
        wait_quiet "$port" 700 60 || fail "harness $codec: the connection never went quiet"
        HR_BYTES=$(tcp_sent "$port")
        kill -TERM "$cp" 2>/dev/null || true
        wait "$cp" 2>/dev/null || true
        wait "$hp" 2>/dev/null || true
        # xfreerdp leaves its TSMF shared memory behind, named after its pid.
        rm -f "/dev/shm/com.freerdp.xfreerdp.tsmf_$(printf '%016X' "$cp")"
}
# The per-frame log lines of the extra full frames (the first full frame, the logon's, left out).
frame_lines() { grep -E 'frame [0-9]+: full ' "$1" | tail -n +2; }

# NSCodec: rdp-client offers legacy, RemoteFX or GFX only; xfreerdp offers NSC with /nsc.
# It needs a display of its own (not the shadow's).
bench_xvfb XD2 xvfb2
xfreerdp_nsc() { # --host H --port P (as rdp-client's)
        exec env HOME="$T/xf-home" DISPLAY="$XD2" xfreerdp /v:"$2:$4" /u:alice /p:secret /cert:ignore /sec:tls \
                /size:${W}x${H} /bpp:32 /nsc -gfx -clipboard
}
mkdir -p "$T/xf-home"

client_for() {
        case $1 in
        rfx) echo "$RDPC --codec rfx --user alice --password secret --width $W --height $H --wait-frame --hold 120" ;;
        planar) echo "$RDPC --codec legacy --user alice --password secret --width $W --height $H --wait-frame --hold 120" ;;
        nsc) echo "xfreerdp_nsc" ;;
        esac
}
declare -A s_enc_bytes s_enc_cpu s_tcp s_first s_name
for codec in rfx nsc planar; do
        # shellcheck disable=SC2046 # the client command line is split on purpose
        harness_run "$codec" 0 $(client_for $codec)
        b0=$HR_BYTES
        # shellcheck disable=SC2046
        harness_run "$codec" $NFRAMES $(client_for $codec)
        b1=$HR_BYTES
        frame_lines "$T/h.$codec.$NFRAMES.log" >"$T/frames.$codec"
        nf=$(wc -l <"$T/frames.$codec")
        [ "$nf" -ge $NFRAMES ] || fail "slate-session $codec logged $nf extra full frames, expected $NFRAMES: $(tail -5 "$T/h.$codec.$NFRAMES.log")"
        s_name[$codec]=$(sed -n 's/.*: full [0-9x]* \([a-z]*\):.*/\1/p' "$T/frames.$codec" | sort -u | tr '\n' ' ')
        s_enc_bytes[$codec]=$(sed -n 's/.*: \([0-9]*\) bytes in.*/\1/p' "$T/frames.$codec" | median)
        s_enc_cpu[$codec]=$(sed -n 's/.*(cpu \([0-9.]*\) ms).*/\1/p' "$T/frames.$codec" | median)
        s_tcp[$codec]=$(( (b1 - b0) / NFRAMES ))
        s_first[$codec]=$b0
done

# The shadow: one client per codec, idle CPU first, then NCHANGES full-screen changes.
declare -A r_bytes r_cpu r_cpu_net r_idle r_first
# NCHANGES distinct pictures (alice's screen, every channel +k %): no change repeats an earlier
# one, so the bulk compressor's history cannot turn a frame into back-references.
for j in $(seq 1 $NCHANGES); do convert "$T/alice.ppm" -evaluate add "$j%" "$T/alice-v$j.ppm"; done
for codec in rfx planar; do
        case $codec in rfx) copt=rfx ;; planar) copt=legacy ;; esac
        shadow_rdp --codec "$copt" --wait-frame --hold 300 >"$T/shadow-$codec.json" 2>>"$T/shadow-client.err" &
        cp=$!
        PIDS+=("$cp")
        has_conn() { [ "$(tcp_sent "$SH_PORT")" -gt 0 ]; }
        wait_for 60 "the shadow connection" has_conn
        sleep 2
        wait_quiet "$SH_PORT" 1000 30 || fail "shadow ($codec) never went quiet"
        r_first[$codec]=$(tcp_sent "$SH_PORT")
        # Idle: what the shadow burns with nothing changing, over 5 s.
        i0=$(cpu_ms "$SHADOW_PID"); t0=$(now_ms); sleep 5
        i1=$(cpu_ms "$SHADOW_PID"); t1=$(now_ms)
        idle_rate=$(awk -v c=$((i1 - i0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.4f", c / t }')
        b0=$(tcp_sent "$SH_PORT"); c0=$(cpu_ms "$SHADOW_PID"); t0=$(now_ms)
        for j in $(seq 1 $NCHANGES); do
                before=$(tcp_sent "$SH_PORT")
                show "$T/alice-v$j.ppm"
                moved() { [ "$(tcp_sent "$SH_PORT")" -gt "$before" ]; }
                wait_for 10 "the shadow sending change $j" moved
                wait_quiet "$SH_PORT" 500 30 || fail "shadow ($codec) never went quiet after change $j"
        done
        b1=$(tcp_sent "$SH_PORT"); c1=$(cpu_ms "$SHADOW_PID"); t1=$(now_ms)
        kill -TERM "$cp" 2>/dev/null || true
        wait "$cp" 2>/dev/null || true
        r_bytes[$codec]=$(( (b1 - b0) / NCHANGES ))
        r_cpu[$codec]=$(awk -v c=$((c1 - c0)) -v n=$NCHANGES 'BEGIN { printf "%.1f", c / n }')
        r_cpu_net[$codec]=$(awk -v c=$((c1 - c0)) -v t=$((t1 - t0)) -v r="$idle_rate" -v n=$NCHANGES \
                'BEGIN { printf "%.1f", (c - r * t) / n }')
        r_idle[$codec]=$(awk -v r="$idle_rate" 'BEGIN { printf "%.0f", r * 100 }')
        show "$T/alice.ppm"
done
shadow_rss=$(awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$SHADOW_PID/status")

# ---- report ----
read -r wp50 wp95 < <(stats 95 <"$T/warm.ff")
read -r cp50 cp95 < <(stats 95 <"$T/cold.ff")
read -r kp50 kp95 < <(stats 95 <"$T/conc.ff")
read -r sp50 sp95 < <(stats 95 <"$T/shadow.ff")
read -r wallp50 wallmax < <(stats 95 <"$T/conc.wall")
wallmax=$(sort -n "$T/conc.wall" | tail -1)
wc50=$(median <"$T/warm.conn"); cc50=$(median <"$T/cold.conn"); kc50=$(median <"$T/conc.conn"); sc50=$(median <"$T/shadow.conn")
nw=$(wc -l <"$T/warm.ff"); nco=$(wc -l <"$T/cold.ff"); nk=$(wc -l <"$T/conc.ff"); ns=$(wc -l <"$T/shadow.ff")
busy_end="load $(cut -d' ' -f1-3 /proc/loadavg), $(( $(foreign_qemu) - $(our_qemus | wc -l) )) other QEMU processes running"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "–" }'; }

cat <<MD
## RDP logon and frames

Logon = \`tests/e2e/rdp-client --wait-desktop --width $W --height $H\` (FreeRDP 2.11 client library, software
gdi, TLS, legacy bitmap codec offered: both servers answer with planar bitmaps) from process start to the
first frame of the desktop (Slate: \`desktop_ms\`, past slate-session's progress screen; the shadow:
\`first_frame_ms\`, its first non-black frame; \`connect_ms\` = until \`freerdp_connect\` returned). **Slate** = a
private slated (PAM through pam_wrapper + pam_matrix, RDP listener on loopback, slate-session per
connection) with a pool of the tiny test guest (\`--memory 256M\`), accelerator **$accel**,
boot-parallel $boot_parallel. **freerdp-shadow** = \`freerdp-shadow-cli -auth /sec:tls\` (FreeRDP 2.11, no
credential check) on an Xvfb ${W}x${H}x24 showing alice's session screen (taken from Slate with
\`rdp-client --screenshot\`, $img_size), measured in this run by the same client, interleaved with the warm
Slate logons (alternating order). Warm: each logon followed by \`slatectl session end\` and the refill
booting to ready before the next one. Cold: pool \`--warm 0\`, every logon boots its desktop. Concurrent:
pool \`--warm $NCONC\`, $NCONC users started at once, $RCONC rounds (each round on $NCONC fresh warm desktops).
Times in s, p50/p95 nearest rank. At the start of the section: $busy_start.

| server, case | N | first frame p50 | p95 | connect p50 |
|---|---|---|---|---|
| Slate, warm desktop | $nw | $(sec "$wp50") | $(sec "$wp95") | $(sec "$wc50") |
| Slate, cold desktop (boots at logon) | $nco | $(sec "$cp50") | $(sec "$cp95") | $(sec "$cc50") |
| Slate, $NCONC at once (all users of $RCONC rounds) | $nk | $(sec "$kp50") | $(sec "$kp95") | $(sec "$kc50") |
| freerdp-shadow-cli on Xvfb, measured here now | $ns | $(sec "$sp50") | $(sec "$sp95") | $(sec "$sc50") |
| xrdp 0.9.21 new session (research/README.md, not this run) | – | 1.61 | 2.47 (max) | – |
| FreeRDP shadow (research/README.md, not this run) | – | 1.51 (bimodal 0.42 / 1.51) | – | – |

$NCONC at once: wall time from starting the $NCONC clients to the last one's first frame: median $(sec "$wallp50") s, worst $(sec "$wallmax") s over $RCONC rounds.

Reading: Slate's warm logon (p50 $(sec "$wp50") s) is $(ratio 1610 "$wp50")× faster than xrdp's new-session logon from the research notes; freerdp-shadow measured here now, which only mirrors a screen that is already up and checks no password, takes $(sec "$sp50") s ($(ratio "$sp50" "$wp50")× Slate's warm time); a cold desktop adds the boot ($(sec "$cp50") s).

slated's own logon timeline (\`slatectl --json session list\` → \`phases\`, the same numbers as
\`slatectl session show\` and the audit line): **handshake** = accept → the client's credentials,
**auth** = the PAM check, **desktop** = authenticated → a desktop assigned (waits for the boot when cold),
**agent** = desktop → the guest agent started the user's session, **first frame** = accept → the whole
screen sent (slate-session's clock); the client's \`first_frame_ms\` adds its own start-up and connect
before the accept. Medians in ms.

| case | sessions | handshake | auth | desktop | agent | server first frame | rest (attach, VNC, encode, send) | client first frame |
|---|---|---|---|---|---|---|---|---|
MD
for c in warm cold conc; do
        case $c in warm) name="warm" ;; cold) name="cold" ;; conc) name="$NCONC at once" ;; esac
        hs=$(median <"$T/$c.hs")
        a=$(cut -d' ' -f1 "$T/$c.phases" | median)
        d=$(cut -d' ' -f2 "$T/$c.phases" | median)
        g=$(cut -d' ' -f3 "$T/$c.phases" | median)
        f=$(cut -d' ' -f4 "$T/$c.phases" | median)
        rest=$(awk '{ r = $4 - $1 - $2 - $3; print r }' "$T/$c.phases" | median)
        cf=$(median <"$T/$c.ff")
        rest=$(awk -v r="$rest" -v h="$hs" 'BEGIN { if (h == "–" || h == "") print "–"; else print r - h }')
        echo "| $name | $(wc -l <"$T/$c.phases") | $hs | $a | $d | $g | $f | $rest | $cf |"
done
cat <<MD

Reading: in the warm case the server's share is the first-frame column; everything between it and the client's figure is the client starting and connecting before slated accepts (FreeRDP 2.11 polls with \`Sleep(100)\` during connect, tests/e2e/README.md).

### Full-screen frame cost, same image both sides

alice's session screen ($img_size, the tiny guest's purple screen with her name and a box). **Slate**:
\`tests/e2e/session-harness\` runs slate-session against alice's running desktop (its QEMU VNC socket),
\`SLATE_SESSION_CODEC=<codec>\`; with \`SLATE_SESSION_BENCH_FRAMES=$NFRAMES\` slate-session sends $NFRAMES more
full frames after the logon's and logs bytes and encode CPU of each (median of the $NFRAMES shown as
"encoder"). The encoder's bytes are the codec payload before RDP bulk compression; its CPU is
CLOCK_PROCESS_CPUTIME_ID around the encode (RemoteFX encodes on worker threads, so it exceeds the wall
time). "Wire" = TCP payload sent by the server's socket (\`ss -ti\` bytes_sent: TLS, RDP framing, bulk
compression included): per extra frame = (run with $NFRAMES extra frames − run with 0) / $NFRAMES — those
$NFRAMES frames are the *same* picture again, so with bulk compression (planar, NSC) they mostly become
back-references to the compressor's history and are not the cost of a new picture; "connect + first
frame" = everything the server sent from accept to the first full frame going quiet, the comparable figure
for a picture the client has not seen. Clients: RemoteFX and planar =
rdp-client \`--codec rfx\` / \`--codec legacy\`; NSCodec = xfreerdp \`/nsc\` on a second Xvfb (rdp-client
cannot offer NSC). **freerdp-shadow**: the same rdp-client connected to the shadow; the Xvfb root
changes $NCHANGES times, each time to a picture not shown before: alice's screen with every channel
+k % (k = 1..$NCHANGES; \`display -window root\`, so every tile changes); per change: TCP payload sent by the shadow's socket
(\`ss -ti\` bytes_sent) and the shadow's CPU time (/proc/PID/stat, all threads), raw and minus its idle
rate measured just before over 5 s with the client connected and nothing changing. The shadow picks
RemoteFX when the client offers it, planar bitmaps (32 bpp) when only bitmaps are offered (FreeRDP 2.11
shadow_client.c); its Xvfb and ImageMagick's CPU are not counted, nor is QEMU's on Slate's side.

| server | client | codec (as sent) | bytes per full frame, encoder | wire per extra full frame | wire, connect + first frame | CPU ms per full frame |
|---|---|---|---|---|---|---|
MD
for codec in rfx nsc planar; do
        case $codec in rfx) cl="rdp-client --codec rfx" ;; nsc) cl="xfreerdp /nsc" ;; planar) cl="rdp-client (legacy)" ;; esac
        echo "| Slate (slate-session) | $cl | ${s_name[$codec]% } | ${s_enc_bytes[$codec]} | ${s_tcp[$codec]} (same picture again) | ${s_first[$codec]} | ${s_enc_cpu[$codec]} (encode only) |"
done
for codec in rfx planar; do
        case $codec in rfx) cn="remotefx"; cl="rdp-client --codec rfx" ;; planar) cn="planar bitmaps"; cl="rdp-client (legacy)" ;; esac
        echo "| freerdp-shadow-cli | $cl | $cn | – | ${r_bytes[$codec]} (new picture each time) | ${r_first[$codec]} | ${r_cpu[$codec]} whole process, ${r_cpu_net[$codec]} minus its idle rate (idle: ${r_idle[$codec]} % of a core) |"
done
cat <<MD

Reading: same codec, same picture: RemoteFX costs Slate $(kb "${s_enc_bytes[rfx]}") kB and ${s_enc_cpu[rfx]} ms of encode CPU per full frame against the shadow's $(kb "${r_bytes[rfx]}") kB and ${r_cpu_net[rfx]} ms (idle-corrected, whole process: capture, compare, encode, TLS); on this flat picture NSCodec is Slate's cheapest codec in both bytes and CPU. Shadow RSS at the end: $shadow_rss MB after $((ns + 3)) connections. At the end of the section: $busy_end.

MD
exit 0
