#!/usr/bin/env bash
# Rolling refresh: publishing a new current version replaces idle desktops at once while a
# running session keeps its desktop until it ends; new logons get the new version. Then the old
# version is retired and garbage-collected, and max-age replaces idle desktops that got too old.
. "$(dirname "$0")/../integration/lib.sh"
require_tools
setup tcg
setup_pam alice:secret bob:hunter2
setup_rdp
start_slated
publish_guest tiny >/dev/null
ctl pool create desk --image tiny --warm 1 --max 3 --memory 256M >/dev/null
ctl pool entitle desk all >/dev/null
wait_for 180 "a ready desktop" pool_ready desk 1

say "alice is working on v1"
# Held far longer than the refresh takes even on a loaded host; the session end below ends it.
rdp --user alice --password secret --wait-desktop --hold 900 --timeout 960 >"$T/alice.out" 2>&1 &
alice_pid=$!
active() { jctl session list --user alice | jq -e '.[0].state == "active"' >/dev/null; }
wait_for 60 "alice's session active" active
adesk=$(jctl session list --user alice | jq -r '.[0].desktop')
wait_for 180 "a ready spare" pool_ready desk 1
old_ready=$(jctl desktop list --pool desk | jq -r '[.[] | select(.state == "ready")][0].id')

say "v2 becomes current"
publish_guest tiny >/dev/null
[ "$(jctl image show tiny | jq -r .current)" = 2 ] || fail "v2 not current"
v2_ready() { jctl desktop list --pool desk | jq -e '[.[] | select(.state == "ready" and .image_version == 2)] | length >= 1' >/dev/null; }
wait_for 180 "a ready v2 desktop" v2_ready
jctl desktop list | jq -e --arg id "$old_ready" '[.[] | select(.id == $id)] | length == 0' >/dev/null ||
        fail "the idle v1 desktop $old_ready was not replaced"
jctl desktop list | jq -e --arg id "$adesk" '.[] | select(.id == $id and .image_version == 1 and .state == "assigned")' \
        >/dev/null || fail "alice's v1 desktop was touched by the refresh"
kill -0 $alice_pid 2>/dev/null || fail "alice's client was disconnected by the refresh: $(cat "$T/alice.out")"
active || fail "alice's session is no longer active"

say "bob logs on: he gets v2"
rdp --user bob --password hunter2 --wait-frame --expect-pixel "20,20,$(desk_user_rgb bob)" >"$T/out" 2>&1 ||
        fail "bob: $(cat "$T/out")"
bdesk=$(jctl session list --user bob | jq -r '.[0].desktop')
[ "$(jctl desktop list | jq -r --arg id "$bdesk" '.[] | select(.id == $id) | .image_version')" = 2 ] ||
        fail "bob did not get a v2 desktop"

say "v1 cannot be retired while alice uses it; after her logout it is retired and collected"
if ctl image retire tiny 1 2>"$T/err"; then fail "retired v1 while in use"; fi
grep -q "in use" "$T/err" || fail "unclear error: $(cat "$T/err")"
ctl session end "$(jctl session list --user alice | jq -r '.[0].id')" >/dev/null
wait "$alice_pid" 2>/dev/null || true
gone() { ! jctl desktop list | jq -e --arg id "$adesk" '.[] | select(.id == $id)' >/dev/null; }
wait_for 30 "alice's v1 desktop erased" gone
v1dir=$(dirname "$(jctl image show tiny | jq -r '.versions[0].path')")
ctl image retire tiny 1 >/dev/null
jctl image gc | jq -e '.removed | length == 1 and .[0].version == 1' >/dev/null || fail "gc did not remove v1"
[ ! -e "$v1dir" ] || fail "v1 files are still there: $v1dir"
[ "$(jctl image show tiny | jq '.versions | length')" = 1 ] || fail "v1 still in the catalogue"
jctl image gc | jq -e '.removed | length == 0' >/dev/null || fail "a second gc removed something"

say "max age: idle desktops older than it are replaced"
before=$(jctl desktop list --pool desk | jq -r '[.[] | select(.state == "ready")][0].id')
ctl pool set desk --max-age 5 >/dev/null
replaced() { ! jctl desktop list | jq -e --arg id "$before" '.[] | select(.id == $id)' >/dev/null; }
wait_for 30 "the old idle desktop replaced" replaced
jctl desktop list | jq -e --arg id "$bdesk" '.[] | select(.id == $id and .state == "assigned")' >/dev/null ||
        fail "max age replaced bob's desktop while he uses it"
stop_slated TERM
echo "PASS: refresh"
