#!/usr/bin/env bash
# A PAM that never answers (a hung module, an unreachable directory server) must not hold a
# pre-auth slot for ever (issue: hardening): connections waiting on PAM are dropped after
# auth-timeout, like those that never send credentials. PAM here is pam_exec running sleep.
. "$(dirname "$0")/lib.sh"
require_tools
setup tcg
setup_pam alice:secret
setup_rdp
PAM_EXEC=$(ls /lib/*/security/pam_exec.so /usr/lib/*/security/pam_exec.so 2>/dev/null | head -1 || true)
[ -n "$PAM_EXEC" ] || skip "pam_exec.so not found (apt-get install libpam-modules)"
printf 'auth required %s /bin/sleep 40\naccount required %s/pam_matrix.so passdb=%s\n' "$PAM_EXEC" "$PAM_MOD" \
        "$T/passdb" >"$T/pam.d/slate"
echo "auth-timeout = 5" >>"$CONF"
start_slated

say "a logon whose PAM hangs: dropped after auth-timeout (5 s)"
t0=$(date +%s)
rdp --user alice --password secret --wait-frame >"$T/out" 2>&1 && fail "a logon went through a hung PAM"
el=$(( $(date +%s) - t0 ))
grep -q "PAM did not answer within 5 s" "$T/slated.log" || fail "no auth timeout in slated's log (client gave up after $el s)"
[ "$el" -lt 30 ] || fail "the client waited $el s"
say "dropped after $el s"
wait_for 10 "the pre-auth slot back" sh -c "[ \"\$(\"$SLATECTL\" --socket '$T/run/control.sock' --json status | jq '.preauth')\" -eq 0 ]"
stop_slated TERM
echo "PASS: auth-timeout"
