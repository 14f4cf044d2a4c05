#!/usr/bin/env bash
# End to end with a real RDP client (tests/e2e/rdp-client on libfreerdp): a wrong password is
# refused and consumes no desktop; alice logs on and sees her own desktop (pixels), a key
# changes the screen; she disconnects and reconnects to the same desktop; she logs out from
# inside the desktop (F12 in the test guest) and the desktop is erased and the pool refilled;
# bob's session is ended by the administrator; Carol (upper case) logs on while no desktop is warm.
# As root, alice's profile disk is her desktop's uid's while attached (across a slated restart
# too) and vm-user's again once that desktop is gone.
# Each session is one PAM session (a pam_exec hook logs them): opened at the logon, not again at
# a reconnect or across a restart, closed when the session ends. dave's password has expired: he
# is told so (RDP's LOGON_FAILED_UPDATE_PASSWORD), and it is not counted as a guess.
# A logon is done when the desktop says it is usable: slow1's comes seconds after the first frame,
# and the refill boot that her claim calls for waits for it; never1's never comes, so after the
# pool's usable-timeout he is told, his session ends and the desktop is destroyed.
. "$(dirname "$0")/../integration/lib.sh"
require_tools
setup tcg
setup_pam alice:secret bob:hunter2 dave:pw4
echo "account required $B/tests/pam/pam_expired.so password_expired=dave" >>"$T/pam.d/slate"
[ -f "$B/tests/pam/pam_expired.so" ] || fail "tests/pam/pam_expired.so not built (make tests/pam/pam_expired.so)"
setup_rdp
echo "auth-free-failures = 1" >>"$CONF"  # a third counted refusal of dave's would be delayed
start_slated
publish_guest tiny >/dev/null
ctl pool create desk --image tiny --warm 1 --max 3 --memory 256M --disconnect-timeout 120 >/dev/null
ctl pool entitle desk user:alice >/dev/null
ctl pool entitle desk user:bob >/dev/null
wait_for 180 "a ready desktop" pool_ready desk 1
ready_id() { jctl desktop list --pool desk | jq -r '[.[] | select(.state == "ready")][0].id'; }

say "wrong password: refused, no desktop consumed"
before=$(ready_id)
set +e
rdp --user alice --password wrong --wait-frame >"$T/out" 2>&1
rc=$?
set -e
[ $rc -eq 10 ] || fail "wrong password: rdp-client exit $rc, expected 10 (refused): $(cat "$T/out")"
[ "$(ready_id)" = "$before" ] || fail "a refused logon consumed desktop $before"
[ "$(jctl session list | jq length)" -eq 0 ] || fail "a refused logon created a session"
jctl audit --kind logon.failed | jq -e '.[0].subject == "alice"' >/dev/null || fail "failure not audited"

say "dave's password has expired: he is told so, three times, never throttled"
for i in 1 2 3; do
        set +e
        rdp --user dave --password pw4 --wait-frame >"$T/out" 2>&1
        rc=$?
        set -e
        [ $rc -eq 10 ] && grep -q LOGON_FAILED_UPDATE_PASSWORD "$T/out" ||
                fail "expired password, attempt $i: rdp-client exit $rc, expected 10 with LOGON_FAILED_UPDATE_PASSWORD: $(cat "$T/out")"
done
grep -q "logon refused (6): your password has expired" "$T/slated.log" || fail "slate-session did not hear the expiry"
[ "$(jctl audit --kind logon.refused | jq '[.[] | select(.subject == "dave" and (.detail | test("password expired")))] | length')" -eq 3 ] ||
        fail "the expired password is not audited as such: $(jctl audit --kind logon.refused)"
! jctl audit --kind logon.throttled | jq -e '.[] | select(.subject == "dave")' >/dev/null ||
        fail "an expired password was counted as a guess"
[ "$(jctl session list | jq length)" -eq 0 ] || fail "an expired password created a session"

# pam_sessions TYPE USER: how many times the PAM session stack ran for USER.
pam_sessions() { cat "$T/pam-sessions.log" 2>/dev/null | grep -c "^$1 $2 " || true; }

say "alice logs on: the progress screen, then her desktop, never a black frame"
color=$(desk_user_rgb alice)
rdp --user alice --password secret --wait-frame --expect-never-black --expect-pixel "20,20,$color" --key a \
        --expect-change --screenshot "$T/alice.ppm" >"$T/out" 2>&1 || fail "alice logon: $(cat "$T/out")"
