#!/usr/bin/env bash
# App layers and roaming profiles end to end (issue: per-user applications and profile disks):
# real slated, the tiny test guest under QEMU, real PAM, the real RDP client. The guest's session
# hook (tests/guest/session-hook) reports what the session found: its home canary, a file written
# outside home by the last session, and the layer programs it can run; slated audits that report
# as session.started. Checks: an entitled user runs the layer's program, another user does not; a
# file in home is there at the next logon on another desktop and after a slated restart; a file
# outside home is gone; the canary is nowhere in the state dir in clear; a desktop killed mid-write
# leaves a profile that mounts cleanly next time (journal replay, audited); two logons of one user
# at once attach the profile once.
. "$(dirname "$0")/../integration/lib.sh"
require_tools
setup tcg
setup_pam alice:secret bob:hunter2 writer1:pw
setup_rdp
sed -i "s/^profile-spares = 0$/profile-spares = 1/" "$CONF"     # the first new profile comes from a spare disk
sed -i "s/^profile-backup = off$/profile-backup = on/" "$CONF"     # every logout backs the profile up (checked at the end)
start_slated
publish_guest tiny >/dev/null

# A layer from a prepared tree: one program, a menu entry.
tree="$T/tree-hello"
mkdir -p "$tree/usr/bin" "$tree/usr/share/applications"
printf '#!/bin/sh\necho hello-from-layer\n' >"$tree/usr/bin/slate-app-hello"
chmod 755 "$tree/usr/bin/slate-app-hello"
printf '[Desktop Entry]\nName=Hello\nExec=slate-app-hello\nType=Application\n' >"$tree/usr/share/applications/hello.desktop"
ctl app add hello "$tree" --image tiny >/dev/null
jctl app show hello | jq -e '.versions[0].executables == ["usr/bin/slate-app-hello"] and
        .versions[0].menu_entries == ["usr/share/applications/hello.desktop"]' >/dev/null || fail "manifest: $(jctl app show hello)"
ctl app entitle hello user:alice >/dev/null

ctl pool create desk --image tiny --warm 2 --max 4 --memory 256M --disconnect-timeout 0 >/dev/null
ctl pool entitle desk user:alice >/dev/null
ctl pool entitle desk user:bob >/dev/null
ctl pool create keep --image tiny --warm 1 --max 2 --memory 256M --disconnect-timeout 600 >/dev/null
ctl pool entitle keep user:writer1 >/dev/null
wait_for 300 "ready desktops" pool_ready desk 2

# started USER N: the detail of USER's Nth session.started (1 = the oldest).
started() { jctl audit --kind session.started | jq -r --arg u "$1" --argjson n "$2" '[.[] | select(.subject == $u)] | reverse | .[$n - 1].detail // empty'; }
last_started() { jctl audit --kind session.started | jq -r --arg u "$1" '[.[] | select(.subject == $u)][0].detail // empty'; }
nstarted() { jctl audit --kind session.started | jq --arg u "$1" '[.[] | select(.subject == $u)] | length'; }
no_backup_running() { [ "$(jctl session list | jq '[.[] | select(.state == "ending")] | length')" -eq 0 ]; }
session_gone() { [ "$(jctl session list --user "$1" | jq length)" -eq 0 ]; }
logon() { # USER PASSWORD: a logon that ends at disconnect (pool desk)
        rdp --user "$1" --password "$2" --wait-desktop --hold 1 >"$T/out" 2>&1 || fail "$1 logon: $(cat "$T/out")"
        wait_for 60 "$1's session ended" session_gone "$1"
}

say "alice logs on: her layer's program runs, her profile is new (from the spare disk)"
spare_ready() { ls "$T"/state/profiles/.spare/spare-*.qcow2 >/dev/null 2>&1; }
wait_for 120 "a spare profile disk" spare_ready
logon alice secret
jctl audit --kind profile.create | jq -e '[.[] | select(.subject == "alice")][0].detail | contains("a spare disk")' >/dev/null ||
        fail "alice's profile did not come from the spare: $(jctl audit --kind profile.create)"
d1=$(started alice 1)
say "alice: $d1"
case $d1 in *"app:slate-app-hello=hello-from-layer"*) ;; *) fail "alice cannot run the layer's program: $d1" ;; esac
canary=$(echo "$d1" | sed -n 's/.*home=new:\([^ ;]*\).*/\1/p')
[ -n "$canary" ] || fail "alice's home is not a new profile disk: $d1"
case $d1 in *"outside=absent"*) ;; *) fail "a fresh desktop had a file outside home: $d1" ;; esac

say "bob is not entitled: no layer program; his first profile has the pool's size"
ctl pool set desk --profile-size 96M >/dev/null
logon bob hunter2
jctl profile show bob | jq -e '.size == 100663296' >/dev/null || fail "bob's profile is not the pool's 96M: $(jctl profile show bob)"
ctl pool set desk --profile-size 0 >/dev/null
b1=$(started bob 1)
say "bob: $b1"
case $b1 in *"app:slate-app-hello"*) fail "bob got alice's layer: $b1" ;; esac
case $b1 in *"home=new:"*) ;; *) fail "bob has no profile of his own: $b1" ;; esac

say "the canary is nowhere in the state or run dirs in clear"
if grep -r -a -l -F --devices=skip "SLATE-HOME-$canary" "$T/state" "$T/run" 2>/dev/null; then
        fail "alice's home canary is readable on the host"
fi
jctl profile show alice | jq -e '.encrypted == true and .attached_to == null and .clean == true' >/dev/null ||
        fail "alice's profile after logoff: $(jctl profile show alice)"

