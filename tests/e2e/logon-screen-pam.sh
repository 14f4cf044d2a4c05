#!/usr/bin/env bash
# The logon screen end to end: the real slated with real PAM (pam_wrapper + pam_matrix, pam_oath
# for a one-time code, tests/pam/pam_expired.so for an expired password), the real slate-session
# drawing its logon screen, the test client typing into it, and the tiny test guest's desktop.
# A password then a one-time code logs on only with both (a wrong code refused, counted); an
# expired password is changed at the screen and the logon goes on; three wrong tries close the
# connection. (The limiter counting wrong codes: tests/integration/logon-screen.sh.) Needs the test client's typing options (--type, --key): skips without them.
. "$(dirname "$0")/../integration/lib.sh"
require_tools
setup tcg
setup_pam otp1:pw otp2:pw gina:old
setup_pam_oath otp1 otp2 gina
setup_pam_expired gina
setup_rdp
"$RDP_CLIENT" --help 2>&1 | grep -q -- '--type' || skip "tests/e2e/rdp-client cannot type (no --type)"
"$RDP_CLIENT" --help 2>&1 | grep -q -- '--no-password' || skip "tests/e2e/rdp-client cannot omit the password"
cat >>"$CONF" <<CONF
auth-free-failures = 1
logon-banner = Authorised users only.
CONF
start_slated
publish_guest tiny >/dev/null
ctl pool create desk --image tiny --warm 1 --max 2 --memory 256M --disconnect-timeout 120 >/dev/null
for u in otp1 otp2 gina; do ctl pool entitle desk "user:$u" >/dev/null; done
wait_for 180 "a ready desktop" pool_ready desk 1
end_sessions() {
        local id
        for id in $(jctl session list | jq -r '.[].id'); do ctl session end "$id" >/dev/null || true; done
        wait_for 60 "the sessions ended" sh -c "[ \"\$(\"$SLATECTL\" --socket '$T/run/control.sock' --json session list | jq length)\" -eq 0 ]"
        wait_for 180 "a ready desktop" pool_ready desk 1
}

say "password, then a one-time code at the logon screen: logs on to the desktop"
rc=0
rdp --user otp1 --no-password --wait-frame --type pw --key enter --sleep 1500 --type "$(totp)" --key enter \
        --after-pixel "20,20,$(desk_user_rgb otp1)" >"$T/out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "otp: rdp-client exit $rc: $(cat "$T/out")"
jctl audit --kind logon | jq -e '.[] | select(.subject == "otp1")' >/dev/null || fail "otp1's logon not audited"
end_sessions

say "a wrong code, three times: each refused and counted, then the connection closes"
rc=0
rdp --user otp2 --no-password --wait-frame --type pw --key enter --sleep 1500 --type 000000 --key enter --sleep 1500 \
        --type pw --key enter --sleep 1500 --type 111111 --key enter --sleep 1500 \
        --type pw --key enter --sleep 1500 --type 222222 --key enter --hold 8 >"$T/out" 2>&1 || rc=$?
[ $rc -eq 10 ] || [ $rc -eq 11 ] || fail "three wrong: rdp-client exit $rc, expected the connection closed: $(cat "$T/out")"
n=$(jctl audit --kind logon.failed | jq '[.[] | select(.subject == "otp2")] | length')
[ "$n" -eq 3 ] || fail "$n wrong codes audited, not 3: $(jctl audit --kind logon.failed)"
grep -q "3 failed logons at the logon screen; closing it" "$T/slated.log" || fail "slated did not end the connection"
[ "$(jctl session list | jq length)" -eq 0 ] || fail "a wrong code created a session"

say "an expired password is changed at the screen, and the logon goes on"
rc=0
rdp --user gina --no-password --wait-frame --type old --key enter --sleep 1500 --type "$(totp)" --key enter \
        --sleep 1500 --type 'N3w-pass' --key enter --sleep 1500 --type 'N3w-pass' --key enter \
        --after-pixel "20,20,$(desk_user_rgb gina)" >"$T/out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "expired: rdp-client exit $rc: $(cat "$T/out")"
[ -f "$T/pam-state/gina.changed" ] || fail "the password module saw no change"
jctl audit --kind password.changed | jq -e '.[] | select(.subject == "gina")' >/dev/null || fail "the change is not audited"
end_sessions

for s in N3w-pass 000000 111111 222222; do
        grep -qwF -- "$s" "$T/slated.log" && fail "a log holds what a user typed ($s): $(grep -wF -- "$s" "$T/slated.log" | head -3)"
done
stop_slated TERM
echo "PASS: logon-screen-pam"