say "$(tail -1 "$T/out")"
s=$(jctl session list --user alice | jq '.[0]')
desk=$(echo "$s" | jq -r .desktop)
[ "$desk" = "$before" ] || fail "alice did not get the warm desktop $before (got $desk)"
prof=$T/state/profiles/alice/gen-1.qcow2
profile_lent() {
        [ "$(id -u)" = 0 ] || return 0
        local du
        du=$(jctl desktop list | jq -r --arg id "$desk" '.[] | select(.id == $id) | .uid')
        [ "$(stat -c '%u %a' "$prof")" = "$du 600" ] ||
                fail "alice's profile $(stat -c '%u %a' "$prof"), not her desktop's uid $du (0600)"
}
profile_lent
# A spare runs at the idle CPU priority; the desktop a user claims leaves it (every thread).
dpid=$(jctl desktop list | jq -r --arg id "$desk" '.[] | select(.id == $id) | .pid')
[ "$(thread_policies "$dpid")" = 0 ] || fail "alice's desktop's QEMU threads have policies $(thread_policies "$dpid" | tr '\n' ' '), not normal (0)"
[ ! -r /proc/"$dpid"/autogroup ] || grep -q "nice 0" /proc/"$dpid"/autogroup || fail "alice's desktop's autogroup: $(cat /proc/"$dpid"/autogroup)"
[ "$(pam_sessions open_session alice)" = 1 ] && [ "$(pam_sessions close_session alice)" = 0 ] ||
        fail "alice's logon did not open exactly one PAM session: $(cat "$T/pam-sessions.log" 2>&1)"
wait_for 10 "alice disconnected" sh -c "$SLATECTL --socket $T/run/control.sock --json session list --user alice | jq -e '.[0].state == \"disconnected\"' >/dev/null"
wait_for 180 "pool refilled" pool_ready desk 1

say "alice reconnects to the same desktop"
rdp --user alice --password secret --wait-frame --expect-pixel "20,20,$color" >"$T/out" 2>&1 || fail "reconnect: $(cat "$T/out")"
[ "$(jctl session list --user alice | jq -r '.[0].desktop')" = "$desk" ] || fail "reconnect landed on another desktop"
[ "$(pam_sessions open_session alice)" = 1 ] && [ "$(pam_sessions close_session alice)" = 0 ] ||
        fail "a reconnect opened or closed a PAM session: $(cat "$T/pam-sessions.log")"

say "the session's timeline: the logon and the reconnect, each step with its own time"
sid=$(jctl session list --user alice | jq -r '.[0].id')
wait_for 10 "the reconnect in the timeline" sh -c "$SLATECTL --socket $T/run/control.sock --json session show $sid | jq -e '.timeline | length == 2' >/dev/null"
ctl session show "$sid"
tl=$(jctl session show "$sid" | jq -c .timeline)
all='["handshake","auth","pam-session","desktop","apps","profile","agent","attach","first-frame","usable"]'
echo "$tl" | jq -e --argjson all "$all" '.[0].kind == "logon" and ([.[0].steps[].step] == $all) and
        ([.[0].steps[] | select(.result == "ok")] | length == 9) and
        ([.[0].steps[] | select(.step == "apps") | .result] == ["skipped"]) and
        ([.[0].steps[] | select(.step == "handshake" or .step == "first-frame") | .ms > 0] | all)' >/dev/null ||
        fail "the logon's timeline lacks a step: $tl"
echo "$tl" | jq -e --argjson all "$all" '.[1].kind == "reconnect" and ([.[1].steps[].step] == $all) and
        ([.[1].steps[] | select(.step == "pam-session" or .step == "apps" or .step == "profile" or .step == "agent" or
          .step == "usable") | .result] == ["skipped","skipped","skipped","skipped","skipped"]) and
        ([.[1].steps[] | select(.step == "handshake" or .step == "first-frame") | .ms > 0] | all) and
        ([.[1].steps[].ms] != [.[0].steps[].ms])' \
        >/dev/null || fail "the reconnect's timeline is not its own: $tl"
jctl audit --kind reconnect.done | jq -e --arg s "$sid" '.[0].detail | contains($s) and contains("first-frame")' >/dev/null ||
        fail "the reconnect's timings are not in the audit"
jctl audit --kind logon | jq -e --arg s "$sid" '[.[] | select(.detail | contains($s))][0].detail |
        test("first frame [0-9]+ ms, usable [0-9]+ ms")' >/dev/null || fail "the logon's audit lacks first frame and usable"

