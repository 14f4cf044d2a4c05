#!/usr/bin/env bash
# slated when slate-session cannot be started (issue: hardening): uv_spawn links its handle into
# the loop before it fails, so freeing the connection there left a dangling node in libuv's
# handle queue, and the next handle corrupted root slated's heap (fork's EAGAIN under many
# pre-auth children gets there; a session program that cannot be executed gets there every
# time). slated runs under valgrind here, with connections that each fail to spawn; it must
# keep answering and exit without a single memory error.
. "$(dirname "$0")/lib.sh"
require_tools
command -v valgrind >/dev/null || skip "valgrind not installed (apt-get install valgrind; ./bootstrap deps)"
setup tcg
PORT=$(free_port)
: >"$T/not-a-program"          # exists, not executable: uv_spawn fails with EACCES
chmod 0644 "$T/not-a-program"
cat >>"$CONF" <<CONF
listen = 127.0.0.1:$PORT
session-program = $T/not-a-program
CONF
cat >"$T/slated-valgrind" <<SH
#!/bin/sh
exec valgrind -q --error-exitcode=99 --log-file="$T/valgrind.log" "$SLATED" "\$@"
SH
chmod +x "$T/slated-valgrind"
SLATED=$T/slated-valgrind
SLATE_START_WAIT=120 start_slated

say "five connections, none of which can get a slate-session"
for i in 1 2 3 4 5; do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT" && sleep 0.3) 2>/dev/null || fail "connection $i refused"
done
wait_for 30 "the spawn failures in the log" grep -q "cannot start $T/not-a-program" "$T/slated.log"
[ "$(grep -c "cannot start $T/not-a-program" "$T/slated.log")" -ge 5 ] ||
        say "(fewer spawn failures logged than connections: $(grep -c "cannot start" "$T/slated.log"))"
ctl status >/dev/null || fail "slated stopped answering after failed spawns"

say "slated exits cleanly: valgrind found nothing"
kill -TERM "$SLATED_PID"
status=0
wait "$SLATED_PID" || status=$?
SLATED_PID=
[ -s "$T/valgrind.log" ] && cat "$T/valgrind.log" >&2
[ "$status" -ne 99 ] || fail "valgrind found memory errors in slated (log above)"
[ ! -s "$T/valgrind.log" ] || fail "valgrind reported something (log above)"
echo "PASS: spawn-failure"
