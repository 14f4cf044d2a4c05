#!/usr/bin/env bash
# A pool of 3 warm desktops from the published test guest: all become ready, a killed QEMU is
# replaced, a destroyed desktop is erased and refilled, a slated restart adopts the running
# desktops and leaves no orphan QEMU or overlay, and deleting the pool drains it.
. "$(dirname "$0")/lib.sh"
require_tools
setup auto
start_slated

accel=$(jctl status | jq -r .accel)
say "accelerator: $accel ($(jctl status | jq -r .accel_reason))"

say "publish the test guest"
v=$(publish_guest tiny)
[ "$(echo "$v" | jq -r .version)" = 1 ] || fail "first version is not 1: $v"
golden=$(echo "$v" | jq -r .path)
sha=$(echo "$v" | jq -r .sha256)
[ "$(sha256sum "$golden" | cut -d' ' -f1)" = "$sha" ] || fail "recorded sha256 does not match the stored file"
[ "$(stat -c %a "$golden")" = 444 ] || fail "golden file is writable"

say "pool of 3 warm desktops"
ctl pool create p1 --image tiny --warm 3 --max 4 --memory 256M >/dev/null
wait_for 180 "3 ready desktops" pool_ready p1 3
ctl desktop list
[ "$(qemu_pids | wc -l)" -eq 3 ] || fail "expected 3 QEMU processes, found $(qemu_pids | wc -l)"
if [ "$(id -u)" = 0 ]; then
        for p in $(qemu_pids); do
                [ "$(stat -c %U /proc/$p)" != root ] || fail "QEMU pid $p runs as root"
        done
        say "QEMU runs as $(stat -c %U /proc/$(qemu_pids | head -1))"
fi

say "kill -9 one QEMU: it is replaced"
victim=$(jctl desktop list --pool p1 | jq -r '.[0].id')
vpid=$(jctl desktop list --pool p1 | jq -r '.[0].pid')
vov=$(jctl desktop list --pool p1 | jq -r '.[0].overlay_path')
kill -9 "$vpid"
gone() { ! jctl desktop list | jq -e --arg id "$victim" '.[] | select(.id == $id)' >/dev/null; }
wait_for 10 "killed desktop $victim to be noticed" gone
[ ! -e "$vov" ] || fail "overlay of the killed desktop is still there: $vov"
wait_for 180 "pool refilled to 3" pool_ready p1 3

say "destroy one desktop"
victim=$(jctl desktop list --pool p1 | jq -r '.[0].id')
vov=$(jctl desktop list --pool p1 | jq -r '.[0].overlay_path')
ctl desktop destroy "$victim"
wait_for 15 "destroyed desktop $victim to go" gone
[ ! -e "$vov" ] || fail "overlay of the destroyed desktop is still there: $vov"
wait_for 180 "pool refilled to 3" pool_ready p1 3

say "restart slated: desktops are adopted, no orphans"
before=$(jctl desktop list | jq -r '[.[].id] | sort | join(",")')
stop_slated TERM
[ "$(qemu_pids | wc -l)" -eq 3 ] || fail "desktops did not survive a slated stop"
start_slated
wait_for 30 "adopted desktops ready" pool_ready p1 3
after=$(jctl desktop list | jq -r '[.[].id] | sort | join(",")')
[ "$before" = "$after" ] || fail "desktops changed across restart: $before -> $after"
[ "$(qemu_pids | wc -l)" -eq 3 ] || fail "expected 3 QEMU after restart, found $(qemu_pids | wc -l)"
[ "$(ls "$T/state/overlays" | wc -l)" -eq 3 ] || fail "overlay files: $(ls "$T/state/overlays")"

say "slated killed hard; an orphan overlay and run dir appear: the next start cleans up"
stop_slated KILL
touch "$T/state/overlays/d-orphan.qcow2"
mkdir -p "$T/run/desktops/d-orphan"
start_slated
wait_for 30 "adopted desktops ready" pool_ready p1 3
[ ! -e "$T/state/overlays/d-orphan.qcow2" ] || fail "orphan overlay left"
[ ! -e "$T/run/desktops/d-orphan" ] || fail "orphan run dir left"
[ "$(qemu_pids | wc -l)" -eq 3 ] || fail "expected 3 QEMU, found $(qemu_pids | wc -l)"

say "image current version cannot be retired while in use"
if ctl image retire tiny 1 2>"$T/err"; then fail "retired an image in use"; fi
grep -q "in use" "$T/err" || fail "unclear retire error: $(cat "$T/err")"

say "delete the pool: it drains"
ctl pool delete p1
nothing_left() { [ "$(jctl desktop list | jq length)" -eq 0 ] && [ -z "$(qemu_pids)" ]; }
wait_for 30 "pool drained" nothing_left
[ -z "$(ls "$T/state/overlays")" ] || fail "overlays left: $(ls "$T/state/overlays")"
[ -z "$(ls "$T/run/desktops")" ] || fail "run dirs left: $(ls "$T/run/desktops")"
[ "$(sha256sum "$golden" | cut -d' ' -f1)" = "$sha" ] || fail "the golden image changed"
ctl image verify tiny >/dev/null || fail "image verify failed"
stop_slated TERM
echo "PASS: pool lifecycle"
