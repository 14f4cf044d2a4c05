#!/usr/bin/env bash
# Instant clones (issue 19) with real QEMU and the tiny guest: one template serves every check.
# Two clones differ in machine-id, agent token and random output; a canary written in one is not
# in the other, the template or anywhere after destroy; an encrypted clone's overlay is
# encrypted (the plain pool is the control); a new image version makes the template stale and a
# new one is built; a corrupt template file makes the pool boot cold.
. "$(dirname "$0")/lib.sh"
require_tools
setup tcg
# Spares run at idle CPU priority: beside a busy suite a clone's agent can be silent for seconds.
sed -i 's/^heartbeat-misses = .*/heartbeat-misses = 60/' "$CONF"
start_slated
publish_guest tiny >/dev/null

canary_of() { echo "SLATE-CANARY-$(printf %s "$1" | sha256sum | cut -d' ' -f1)"; }
found_in() { grep -r -a -l -F --devices=skip "$1" "$2" 2>/dev/null | grep -v '\.log$' || true; }
desk() { jctl desktop list --pool "$1" | jq -c "[.[] | select(.state == \"ready\")] | sort_by(.id) | .[$2]"; }
tmpl_ready() { jctl template list | jq -e --arg i "$1" --argjson v "$2" \
        '[.[] | select(.image == $i and .version == $v and .state == "ready")] | length == 1' >/dev/null; }

