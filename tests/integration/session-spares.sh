#!/usr/bin/env bash
# A slate-session started ahead (session-spares, issue 18): before any client connects a spare
# runs, as a session uid of its own, in a session of its own, under its seccomp filter, with no
# socket but its IPC; a client's X.224 request is answered by that spare; a new spare follows; a killed
# spare is replaced, and a session program that dies at once is restarted with a back-off, not in
# a loop. The handshake's clock starts at accept, not at the spare's start. session-spares = 0
# starts a slate-session per connection as before. At shutdown the spare is gone. No desktop.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip "python3 not installed (the X.224 probe)"
setup_session_uids 0x79000000 4
spares() { sed -n 's/.*spare: pid \([0-9]*\) uid \([0-9]*\) started.*/\1 \2/p' "$T/slated.log"; }
last_spare() { spares | tail -1; }
ready() { grep -q "connection spare (pid $1): .*spare: ready, waits for a client" "$T/slated.log"; }
# An X.224 Connection Request (TLS requested); prints the answer's first bytes in hex, or fails.
x224() {
        python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(bytes.fromhex("030000130ee000000000000100080001000000"))
b = s.recv(64)
print(b[:4].hex())
PY
}

say "before any client: a spare, as a session uid, setsid, seccomp, no socket but its IPC"
start_slated
wait_for 10 "a spare started" sh -c "grep -q 'spare: pid .* started' '$T/slated.log'"
read -r p1 u1 < <(last_spare)
wait_for 10 "spare $p1 initialised" ready "$p1"
kill -0 "$p1" || fail "spare $p1 is not running"
check_session_uid spare "$p1" "$u1"
[ "$(ps -o sid= -p "$p1" | tr -d ' ')" = "$p1" ] || fail "spare $p1 is not in a session of its own"
socks=$(for f in /proc/"$p1"/fd/*; do readlink "$f"; done | grep -c '^socket:' || true)
[ "$socks" -eq 1 ] || fail "spare $p1 has $socks sockets before any client (only its IPC expected)"
tr '\0' ' ' <"/proc/$p1/cmdline" | grep -q -- "--spare" || fail "spare $p1 not started with --spare"
[ "$(ctl status >/dev/null; grep -c 'refused' "$T/slated.log")" -eq 0 ] || fail "refusals before any client"

say "a client's X.224 request is answered by the spare; another spare follows"
ans=$(x224) || fail "no X.224 answer"
[ "${ans:0:4}" = 0300 ] || fail "X.224 answer is not a TPKT: $ans"
grep -q "connection 127.0.0.1: slate-session pid $p1 uid $u1" "$T/slated.log" ||
        fail "the connection did not go to spare $p1: $(grep 'connection 127.0.0.1' "$T/slated.log" | head -3)"
wait_for 10 "a second spare" sh -c "[ \"\$(grep -c 'spare: pid .* started' '$T/slated.log')\" -ge 2 ]"
read -r p2 u2 < <(last_spare)
[ "$p2" != "$p1" ] && [ "$u2" != "$u1" ] || fail "the new spare is $p2 uid $u2 (the first: $p1 uid $u1)"
wait_for 10 "spare $p2 initialised" ready "$p2"
wait_for 10 "the first connection's process to end" sh -c "! kill -0 $p1 2>/dev/null"

say "the handshake's clock starts at accept, not at the spare's start (handshake-timeout = 4)"
sleep 5         # the spare is older than the handshake timeout
sleep 30 | nc 127.0.0.1 "$PORT" >/dev/null 2>&1 &
nc_pid=$!
wait_for 10 "the stalled connection taken by spare $p2" grep -q "connection 127.0.0.1: slate-session pid $p2 " "$T/slated.log"
sleep 2
kill -0 "$p2" 2>/dev/null || fail "the connection was dropped within 2 s of accept: $(grep "pid $p2" "$T/slated.log" | tail -3)"
wait_for 10 "the connection dropped at the handshake timeout" sh -c "! kill -0 $p2 2>/dev/null"
grep -q "no credentials before the handshake timeout" "$T/slated.log" || fail "not dropped for the handshake timeout"
kill "$nc_pid" 2>/dev/null || true

say "a killed spare is replaced"
wait_for 10 "a third spare" sh -c "[ \"\$(grep -c 'spare: pid .* started' '$T/slated.log')\" -ge 3 ]"
read -r p3 u3 < <(last_spare)
wait_for 10 "spare $p3 initialised" ready "$p3"
kill -KILL "$p3"
wait_for 10 "spare $p3 replaced" sh -c "[ \"\$(grep -c 'spare: pid .* started' '$T/slated.log')\" -ge 4 ]"
grep -q "spare slate-session (pid $p3) ended before a client came" "$T/slated.log" || fail "the lost spare is not logged"
read -r p4 u4 < <(last_spare)
[ "$p4" != "$p3" ] || fail "no new spare"

say "at shutdown the spare is gone"
wait_for 10 "spare $p4 initialised" ready "$p4"
stop_slated TERM
wait_for 5 "spare $p4 to end" sh -c "! kill -0 $p4 2>/dev/null"

say "a session program that dies at once: restarted with a back-off"
printf '#!/bin/sh\nexit 1\n' >"$T/crash"
chmod 755 "$T/crash"
sed -i "s|^session-program = .*|session-program = $T/crash|" "$CONF"
: >"$T/slated.log"
start_slated
sleep 4
n=$(grep -c "ended before a client came" "$T/slated.log" || true)
say "$n spare starts failed in 4 s"
[ "$n" -ge 2 ] || fail "the crashing spare was not restarted ($n)"
[ "$n" -le 8 ] || fail "$n restarts in 4 s: no back-off"
stop_slated TERM

say "session-spares = 0: a slate-session per connection, started at accept"
sed -i "s|^session-program = .*|session-program = $B/rdp/slate-session|" "$CONF"
echo "session-spares = 0" >>"$CONF"
: >"$T/slated.log"
start_slated
sleep 1
! grep -q "spare: pid" "$T/slated.log" || fail "a spare started with session-spares = 0"
ans=$(x224) || fail "no X.224 answer without spares"
[ "${ans:0:4}" = 0300 ] || fail "X.224 answer is not a TPKT: $ans"
grep -q "connection 127.0.0.1: slate-session pid" "$T/slated.log" || fail "no slate-session for the connection"
stop_slated TERM
echo "PASS: session-spares"
