#!/usr/bin/env bash
# Each RDP connection's slate-session is isolated (issue 17): two connections held in the
# handshake (no desktop needed) run as two uids of session-uid-base's range with no supplementary
# group, in sessions of their own, stdin /dev/null, under no-new-privs and a seccomp filter; one
# cannot signal or ptrace the other; what a session writes to stderr is in slated's log under its
# connection. A uid goes back only when its process is gone (session-uid-count = 2: a third
# connection waits for one). slated refuses a range that holds root or an existing user, and, not
# root, refuses to start sessions unless insecure-unprivileged-sessions is on.
. "$(dirname "$0")/lib.sh"
command -v setpriv >/dev/null || skip "setpriv not installed (util-linux)"
setup_session_uids 0x78000000 30
pids=()
stall() { sleep "${2:-25}" | nc -s "$1" 127.0.0.1 "$PORT" >/dev/null 2>&1 & pids+=($!); }
# The pid and uid slated gave the connection from $1.
session_of() { sed -n "s/.*connection $1: slate-session pid \([0-9]*\) uid \([0-9]*\)$/\1 \2/p" "$T/slated.log" | tail -1; }

say "refused at start: a range holding root, or an existing user's uid"
refuses() { # why, config lines...
        local why=$1 c="$T/bad.conf"
        shift
        grep -v '^session-uid-base' "$CONF" >"$c"
        printf '%s\n' "$@" >>"$c"
        if "$SLATED" --config "$c" >"$T/bad.out" 2>&1; then fail "slated started with $*"; fi
        grep -q "$why" "$T/bad.out" || fail "$*: refusal does not say \"$why\": $(tail -2 "$T/bad.out")"
}
refuses "holds uid 0" "session-uid-base = 0"
user1=$(getent passwd | awk -F: '$3 > 0 && $3 < 65534 { print $1 ":" $3; exit }')
refuses "user ${user1%%:*} has uid ${user1#*:}" "session-uid-base = ${user1#*:}" "session-uid-count = 10"
refuses "session-user: removed" "session-user = slate-session"

say "not root: RDP sessions refused unless insecure-unprivileged-sessions = on"
nobody=$(id -u nobody 2>/dev/null) || skip "no user nobody"
if setpriv --reuid=nobody --regid=nogroup --clear-groups "$SLATED" --config "$CONF" >"$T/nr.out" 2>&1; then
        fail "slated started as nobody with a listener"
fi
grep -q "slated is not root" "$T/nr.out" || fail "no reason given: $(tail -2 "$T/nr.out")"
cp "$CONF" "$T/dev.conf"
echo "insecure-unprivileged-sessions = on" >>"$T/dev.conf"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$SLATED" --config "$T/dev.conf" >"$T/nr.out" 2>&1 || true
grep -q "insecure-unprivileged-sessions: slate-session runs as slated's own uid $nobody" "$T/nr.out" ||
        fail "insecure-unprivileged-sessions = on not taken: $(tail -2 "$T/nr.out")"

say "two connections in the handshake"
start_slated
grep -q "each slate-session runs as a uid of its own, $BASE to $((BASE + 65535))" "$T/slated.log" ||
        fail "slated does not say which uids sessions get"
stall 127.0.0.2
stall 127.0.0.3
wait_for 10 "two sessions" sh -c "[ \"\$(grep -c 'slate-session pid .* uid ' '$T/slated.log')\" -ge 2 ]"
read -r pa ua < <(session_of 127.0.0.2)
read -r pb ub < <(session_of 127.0.0.3)
say "session A: pid $pa uid $ua; session B: pid $pb uid $ub"
[ -n "$pa" ] && [ -n "$pb" ] || fail "no pid/uid logged for the two connections"
[ "$ua" != "$ub" ] || fail "both sessions run as uid $ua"
sid_slated=$(ps -o sid= -p "$SLATED_PID" | tr -d ' ')
for p in "$pa" "$pb"; do
        u=$([ "$p" = "$pa" ] && echo "$ua" || echo "$ub")
        check_session_uid pid "$p" "$u"
        sid=$(ps -o sid= -p "$p" | tr -d ' ')
        [ "$sid" = "$p" ] && [ "$sid" != "$sid_slated" ] || fail "pid $p: session id $sid (slated's: $sid_slated)"
        [ "$(ps -o tty= -p "$p" | tr -d ' ')" = "?" ] || fail "pid $p has a controlling terminal"
        [ "$(readlink "/proc/$p/fd/0")" = /dev/null ] || fail "pid $p: stdin is $(readlink "/proc/$p/fd/0")"
        case $(readlink "/proc/$p/fd/2") in pipe:*) ;; *) fail "pid $p: stderr is $(readlink "/proc/$p/fd/2"), not a pipe to slated";; esac
done
echo "# A: $(grep -E '^(Uid|Gid|Groups|NoNewPrivs|Seccomp):' "/proc/$pa/status" | tr '\t\n' '  ')sid $(ps -o sid= -p "$pa")"

say "A cannot signal or ptrace B, nor B A"
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }
kill -0 "$pb" || fail "B is not running"
if as "$ua" kill -0 "$pb" 2>/dev/null; then fail "A's uid can signal B"; fi
if as "$ub" kill -0 "$pa" 2>/dev/null; then fail "B's uid can signal A"; fi
if as "$ua" cat "/proc/$pb/environ" >/dev/null 2>&1; then fail "A's uid can read B's memory map (ptrace access)"; fi
if command -v strace >/dev/null; then
        if as "$ua" timeout 5 strace -p "$pb" -e trace=none >/dev/null 2>"$T/strace.out"; then fail "A's uid can ptrace B"; fi
        grep -q "Operation not permitted" "$T/strace.out" || fail "strace -p as A: $(cat "$T/strace.out")"
fi
if as "$ua" kill -0 "$SLATED_PID" 2>/dev/null; then fail "a session's uid can signal slated"; fi

say "what a session writes to stderr is in slated's log under its connection"
wait_for 10 "A's own log line in slated's log" \
        grep -q "connection 127.0.0.2 (pid $pa): .*slate-session\[$pa\]: config: max" "$T/slated.log"
grep "connection 127.0.0.2 (pid $pa): " "$T/slated.log" | head -1

say "the uid goes back once the process is gone: with session-uid-count = 2 a third connection waits"
kill "${pids[@]}" 2>/dev/null || true
wait_for 20 "both sessions to end" sh -c "! kill -0 $pa 2>/dev/null && ! kill -0 $pb 2>/dev/null"
stop_slated TERM
pids=()
echo "session-uid-count = 2" >>"$CONF"
start_slated
stall 127.0.0.4 60
stall 127.0.0.5 60
wait_for 10 "two sessions" sh -c "[ \"\$(grep -c 'slate-session pid .* uid ' '$T/slated.log')\" -ge 4 ]"
stall 127.0.0.6
wait_for 10 "the third refused" grep -q "connection 127.0.0.6 refused: all 2 session uids are in use" "$T/slated.log"
read -r pc uc < <(session_of 127.0.0.4)
kill "${pids[0]}"
wait_for 20 "C's session to end" sh -c "! kill -0 $pc 2>/dev/null"
stall 127.0.0.7
wait_for 10 "a new connection let in" sh -c "grep -q 'connection 127.0.0.7: slate-session pid' '$T/slated.log'"
read -r pe ue < <(session_of 127.0.0.7)
[ "$ue" = "$uc" ] || fail "the new session got uid $ue, not the freed $uc"
kill "${pids[@]}" 2>/dev/null || true
kill -0 "$SLATED_PID" || fail "slated died"
stop_slated TERM
echo "PASS: session-sandbox"