say "slated restarts: alice's disconnected session survives and she reconnects to it"
stop_slated TERM
start_slated
[ "$(jctl session list --user alice | jq -r '.[0].desktop')" = "$desk" ] || fail "alice's session was lost across a restart"
rdp --user alice --password secret --wait-frame --expect-pixel "20,20,$color" >"$T/out" 2>&1 || fail "reconnect after restart: $(cat "$T/out")"
profile_lent
[ "$(jctl session list --user alice | jq -r '.[0].desktop')" = "$desk" ] || fail "reconnect after restart landed elsewhere"
[ "$(pam_sessions open_session alice)" = 1 ] && [ "$(pam_sessions close_session alice)" = 0 ] ||
        fail "a restart or the reconnect after it opened or closed a PAM session: $(cat "$T/pam-sessions.log")"

say "alice logs out from inside the desktop (F12): desktop erased, pool refilled"
rdp --user alice --password secret --wait-desktop --key F12 --hold 2 >"$T/out" 2>&1 || true
say "$(tail -1 "$T/out")"
gone() { ! jctl desktop list | jq -e --arg id "$desk" '.[] | select(.id == $id)' >/dev/null; }
wait_for 30 "alice's desktop erased" gone
if [ "$(id -u)" = 0 ]; then
        [ "$(stat -c '%u %a' "$prof")" = "$(id -u slate-vm) 600" ] ||
                fail "alice's profile after her desktop is gone: $(stat -c '%u %a' "$prof"), not vm-user's"
fi
no_session() { [ "$(jctl session list --user alice | jq length)" -eq 0 ]; }
wait_for 30 "alice's session to end" no_session
wait_for 180 "pool refilled" pool_ready desk 1
alice_out() { jctl audit --kind logout | jq -e '.[0].subject == "alice"' >/dev/null; }
wait_for 10 "alice's logout in the audit trail" alice_out
# Adopted across the restart: closed with a fresh handle, once.
[ "$(pam_sessions open_session alice)" = 1 ] && [ "$(pam_sessions close_session alice)" = 1 ] ||
        fail "alice's logout did not close her PAM session exactly once: $(cat "$T/pam-sessions.log")"

say "bob logs on to a desktop adopted a moment ago whose agent is not back yet; the administrator ends his session"
# Its QEMU stopped across a slated restart: the logon claims the adopted desktop and reaches the
# agent step before the agent has said hello again, and waits for it (it failed "not connected").
spare=$(ready_id)
spid=$(jctl desktop list --pool desk | jq -r --arg id "$spare" '.[] | select(.id == $id) | .pid')
stop_slated TERM
kill -STOP "$spid"
start_slated
rdp --user bob --password hunter2 --wait-frame --expect-pixel "20,20,$(desk_user_rgb bob)" --hold 1 >"$T/out" 2>&1 &
rp=$!
sleep 3
kill -CONT "$spid"
wait $rp || fail "bob logon to the adopted desktop: $(cat "$T/out")"
[ "$(jctl session list --user bob | jq -r '.[0].desktop')" = "$spare" ] || fail "bob did not get the adopted desktop"
sid=$(jctl session list --user bob | jq -r '.[0].id')
bdesk=$(jctl session list --user bob | jq -r '.[0].desktop')
ctl session end "$sid" >/dev/null
desk=$bdesk
wait_for 30 "bob's desktop erased" gone
bob_closed() { [ "$(pam_sessions close_session bob)" = 1 ]; }
wait_for 10 "bob's PAM session closed" bob_closed
[ "$(pam_sessions open_session bob)" = 1 ] || fail "bob's PAM sessions: $(cat "$T/pam-sessions.log")"

say "slow1's desktop is usable 4 s after it started; the refill boot waits until then"
echo "slow1:pw5:slate" >>"$T/passdb"
echo "never1:pw6:slate" >>"$T/passdb"
ctl pool entitle desk user:slow1 >/dev/null
ctl pool entitle desk user:never1 >/dev/null
wait_for 180 "a ready desktop" pool_ready desk 1
mark=$(wc -l <"$T/slated.log")
rdp --user slow1 --password pw5 --wait-frame --expect-pixel "20,20,$(desk_user_rgb slow1)" --hold 8 >"$T/out" 2>&1 ||
        fail "slow1 logon: $(cat "$T/out")"
s=$(jctl session list --user slow1 | jq '.[0]')
sid=$(echo "$s" | jq -r .id)
sdesk=$(echo "$s" | jq -r .desktop)
tl=$(jctl session show "$sid" | jq -c '.timeline[0].steps')
say "slow1: logon_ms $(echo "$s" | jq .logon_ms), first frame $(echo "$s" | jq .logon_first_frame_ms); $tl"
echo "$tl" | jq -e '([.[] | select(.step == "first-frame" or .step == "usable") | .result] == ["ok","ok"]) and
        ([.[] | select(.step == "usable")][0].ms >= 2000)' >/dev/null ||
        fail "slow1's usable is not recorded seconds after the first frame: $tl"
