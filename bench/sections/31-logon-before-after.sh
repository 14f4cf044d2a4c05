#!/usr/bin/env bash
# Section: logon before/after a change. Two private slateds side by side (a baseline build from
# BENCH_BASELINE_BUILDDIR, and SLATE_BUILDDIR), each with its own state, loopback RDP port and pool
# of one warm tiny test guest, PAM through pam_wrapper as 30-rdp.sh; warm logons and reconnects
# measured by one test client, interleaved A,B / B,A so both sides see the same machine state.
# Everything lives in its own temp dirs; every process started here is ended by its pid on exit.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

skip() { echo "$*" >&2; exit 77; }
[ -n "${BENCH_BASELINE_BUILDDIR:-}" ] ||
        skip "BENCH_BASELINE_BUILDDIR not set (the build directory of the baseline to compare SLATE_BUILDDIR with)"
declare -A BD SRC REV
BD[a]=$(cd "$BENCH_BASELINE_BUILDDIR" && pwd -P)
BD[b]=$(cd "${SLATE_BUILDDIR:?set by bench/run}" && pwd -P)
# The same client for both sides, so only the server differs: the "after" build's.
RDPC=${BD[b]}/tests/e2e/rdp-client
N=${BENCH_N:-15}
[ "$N" -le 15 ] || N=15 # every warm sample is followed by a guest boot (the refill) under TCG, per side
W=1280
H=800

for t in qemu-system-x86_64 qemu-img jq; do
        command -v $t >/dev/null || skip "$t not installed (apt-get install qemu-system-x86 qemu-utils jq)"
done
[ -x "$RDPC" ] || skip "$RDPC not built (make tests/e2e/rdp-client)"
for s in a b; do
        B=${BD[$s]}
        # Each side's own source tree (its agent session script), from its build's Makefile.
        SRC[$s]=$(sed -n 's/^abs_top_srcdir = //p' "$B/Makefile" 2>/dev/null || true)
        [ -d "${SRC[$s]}" ] || skip "$B is not a configured build directory"
        REV[$s]=$(git -C "${SRC[$s]}" rev-parse --short HEAD 2>/dev/null || echo "?")
        git -C "${SRC[$s]}" diff --quiet HEAD 2>/dev/null || REV[$s]="${REV[$s]}+changes"
        for f in broker/slated broker/slatectl rdp/slate-session; do
                [ -x "$B/$f" ] || skip "$B/$f not built"
        done
        for f in vmlinux initrd.img disk.qcow2 cmdline; do
                [ -s "$B/tests/guest/out/$f" ] || skip "test guest not in $B/tests/guest/out ($f missing)"
        done
done
PAM_MOD=$(pkg-config --variable=modules pam_wrapper 2>/dev/null || true)
PAM_LIB=$(ls /usr/lib/*/libpam_wrapper.so 2>/dev/null | head -1 || true)
[ -n "$PAM_MOD" ] && [ -f "$PAM_MOD/pam_matrix.so" ] && [ -n "$PAM_LIB" ] ||
        skip "pam_wrapper not installed (apt-get install libpam-wrapper)"

foreign_qemu() { pgrep -c qemu-system || true; }
load1() { cut -d' ' -f1 /proc/loadavg; }
busy_start="load $(cut -d' ' -f1-3 /proc/loadavg), $(foreign_qemu) other QEMU processes running"

# "slate-bench" in the names: other benchmarks wait while `pgrep -f slate-bench` finds us.
T=$(mktemp -d "${BENCH_DISK_DIR:-/var/tmp}/slate-bench-logon.XXXXXX")
RAM=$(mktemp -d "${BENCH_RAM_DIR:-/dev/shm}/slate-bench-logon.XXXXXX")
chmod 755 "$T" "$RAM"
declare -A PID PORT
PID[a]=
PID[b]=

# QEMUs of one side's slated: from their pid files, checked against their command line (pid reuse).
our_qemus() {
        local f p
        for f in "$T"/$1/run/desktops/*/qemu.pid; do
                [ -f "$f" ] || continue
                p=$(cat "$f" 2>/dev/null) || continue
                grep -qF "$T/$1/run/desktops/" "/proc/$p/cmdline" 2>/dev/null && echo "$p"
        done
        return 0
}
cleanup() {
        set +e
        local s p q
        for s in a b; do
                q=$(our_qemus $s)
                if [ -n "${PID[$s]}" ]; then
                        kill -KILL "${PID[$s]}" 2>/dev/null
                        wait "${PID[$s]}" 2>/dev/null
                fi
                for p in $q $(our_qemus $s); do kill -KILL "$p" 2>/dev/null; done
        done
        sleep 0.3
        if [ -n "${SLATE_BENCH_KEEP:-}" ]; then echo "kept $T" >&2; return; fi
        rm -rf "$T" "$RAM"
}
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT TERM