say "alice again, on another desktop: her home file is there, the outside file is not"
logon alice secret
d2=$(started alice 2)
say "alice: $d2"
case $d2 in *"home=$canary"*) ;; *) fail "alice's home file did not survive the logoff: $d2" ;; esac
case $d2 in *"outside=absent"*) ;; *) fail "a file outside home survived the logoff: $d2" ;; esac

say "the host key is rotated: profile keys re-wrapped, the disks untouched"
keyfile=$T/state/keys/profile-host.key
old_key=$(sha256sum "$keyfile" | cut -d' ' -f1)
disk=$(jctl profile show alice | jq -r .path)
old_disk=$(sha256sum "$disk" | cut -d' ' -f1)
jctl profile rotate-host-key | jq -e '.rewrapped >= 2 and .failed == 0' >/dev/null || fail "rotation: $(jctl profile rotate-host-key)"
[ "$(sha256sum "$keyfile" | cut -d' ' -f1)" != "$old_key" ] || fail "the host key did not change"
[ "$(sha256sum "$disk" | cut -d' ' -f1)" = "$old_disk" ] || fail "rotating the host key rewrote a disk"
[ ! -e "$keyfile.next" ] || fail "the rotation left $keyfile.next"

say "alice's quota is raised: her disk grows at the next logon, her files kept"
ctl profile quota alice 1280M >/dev/null

say "slated restarts; alice's home is still there (under the new host key)"
stop_slated TERM
start_slated
wait_for 300 "ready desktops" pool_ready desk 1
logon alice secret
d3=$(started alice 3)
case $d3 in *"home=$canary"*) ;; *) fail "alice's home did not survive a slated restart: $d3" ;; esac
case $d3 in *"(grown to 1280 MiB)"*) ;; *) fail "alice's profile did not grow to her quota: $d3" ;; esac
jctl profile show alice | jq -e '.size == 1342177280' >/dev/null || fail "alice's profile size: $(jctl profile show alice)"
jctl audit --kind profile.grow | jq -e '[.[] | select(.subject == "alice")] | length == 1' >/dev/null ||
        fail "the growth is not audited: $(jctl audit --kind profile.grow)"

say "two logons of alice at once: one session, the profile attached once"
before=$(nstarted alice)
wait_for 300 "ready desktops" pool_ready desk 2
rdp --user alice --password secret --wait-desktop --hold 3 >"$T/c1" 2>&1 &
p1=$!
rdp --user alice --password secret --wait-desktop --hold 3 >"$T/c2" 2>&1 &
p2=$!
wait $p1 || true
wait $p2 || true
wait_for 60 "alice's session ended" session_gone alice
after=$(nstarted alice)
[ "$after" -eq $((before + 1)) ] || fail "two logons of alice started $((after - before)) sessions"
attaches=$(grep -c "disk profile attached" "$T/slated.log" || true)
say "profile attaches in the log so far: $attaches"

say "a desktop killed mid-write: the next logon mounts the profile cleanly"
wait_for 300 "a ready keep desktop" pool_ready keep 1
rdp --user writer1 --password pw --wait-desktop --hold 1 >"$T/out" 2>&1 || fail "writer1 logon: $(cat "$T/out")"
w1=$(started writer1 1)
wcanary=$(echo "$w1" | sed -n 's/.*home=new:\([^ ;]*\).*/\1/p')
[ -n "$wcanary" ] || fail "writer1 got no new profile: $w1"
pid=$(jctl desktop list --pool keep | jq -r '[.[] | select(.state == "assigned")][0].pid')
[ -n "$pid" ] && [ "$pid" != null ] || fail "writer1's desktop has no pid"
sleep 3
kill -KILL "$pid"
wait_for 60 "writer1's session ended" session_gone writer1
jctl profile show writer1 | jq -e '.clean == false' >/dev/null || fail "a killed desktop left a clean profile: $(jctl profile show writer1)"
wait_for 300 "a ready keep desktop" pool_ready keep 1
rdp --user writer1 --password pw --wait-desktop --hold 1 >"$T/out" 2>&1 || fail "writer1 logon after the kill: $(cat "$T/out")"
w2=$(started writer1 2)
say "writer1: $w2"
case $w2 in *"home=$wcanary"*) ;; *) fail "writer1's home after the kill: $w2" ;; esac
case $w2 in *"journal replayed"*) ;; *) fail "the replay after the kill is not reported: $w2" ;; esac
jctl audit --kind profile.recover | jq -e '[.[] | select(.subject == "writer1")] | length == 1' >/dev/null ||
        fail "the recovery is not audited"

say "a layer whose image changed is refused at attach; app verify says so"
img=$(jctl app show hello | jq -r '.versions[0].path')/layer.img
chmod 644 "$img"
printf 'X' | dd of="$img" bs=1 seek=4096 conv=notrunc 2>/dev/null
if ctl app verify hello >/dev/null 2>&1; then fail "app verify accepted a changed layer"; fi
logon alice secret
d4=$(last_started alice)
case $d4 in *"app:slate-app-hello"*) fail "a changed layer was attached: $d4" ;; esac
jctl audit --kind app.attach-refused | jq -e '.[0].detail | contains("not what its hash says")' >/dev/null ||
        fail "the refused layer is not audited"
say "every logout's backup went through, across the host key rotation and the killed desktop"
wait_for 120 "backups to finish" no_backup_running
jctl audit --kind profile.backup-failed | jq -e 'length == 0' >/dev/null ||
        fail "backups failed: $(jctl audit --kind profile.backup-failed)"
jctl audit --kind profile.backup | jq -e '[.[] | select(.subject == "writer1")] | any(.detail | contains("no trusted dirty bitmap"))' \
        >/dev/null || fail "the backup after the killed desktop trusted its bitmap: $(jctl audit --kind profile.backup)"
stop_slated TERM
echo "PASS: profiles"