echo "$s" | jq -e '.usable and .logon_ms >= .logon_first_frame_ms + 2000' >/dev/null ||
        fail "slow1's logon_ms is not accept → usable: $s"
# In slated's log since the logon: the hold, then slow1's usable, then the refill's boot.
line_of() { tail -n +"$mark" "$T/slated.log" | grep -n -m1 -E "$1" | cut -d: -f1; }
held=$(line_of "spare boots wait until desktop $sdesk")
usable=$(line_of "desktop $sdesk .*usable [0-9]+ ms after its claim")
booted=$(line_of "desktop [^ ]+ \\(pool desk\\): booting")
say "slated.log lines after the logon: hold $held, usable $usable, refill boot $booted"
[ -n "$held" ] && [ -n "$usable" ] && [ -n "$booted" ] && [ "$held" -lt "$usable" ] && [ "$usable" -lt "$booted" ] ||
        fail "the refill did not wait for slow1's desktop to be usable: $(tail -n +"$mark" "$T/slated.log" | grep -E 'spare boots|usable|booting')"
ctl session end "$sid" >/dev/null
desk=$sdesk
wait_for 30 "slow1's desktop erased" gone

say "never1's desktop never says usable: after the usable-timeout he is told, the session ends, the desktop is destroyed"
ctl pool set desk --usable-timeout 6 >/dev/null
wait_for 180 "a ready desktop" pool_ready desk 1
desk=$(ready_id)
start=$(date +%s)
rdp --user never1 --password pw6 --wait-frame --hold 40 >"$T/out" 2>&1 || true
took=$(($(date +%s) - start))
[ "$took" -lt 30 ] || fail "never1's session was not ended after the usable-timeout (client held ${took} s): $(cat "$T/out")"
wait_for 30 "never1's desktop destroyed" gone
never_audited() {
        jctl audit --kind logon.failed | jq -e '.[0].subject == "never1" and (.[0].detail | test("not usable .* \\(usable-timeout\\)"))' >/dev/null &&
                jctl audit --kind logout | jq -e '.[0].subject == "never1" and (.[0].detail | test("did not become ready"))' >/dev/null
}
wait_for 10 "never1's failed logon and logout in the audit trail" never_audited
grep -q "session ended by slated: your desktop did not become ready in 6 s" "$T/slated.log" ||
        fail "never1's client was not told why: $(grep -i 'ended by slated' "$T/slated.log" | tail -3)"
say "never1: client disconnected after ${took} s; $(jctl audit --kind logout | jq -r '.[0].detail')"
[ "$(jctl session list --user never1 | jq length)" -eq 0 ] || fail "never1's session is still there"
ctl pool set desk --usable-timeout 180 >/dev/null

say "idle timeout: a session without input ends"
ctl pool set desk --idle-timeout 4 >/dev/null
wait_for 180 "a ready desktop" pool_ready desk 1
start=$(date +%s)
rdp --user bob --password hunter2 --wait-desktop --hold 30 >"$T/out" 2>&1 || true
[ $(($(date +%s) - start)) -lt 25 ] || fail "the idle session was not ended: $(cat "$T/out")"
idle_audited() { jctl audit --kind logout | jq -e '.[0].subject == "bob" and (.[0].detail | test("idle timeout"))' >/dev/null; }
wait_for 10 "the idle logout in the audit trail" idle_audited
ctl pool set desk --idle-timeout 0 >/dev/null

# Carol is spelt as a directory may spell her: upper case passes PAM and the desktop alike.
say "cold logon: no warm desktop, Carol waits for one to boot"
ctl pool set desk --warm 0 >/dev/null
no_ready() { [ "$(count_state desk ready)" -eq 0 ] && [ "$(count_state desk booting)" -eq 0 ]; }
wait_for 30 "no ready desktop" no_ready
echo "Carol:pw3:slate" >>"$T/passdb"
ctl pool entitle desk user:Carol >/dev/null
rdp --user Carol --password pw3 --wait-frame --expect-pixel "20,20,$(desk_user_rgb Carol)" >"$T/out" 2>&1 ||
        fail "cold logon: $(cat "$T/out")"
say "cold: $(tail -1 "$T/out")"
grep -q "waiting for .* to boot" "$T/slated.log" || fail "the wait for a cold desktop is not in the log"
ctl audit --limit 20
stop_slated TERM
echo "PASS: logon"
