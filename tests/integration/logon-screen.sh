#!/usr/bin/env bash
# A logon screen's PAM conversation through the real slated and real PAM (pam_wrapper +
# pam_matrix, pam_oath for a one-time code, tests/pam/pam_expired.so for an expired password):
# slated relays every prompt after the password (IPC_PROMPT / IPC_PROMPT_REPLY) and lets a
# logon screen try three times. The session here is tests/integration/ipc-session, a stand-in
# for slate-session driven over the client socket, so no RDP and no desktop are needed: no pool
# is entitled, so a logon that passed PAM is answered "not entitled" (status 3), a refused one
# "bad credentials" (1). Bounds: prompts per attempt, a conversation whose session leaves, the
# logon screen's timeout, IPC_PROMPT_REPLY only while a prompt waits.
. "$(dirname "$0")/lib.sh"
require_tools
IPCS=$B/tests/integration/ipc-session
[ -x "$IPCS" ] || fail "$IPCS not built (make check TESTS=)"
setup tcg
setup_pam otp1:pw otp2:pw otp3:pw otp4:pw gina:old hank:old carl:pw
setup_pam_oath otp1 otp2 otp3 otp4 gina hank carl
setup_pam_expired gina hank chatty=carl
PORT=$(free_port)
cat >>"$CONF" <<CONF
listen = 127.0.0.1:$PORT
session-program = $IPCS
session-spares = 0
handshake-timeout = 3
logon-screen-timeout = 9
auth-free-failures = 1
logon-banner = Authorised users only. Activity is recorded.
CONF
start_slated

# conn: a new connection on fd 5 (one at a time); expect PATTERN: the next line must match.
conn() { exec 5<>/dev/tcp/127.0.0.1/$PORT; }
LAST=
# What the logon is doing (IPC_PROGRESS) comes between the other messages: passed over.
expect() {
        LAST=
        while :; do
                IFS= read -r -t "${2:-10}" LAST <&5 || fail "no line from the session (wanted: $1)"
                [[ $LAST == "msg progress" && ! "msg progress" =~ $1 ]] || break
        done
        [[ $LAST =~ $1 ]] || fail "wanted /$1/, got: $LAST"
}
send() { printf '%s\n' "$*" >&5; }
# The session is gone: it said so, or was killed (EOF on the socket), within SECONDS.
expect_closed() {
        local rc=0
        IFS= read -r -t "${1:-10}" LAST <&5 || rc=$?
        [ $rc -eq 0 ] && [ "$LAST" = ipc-closed ] && return 0
        [ $rc -eq 1 ] && return 0
        fail "the session is still there (read rc $rc: $LAST)"
}

say "IPC_CONFIG carries logon-banner"
conn
expect '^config Authorised users only\. Activity is recorded\.$'

say "password, then a one-time code: both right logs on"
send auth otp1 pw
expect '^prompt 1 One-time password'
send reply "$(totp)"
expect '^result 3 otp1 is not entitled'
exec 5<&-

say "a wrong code is refused (and counts in the limiter); three tries, then the connection ends"
conn
expect '^config '
send auth otp2 pw
expect '^prompt 1 One-time password'
t0=$(date +%s%N)
send reply 000000
expect '^result 1 .*bad code'
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -ge 690 ] || fail "a refusal came $ms ms after the last answer, before the 700 ms pad"
send auth otp2 pw
expect '^prompt 1 '
send reply 111111
expect '^result 1 '
# auth-free-failures = 1: two wrong codes put the pair in backoff, so the third waits.
send auth otp2 pw
expect '^result 2 too many failed logons'
expect '^end too many failed logons'
send auth otp2 pw
expect_closed
exec 5<&-
grep -q 'logon.failed.*otp2\|logon of otp2 from .* refused' "$T/slated.log" || fail "no refusal of otp2 in the log"

say "a client that sent its password (no screen) cannot answer a code: told to use the screen"
conn
expect '^config '
send plain otp3 pw
expect '^result 1 this logon asks for more than a password'
exec 5<&-