fail() {
        echo "31-logon-before-after: $*" >&2
        local s
        for s in a b; do
                [ -f "$T/$s/slated.log" ] || continue
                echo "--- slated $s (${BD[$s]}):" >&2
                grep -v -e 'control: uid' -e 'qmp ' "$T/$s/slated.log" | tail -n 8 >&2
        done
        exit 1
}
ctl() { local s=$1; shift; "${BD[$s]}/broker/slatectl" --socket "$T/$s/run/control.sock" "$@"; }
jctl() { local s=$1; shift; "${BD[$s]}/broker/slatectl" --socket "$T/$s/run/control.sock" --json "$@"; }

wait_for() { # SECONDS DESCRIPTION COMMAND...
        local secs=$1 what=$2
        shift 2
        local end=$((SECONDS + secs))
        while [ $SECONDS -lt $end ]; do
                "$@" && return 0
                sleep 0.25
        done
        fail "timed out after ${secs}s waiting for $what"
}
free_port() {
        local p
        for p in $(shuf -i 20000-60000 -n 50); do
                [ "$p" = "${PORT[a]:-}" ] && continue
                (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
        done
        fail "no free port"
}

# stats: numbers on stdin ("–" lines ignored) → "p50 p90" (nearest rank).
stats() {
        { grep -v '^–$' || true; } | sort -n | awk '{ v[NR] = $1 } END {
                if (NR == 0) { print "– –"; exit }
                m = int(NR * 0.5); if (m < NR * 0.5) m++; if (m < 1) m = 1
                p = int(NR * 0.9); if (p < NR * 0.9) p++; if (p < 1) p = 1
                print v[m], v[p] }'
}

# desk_user_rgb USER: the colour the test guest paints USER's session with (the after tree's).
. "${SLATE_SRCDIR:?set by bench/run}/tests/guest/desk-rgb.sh"

# ---- one PAM setup for both (pam_wrapper + pam_matrix), as 30-rdp.sh ----
mkdir -p "$T/pam.d"
printf '%s\n' "alice:secret:slate" "wuser:pw-w:slate" >"$T/passdb"
for t in auth account; do echo "$t required $PAM_MOD/pam_matrix.so passdb=$T/passdb"; done >"$T/pam.d/slate"
echo "session required pam_permit.so" >>"$T/pam.d/slate"    # a logon opens a PAM session
for t in auth account password session; do echo "$t required pam_deny.so"; done >"$T/pam.d/other"