say "two plain clones (the control: a plain overlay shows what it holds)"
# warm 0 first: the pool manager builds the template ahead, so no desktop boots cold meanwhile.
ctl pool create c-plain --image tiny --warm 0 --max 2 --memory 256M --overlay plain --clone >/dev/null
wait_for 300 "a ready template" tmpl_ready tiny 1
ctl pool set c-plain --warm 2 >/dev/null
wait_for 180 "two ready clones" pool_ready c-plain 2
d1=$(desk c-plain 0) d2=$(desk c-plain 1)
for d in "$d1" "$d2"; do
        [ "$(echo "$d" | jq -r .boot_mode)" = clone ] || fail "not a clone: $d"
        for k in machine_id agent_token_id rng_sample boot_id hostname; do
                [ -n "$(echo "$d" | jq -r ".$k // empty")" ] || fail "no $k: $d"
        done
done
for k in machine_id agent_token_id rng_sample boot_id hostname; do
        [ "$(echo "$d1" | jq -r .$k)" != "$(echo "$d2" | jq -r .$k)" ] || fail "both clones have the same $k"
done
say "clones differ: machine-id, agent token, random output, boot id, hostname"
say "clones READY (identity applied) $(echo "$d1" "$d2" | jq -s -r 'map(.spawn_ready_ms | tostring) | join(" and ")') ms after their QEMU's spawn (two at once, idle priority)"

tname=$(echo "$d1" | jq -r .template)
tdir=$(jctl template list | jq -r --arg n "$tname" '.[] | select(.name == $n) | .path')
[ -d "$tdir" ] || fail "template dir $tdir missing"
id1=$(echo "$d1" | jq -r .id) ov1=$(echo "$d1" | jq -r .overlay_path) ov2=$(echo "$d2" | jq -r .overlay_path)
c1=$(canary_of "$(echo "$d1" | jq -r .boot_id)") c2=$(canary_of "$(echo "$d2" | jq -r .boot_id)")
[ -n "$(found_in "$c1" "$ov1")" ] || fail "clone 1's canary not in its own plain overlay (the test cannot see it?)"
[ -n "$(found_in "$c2" "$ov2")" ] || fail "clone 2's canary not in its own plain overlay"
[ -z "$(found_in "$c1" "$ov2")" ] || fail "clone 1's canary is in clone 2's overlay"
[ -z "$(found_in "$c1" "$tdir")" ] || fail "clone 1's canary is in the template: $(found_in "$c1" "$tdir")"
say "canary of clone 1: in its overlay, not in clone 2's, not in the template"

# The template was saved before any desktop had an identity: none of the clones' is in it.
ram_sum=$(sha256sum "$tdir/ram" | cut -d' ' -f1)
for d in "$d1" "$d2"; do
        for k in machine_id hostname boot_id; do
                v=$(echo "$d" | jq -r .$k)
                [ -z "$(found_in "$v" "$tdir")" ] || fail "clone $k $v is in the template"
        done
done
say "no clone's machine-id, hostname or boot id in the template"

ctl desktop destroy "$id1" >/dev/null
gone() { ! jctl desktop list | jq -e --arg id "$id1" '.[] | select(.id == $id)' >/dev/null; }
wait_for 20 "clone 1 destroyed" gone
[ -z "$(found_in "$c1" "$T/state")$(found_in "$c1" "$T/run")$(found_in "$c1" "$RAM")" ] ||
        fail "clone 1's canary is still on the host after destroy"
say "clone 1 destroyed: its canary is nowhere on the host"
ctl pool set c-plain --warm 0 >/dev/null

say "an encrypted clone (the default overlay) from the same template"
ctl pool create c-enc --image tiny --warm 1 --max 1 --memory 256M --clone >/dev/null
wait_for 180 "a ready encrypted clone" pool_ready c-enc 1
d3=$(desk c-enc 0)
[ "$(echo "$d3" | jq -r .boot_mode)" = clone ] || fail "encrypted desktop is not a clone: $d3"
[ "$(echo "$d3" | jq -r .template)" = "$tname" ] || fail "a second template was made for the same version and shape"
ov3=$(echo "$d3" | jq -r .overlay_path)
qemu-img info -U --output=json "$ov3" | jq -e '.encrypted == true' >/dev/null || fail "clone overlay $ov3 is not encrypted"
c3=$(canary_of "$(echo "$d3" | jq -r .boot_id)")
[ -z "$(found_in "$c3" "$T/state")$(found_in "$c3" "$T/run")$(found_in "$c3" "$RAM")" ] ||
        fail "the encrypted clone's canary is readable on the host"
say "encrypted clone: overlay encrypted, its canary not readable on the host"
[ "$(sha256sum "$tdir/ram" | cut -d' ' -f1)" = "$ram_sum" ] || fail "the template's RAM file changed under its clones"
say "the template's RAM file is unchanged after three clones"
# QEMU 7.2 opens a RAM file read-write even for a private mapping: a clone gets a sealed memfd
# instead (fd 4), and the file itself is root's alone.
[ "$(stat -c '%u %a' "$tdir/ram")" = "0 400" ] || fail "the template's RAM file is $(stat -c '%u %a' "$tdir/ram"), not root's 400"
qpid=$(echo "$d3" | jq -r .pid)
grep -qa "mem-path=/dev/fd/4" /proc/"$qpid"/cmdline || fail "the clone does not map its RAM from fd 4"
readlink /proc/"$qpid"/fd/4 | grep -q "^/memfd:slate-template-ram" || fail "the clone's fd 4 is $(readlink /proc/"$qpid"/fd/4)"
if printf x 2>/dev/null >>/proc/"$qpid"/fd/4; then fail "the clones' RAM copy took a write"; fi
if [ "$(id -u)" = 0 ]; then
        quid=$(echo "$d3" | jq -r .uid)
        if setpriv --reuid="$quid" --regid="$quid" --clear-groups dd if=/dev/zero of="$tdir/ram" count=0 conv=notrunc status=none 2>/dev/null; then
                fail "a clone's uid can open the template's RAM file for writing"
        fi
fi
say "clones map a sealed copy of the RAM (fd 4, no write taken); the file is root's 400"
stop_slated TERM
start_slated
adopted_clone() { [ "$(jctl desktop list --pool c-enc | jq -r --arg id "$(echo "$d3" | jq -r .id)" \
        '.[] | select(.id == $id and .state == "ready") | .boot_mode')" = clone ]; }
wait_for 30 "the encrypted clone adopted, still shown as a clone" adopted_clone
say "after a slated restart the adopted clone is still shown as one"

say "a new image version: the template is stale and rebuilt"
ctl pool set c-enc --warm 0 >/dev/null    # no idle v1 desktop to replace: the template alone boots
publish_guest tiny >/dev/null
wait_for 240 "a template for v2" tmpl_ready tiny 2
[ ! -d "$tdir" ] || fail "the stale template $tdir was not removed"
jctl template list | jq -e 'all(.version == 2)' >/dev/null || fail "a v1 template is still listed"
say "template for v2 ready, v1's removed"

say "a corrupt template file: the pool boots cold"
t2=$(jctl template list | jq -r '.[0].path')
printf 'garbage' | dd of="$t2/state" bs=1 seek=4096 conv=notrunc status=none
ctl pool delete c-plain >/dev/null
ctl pool create c-cold --image tiny --warm 1 --max 1 --memory 256M --clone >/dev/null
wait_for 240 "a ready desktop after the corruption" pool_ready c-cold 1
d4=$(desk c-cold 0)
[ "$(echo "$d4" | jq -r .boot_mode)" = cold ] || fail "a desktop was cloned from a corrupt template: $d4"
grep -q "cold boot: template .*does not match its checksum" "$T/slated.log" || fail "no log line saying why it booted cold"
say "corrupt template: cold boot, and the log says why"

say "template rm, a rebuild, and a clone whose state does not load"
ctl template list | grep -q failed || fail "template list does not show the failed template"
ctl template rm "$(jctl template list | jq -r '.[0].name')" >/dev/null
wait_for 300 "the template rebuilt" tmpl_ready tiny 2
t3=$(jctl template list | jq -r '.[0].path')
# A state that matches its recorded checksum but does not load (as a QEMU that cannot read its
# own template would see it): slated re-reads the checksum at start.
stop_slated TERM
printf 'garbage' | dd of="$t3/state" bs=1 seek=0 conv=notrunc status=none     # its header
sed -i "s/^state_sha256=.*/state_sha256=$(sha256sum "$t3/state" | cut -d' ' -f1)/" "$t3/meta"
start_slated
ctl pool create c-res --image tiny --warm 1 --max 1 --memory 256M --clone >/dev/null
wait_for 240 "a ready desktop after the failed resume" pool_ready c-res 1
[ "$(desk c-res 0 | jq -r .boot_mode)" = cold ] || fail "the desktop after a failed resume is not a cold one"
# The failure comes either as the load step's error or, when QEMU's exit is seen first, as its exit.
grep -Eq "clone of .* failed \((resume: .*|qemu exited \([0-9]+\))\); destroyed, with its template" "$T/slated.log" ||
        fail "no log line for the clone that failed to resume"
say "the clone that did not resume was destroyed with its template, a cold desktop replaced it"
stop_slated TERM
echo "PASS: clone"