say "an empty password field at the screen: asked to type it, and may try again"
conn
expect '^config '
send "auth otp3 "
expect '^result 1 type your password$'
send auth otp3 pw
expect '^prompt 1 One-time'
send quit
exec 5<&-

say "an expired password is changed at the screen, then the logon goes on"
conn
expect '^config '
send auth gina old
expect '^prompt 1 One-time password'
send reply "$(totp)"
expect '^prompt 1 New password'
send reply n3w-Pass
expect '^prompt 1 Retype new password'
send reply n3w-Pass
expect '^result 3 gina is not entitled'
[ -f "$T/pam-state/gina.changed" ] || fail "the password module saw no change"
grep -q 'logon of gina from .*: the expired password was changed' "$T/slated.log" || fail "the change was not logged"
exec 5<&-

say "a change that fails (the two differ): PAM's words shown, then refused as expired"
conn
expect '^config '
send auth hank old
expect '^prompt 1 One-time'
send reply "$(totp)"
expect '^prompt 1 New password'
send reply one
expect '^prompt 1 Retype'
send reply two
expect '^prompt 3 Sorry, passwords do not match'
expect '^result 6 your password has expired and was not changed'
exec 5<&-

say "a stack that keeps asking is cut after 8 prompts"
conn
expect '^config '
send auth carl pw
for i in 1 2 3 4 5 6 7 8; do
        expect "^prompt 2 Question $i: "
        send reply "answer $i"
done
expect '^result 1 '
exec 5<&-

say "a session that leaves mid-conversation ends the PAM call at once"
conn
expect '^config '
send auth otp4 pw
expect '^prompt 1 One-time'
send quit
exec 5<&-
wait_for 5 "PAM ended after the client left" grep -q 'logon of otp4 .*PAM ended [0-9]* ms after' "$T/slated.log"
ms=$(grep -o 'logon of otp4 .*PAM ended [0-9]* ms' "$T/slated.log" | grep -o '[0-9]* ms' | tail -1 | cut -d' ' -f1)
[ "$ms" -lt 1000 ] || fail "PAM ended $ms ms after the client left"
say "PAM ended $ms ms after the session left"

say "IPC_PROMPT_REPLY with no prompt waiting: the session is dropped"
conn
expect '^config '
send reply stray
expect_closed
exec 5<&-
grep -q 'IPC prompt-reply not permitted\|IPC .* not permitted in phase' "$T/slated.log" || fail "no permit refusal logged"

say "bounds: the handshake's (3 s) without a logon screen, logon-screen-timeout (9 s) with one"
exec 6<>/dev/tcp/127.0.0.1/$PORT
conn
expect '^config '
send phase logon-screen
t0=$(date +%s)
l6=; IFS= read -r -t 10 l6 <&6 || true
[ "${l6%% *}" = config ] || fail "no config on the second connection: $l6"
rc=0; IFS= read -r -t 10 l6 <&6 || rc=$?
[ $rc -eq 1 ] || [ "$l6" = ipc-closed ] || fail "a connection without credentials was not closed at the handshake timeout: $l6"
h=$(( $(date +%s) - t0 ))
expect_closed 15
s=$(( $(date +%s) - t0 ))
[ "$h" -le 5 ] || fail "handshake bound: closed after $h s"
[ "$s" -ge 7 ] && [ "$s" -le 12 ] || fail "logon screen bound: closed after $s s (want ~9)"
say "closed after $h s without a screen, $s s at a logon screen"
grep -q 'not logged on within logon-screen-timeout (9 s)' "$T/slated.log" || fail "no screen timeout logged"
wait_for 10 "the pre-auth slots back" sh -c "[ \"\$(\"$SLATECTL\" --socket '$T/run/control.sock' --json status | jq '.preauth')\" -eq 0 ]"
# Nothing typed reached the log.
for s in n3w-Pass 000000 111111 'answer 3'; do
        grep -qwF -- "$s" "$T/slated.log" && fail "slated logged what a user typed ($s)"
done
stop_slated TERM
echo "PASS: logon-screen"