# ---- two private slateds, each with its own dirs, port and pool ----
start_side() { # SIDE
        local s=$1 B=${BD[$1]} D=$T/$1 G=${BD[$1]}/tests/guest/out agent
        mkdir -p "$D" "$RAM/$s"
        PORT[$s]=$(free_port)
        cat >"$D/slate.conf" <<CONF
state-dir = $D/state
run-dir = $D/run
ram-dir = $RAM/$s
log-level = debug
accel = auto
probe-kernel = $G/vmlinux
probe-initrd = $G/initrd.img
tls-cert = $D/tls/cert.pem
tls-key = $D/tls/key.pem
listen = 127.0.0.1:${PORT[$s]}
session-program = $B/rdp/slate-session
handshake-timeout = 10
CONF
        # Image publishing injects the agent: each tree's own convention (tests/integration/lib.sh):
        # the test guest's build of the agent where the tree has one, else the agent itself (which
        # drew the test desktop before the two were split).
        agent=$B/tests/guest/slate-agent-testdesk
        [ -x "$agent" ] || agent=$B/agent/slate-agent
        echo "agent-binary = $agent" >>"$D/slate.conf"
        [ -f "${SRC[$s]}/agent/session-script" ] && echo "agent-session-script = ${SRC[$s]}/agent/session-script" >>"$D/slate.conf"
        if [ -s "$G/guestfs-kernel.env" ]; then
                . "$G/guestfs-kernel.env"
                if [ -r "${SLATE_GUESTFS_KERNEL:-}" ] && [ -d "${SLATE_GUESTFS_MODULES:-}" ]; then
                        printf 'guestfs-kernel = %s\nguestfs-modules = %s\n' "$SLATE_GUESTFS_KERNEL" "$SLATE_GUESTFS_MODULES" >>"$D/slate.conf"
                        export SUPERMIN_KERNEL=$SLATE_GUESTFS_KERNEL SUPERMIN_MODULES=$SLATE_GUESTFS_MODULES
                        export SUPERMIN_KERNEL_VERSION=${SLATE_GUESTFS_MODULES##*/}
                        export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg
                fi
        fi
        LD_PRELOAD="$PAM_LIB" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
                "$B/broker/slated" --config "$D/slate.conf" --foreground >>"$D/slated.log" 2>&1 &
        PID[$s]=$!
        for _ in $(seq 1 600); do
                ctl $s status >/dev/null 2>&1 && break
                kill -0 "${PID[$s]}" 2>/dev/null || fail "slated $s exited at start"
                sleep 0.1
        done
        ctl $s status >/dev/null 2>&1 || fail "slated $s did not open its control socket in 60 s"
        jctl $s image publish tiny "$G/disk.qcow2" --kernel "$G/vmlinux" --initrd "$G/initrd.img" \
                --cmdline "$(cat "$G/cmdline")" --current >/dev/null 2>"$D/publish.err" ||
                fail "image publish ($s) failed: $(tail -3 "$D/publish.err")"
        ctl $s pool create desk --image tiny --warm 1 --max 3 --memory 256M --disconnect-timeout 600 >/dev/null ||
                fail "pool create ($s) failed"
        ctl $s pool entitle desk all >/dev/null || fail "pool entitle ($s) failed"
}
# Publishing boots a libguestfs appliance: one side at a time.
start_side a
start_side b
declare -A ACCEL
for s in a b; do ACCEL[$s]=$(jctl $s status | jq -r .accel); done

# A ready desktop, nothing booting or going away (the session's desktop may stay assigned).
quiet_one() { jctl "$1" desktop list --pool desk | jq -e '([.[] | select(.state == "ready")] | length >= 1) and all(.state == "ready" or .state == "assigned")' >/dev/null; }
quiet_both() { quiet_one a && quiet_one b; }
disconnected() { jctl "$1" session list --user wuser | jq -e 'length == 1 and .[0].state == "disconnected"' >/dev/null; }
no_sessions() { [ "$(jctl "$1" session list | jq length)" -eq 0 ]; }
end_sessions() {
        local s id
        for s in a b; do
                for id in $(jctl $s session list | jq -r '.[].id'); do ctl $s session end "$id" >/dev/null || fail "session end $s $id"; done
        done
        for s in a b; do wait_for 120 "sessions of $s ended" no_sessions $s; done
}
rdp() { # SIDE client-args...
        local s=$1; shift
        "$RDPC" --host 127.0.0.1 --port "${PORT[$s]}" --timeout 120 --width $W --height $H "$@"
}

wait_for 600 "a ready desktop on both sides" quiet_both

# ---- warm-up (not counted): alice's screen on both sides, checked by its colour ----
color=$(desk_user_rgb alice)
for s in a b; do
        rdp $s --user alice --password secret --wait-frame --expect-pixel "20,20,$color" >"$T/$s/alice.out" 2>&1 ||
                fail "alice's warm-up logon on $s: $(cat "$T/$s/alice.out")"
done
end_sessions

# One sample: SIDE KIND (warm | reconnect). Appends to $T/SIDE.KIND one line:
#   client_first_frame client_connect handshake auth desktop agent attach ff_after_attach logon load
# ("–" where the side does not expose it). handshake: the rdp-handshake phase slate-session reports
# (before: only in slated's debug log; after: .phases.handshake_ms, the same number). logon: accept →
# first frame, slate-session's clock (before: .phases.first_frame_ms = .logon_ms; after: .logon_ms).
sample() {
        local s=$1 kind=$2 l0 out ff conn hs js ld
        ld=$(load1)
        l0=$(wc -l <"$T/$s/slated.log")
        out=$(rdp $s --user wuser --password pw-w --wait-desktop --json 2>>"$T/client.err") ||
                fail "$kind logon on $s: $out"
        ff=$(jq -r '.desktop_ms' <<<"$out")
        conn=$(jq -r '.connect_ms' <<<"$out")
        wait_for 60 "wuser's session on $s disconnected" disconnected $s
        js=$(jctl $s session list --user wuser | jq -c '.[0]')
        hs=$(jq -r '.phases.handshake_ms // empty' <<<"$js")
        [ -n "$hs" ] || hs=$(tail -n +"$((l0 + 1))" "$T/$s/slated.log" |
                sed -n 's/.*phase rdp-handshake took \([0-9]*\) ms.*/\1/p' | tail -1)
        jq -r --arg ff "$ff" --arg conn "$conn" --arg hs "${hs:-–}" --arg kind "$kind" --arg ld "$ld" '
                def v(x): if x == null then "–" else (x | tostring) end;
                if .phases == null then error("no phases") else . end |
                [$ff, $conn, $hs, v(.phases.auth_ms),
                 (if $kind == "reconnect" then "–" else v(.phases.desktop_ms) end),
                 (if $kind == "reconnect" then "–" else v(.phases.agent_ms) end),
                 v(.phases.attach_ms),
                 (if .phases.attach_ms == null then "–" else v(.phases.first_frame_ms) end),
                 v(.logon_ms // .phases.first_frame_ms), $ld] | join(" ")' <<<"$js" >>"$T/$s.$kind" 2>/dev/null ||
                fail "$kind on $s: no logon timeline in session list: $js"
}
# Before the refactor a reconnect kept the first logon's desktop and agent figures (stale): not
# counted. After it, a reconnect's agent step is skipped and has no figure.

for s in a b; do : >"$T/$s.warm"; : >"$T/$s.reconnect"; done
for i in $(seq 1 "$N"); do
        if [ $((i % 2)) -eq 1 ]; then order="a b"; else order="b a"; fi
        for s in $order; do
                wait_for 600 "both pools settled" quiet_both
                sample $s warm
        done
        for s in $order; do
                wait_for 600 "both pools settled" quiet_both
                sample $s reconnect
        done
        end_sessions
done

# ---- report ----
# col FILE N → the Nth column
col() { cut -d' ' -f"$2" "$1"; }
# derived: attach → first frame (logon − handshake − auth − desktop − agent), auth done → first frame
rest_warm() { awk '$3 != "–" { print $9 - $3 - $4 - $5 - $6 }' "$1"; }
rest_rc() { awk '$3 != "–" { print $9 - $3 - $4 }' "$1"; }
cell() { # p50 p90
        if [ "$1" = "–" ]; then echo "–"; else echo "$1 / $2"; fi
}
row() { # label, then commands printing the numbers of a and of b (as "cmd-a" "cmd-b")
        local label=$1 pa pa9 pb pb9 r
        read -r pa pa9 < <(eval "$2" | stats)
        read -r pb pb9 < <(eval "$3" | stats)
        r=$(awk -v a="$pa" -v a9="$pa9" -v b="$pb" -v b9="$pb9" 'BEGIN {
                if (a == "–" || b == "–") { print "–"; exit }
                if (a < 5 || a9 < 5) { print "– (a few ms)"; exit }
                printf "%.2f / %.2f", b / a, b9 / a9 }')
        echo "| $label | $(cell "$pa" "$pa9") | $(cell "$pb" "$pb9") | $r |"
}
# paired: per iteration, after/before of the client's first frame (same machine state, back to back)
paired() { paste -d' ' <(col "$T/a.$1" 1) <(col "$T/b.$1" 1) | awk '$1 > 0 { printf "%.3f\n", $2 / $1 }' | stats | cut -d' ' -f1; }
nw=$(wc -l <"$T/a.warm")
busy_end="load $(cut -d' ' -f1-3 /proc/loadavg), $(( $(foreign_qemu) - $(our_qemus a | wc -l) - $(our_qemus b | wc -l) )) other QEMU processes running"
loads=$(cat "$T"/[ab].warm "$T"/[ab].reconnect | cut -d' ' -f10 | sort -n | sed -n '1p;$p' | tr '\n' ' ')
# The handshake (slate-session and the client's connect) tends to be bimodal: how many are short.
short() { col "$T/$1" 3 | awk '$1 != "–" && $1 < 250 { n++ } END { print n + 0 }'; }
pw=$(paired warm)
pr=$(paired reconnect)

cat <<MD
## Logon before/after: ${REV[a]} vs ${REV[b]}

Two private slateds side by side, started from two builds: **before** = \`${BD[a]}\` (${REV[a]}),
**after** = \`${BD[b]}\` (${REV[b]}). Each has its own state and run dirs, its own loopback RDP port,
PAM through pam_wrapper + pam_matrix (the same passdb), and a pool of one warm tiny test guest
(\`--memory 256M\`, \`--warm 1\`), published with its own tree's agent build (the test guest's
\`slate-agent-testdesk\` where the tree has one, else \`agent/slate-agent\`). Accelerator: before
**${ACCEL[a]}**, after **${ACCEL[b]}**. One client for both sides, the after build's
\`tests/e2e/rdp-client --wait-frame --width $W --height $H\`: \`first_frame_ms\` = process start → the
first non-black frame, \`connect_ms\` = until \`freerdp_connect\` returned.

**Warm logon**: user wuser, no session, a booted desktop waiting. **Reconnect**: wuser again, right
after, to its disconnected session (the client left after its first frame). Per iteration: warm
on both sides, then reconnect on both, then both sessions ended; the order alternates (A,B then B,A),
and before every logon both pools are settled (a ready desktop, nothing booting: each warm logon is
followed by a refill boot). N = $nw iterations, so $nw samples per side and case. Times in ms,
**p50 / p90** (nearest rank); after/before is the ratio of the p50s / of the p90s. Load average
(1 min) when the samples started: $loads(min, max). At the start of the section: $busy_start.

| measure (ms, p50 / p90) | before (${REV[a]}) | after (${REV[b]}) | after/before |
|---|---|---|---|
$(row "warm logon: client first frame" "col $T/a.warm 1" "col $T/b.warm 1")
$(row "warm logon: client connect" "col $T/a.warm 2" "col $T/b.warm 2")
$(row "warm, server: accept → first frame" "col $T/a.warm 9" "col $T/b.warm 9")
$(row "warm, server: handshake" "col $T/a.warm 3" "col $T/b.warm 3")
$(row "warm, server: auth" "col $T/a.warm 4" "col $T/b.warm 4")
$(row "warm, server: desktop" "col $T/a.warm 5" "col $T/b.warm 5")
$(row "warm, server: agent" "col $T/a.warm 6" "col $T/b.warm 6")
$(row "warm, server: rest = attach + first frame (derived)" "rest_warm $T/a.warm" "rest_warm $T/b.warm")
$(row "warm, server: attach (after only)" "col $T/a.warm 7" "col $T/b.warm 7")
$(row "warm, server: attach → first frame (after only)" "col $T/a.warm 8" "col $T/b.warm 8")
$(row "reconnect: client first frame" "col $T/a.reconnect 1" "col $T/b.reconnect 1")
$(row "reconnect: client connect" "col $T/a.reconnect 2" "col $T/b.reconnect 2")
$(row "reconnect, server: accept → first frame" "col $T/a.reconnect 9" "col $T/b.reconnect 9")
$(row "reconnect, server: handshake" "col $T/a.reconnect 3" "col $T/b.reconnect 3")
$(row "reconnect, server: auth" "col $T/a.reconnect 4" "col $T/b.reconnect 4")
$(row "reconnect, server: auth done → first frame (derived)" "rest_rc $T/a.reconnect" "rest_rc $T/b.reconnect")

Like with like: slated's \`slatectl --json session list\` after each logon. **accept → first frame**
is slate-session's clock on both sides (before: \`.phases.first_frame_ms\`, which was accept → first
frame and equals \`.logon_ms\`; after: \`.logon_ms\` — after's \`.phases.first_frame_ms\` is attach →
first frame and appears only in its own row). **handshake** = accept → the client's credentials, the
\`rdp-handshake\` phase slate-session reports (before: slated's debug log; after: \`.phases.handshake_ms\`).
**auth** = the PAM check, **desktop** = authenticated → a desktop assigned, **agent** = the guest agent
starting the user's session (both sides write the session record inside *desktop*). **rest** =
accept → first frame minus the four phases, computed the same way on both sides (after: attach +
attach → first frame, and the gaps between steps). For reconnects only
handshake and auth are compared phase by phase: before, a reconnect kept the first logon's desktop and
agent figures; after, its desktop step is the session lookup and its agent step is skipped — so
the reconnect compares the remainder (auth done → first frame) as one.

Paired (each iteration's two samples, taken back to back): median of after/before of the client's
first frame: warm $pw, reconnect $pr. Handshakes under 250 ms (the handshake tends to be bimodal,
and moves the client's figures with it): warm before $(short a.warm)/$nw, after
$(short b.warm)/$nw; reconnect before $(short a.reconnect)/$nw, after $(short b.reconnect)/$nw. At the end of the section: $busy_end.

MD
exit 0
