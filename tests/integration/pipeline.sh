#!/usr/bin/env bash
# Image publishing pipeline with a real libguestfs appliance: inspect (OS recorded; an empty
# disk and an unbootable one refused), seal (planted secrets gone from the stored version, still
# in the source), agent injection (a disk without the agent boots to a ready desktop), a
# directory published as ext4, and image diff. Launches are few: each costs ~10 s under TCG.
. "$(dirname "$0")/lib.sh"
require_tools
command -v guestfish >/dev/null || skip "guestfish not installed (apt-get install libguestfs-tools)"
[ -s "$GUEST/disk-noagent.qcow2" ] && [ -s "$GUEST/guestfs-kernel.env" ] ||
        skip "test guest too old (no disk-noagent.qcow2 / guestfs-kernel.env; run make guest)"
. "$GUEST/guestfs-kernel.env"
[ -r "$SLATE_GUESTFS_KERNEL" ] && [ -d "$SLATE_GUESTFS_MODULES" ] ||
        skip "no kernel for the libguestfs appliance ($SLATE_GUESTFS_KERNEL)"
[ -d /lib/modules ] || skip "/lib/modules missing: supermin needs it (mkdir -p /lib/modules)"
# guestfish in this script uses the same kernel as slated.
export SUPERMIN_KERNEL=$SLATE_GUESTFS_KERNEL SUPERMIN_MODULES=$SLATE_GUESTFS_MODULES
export SUPERMIN_KERNEL_VERSION=${SLATE_GUESTFS_MODULES##*/}
export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg

setup tcg
# A private copy of the session script: the diff below must not see it change between publishes.
[ -f "$S/agent/session-script" ] && cp "$S/agent/session-script" "$T/session-script"
# lib.sh may already set these (slate.conf refuses a key set twice).
conf_key() { grep -q "^$1 *=" "$CONF" || echo "$1 = $2" >>"$CONF"; }
conf_key guestfs-kernel "$SLATE_GUESTFS_KERNEL"
conf_key guestfs-modules "$SLATE_GUESTFS_MODULES"
conf_key agent-binary "$B/tests/guest/slate-agent-testdesk"
sed -i '/^agent-session-script *=/d' "$CONF"
echo "agent-session-script = $T/session-script" >>"$CONF"
start_slated
W=$T/work
mkdir -p "$W"
boot=(--kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd.img" --cmdline "$(cat "$GUEST/cmdline")")
no_leftovers() { # after a refusal: no staging dir, no files
        [ -z "$(find "$T/state/images" -mindepth 1 -maxdepth 1 -name '.staging-*')" ] ||
                fail "a refused publish left a staging dir: $(ls -A "$T/state/images")"
}
refused() { # name file expected-message [publish options]; no_leftovers once all have ended
        local name=$1 file=$2 want=$3 err=$W/err.$1
        shift 3
        if ctl image publish "$name" "$file" "$@" 2>"$err" >/dev/null; then fail "published $file"; fi
        say "$(basename "$file"): $(tail -n 1 "$err")"
        grep -q "$want" "$err" || fail "refusal of $file does not say \"$want\": $(cat "$err")"
        if ctl image show "$name" >/dev/null 2>&1; then fail "a refused publish left a catalogue entry"; fi
}

say "inspect: the tiny guest is recorded as Linux/x86_64 with busybox init"
start=$(date +%s%N)
jctl image publish img "$GUEST/disk.qcow2" "${boot[@]}" --current >"$W/v1.json" 2>"$W/v1.err" || {
        if grep -q "starting the libguestfs appliance" "$W/v1.err"; then
                skip "libguestfs cannot launch here: $(cat "$W/v1.err")"
        fi
        fail "publishing the tiny guest: $(cat "$W/v1.err")"
}
say "publish took $(( ($(date +%s%N) - start) / 1000000 )) ms; steps (ms): $(jq -c .publish.timings_ms "$W/v1.json")"
for kv in os=linux distro=slate-test arch=x86_64 init=busybox os_version=1 boot=kernel; do
        got=$(jq -r ".${kv%%=*}" "$W/v1.json")
        [ "$got" = "${kv#*=}" ] || fail "v1 ${kv%%=*} is \"$got\", expected \"${kv#*=}\""
done
[ "$(jq -r .publish.agent.action "$W/v1.json")" = updated ] || fail "agent on the tiny guest not reported as updated"
[ "$(jctl image show img | jq -r '.versions[0].distro')" = slate-test ] || fail "image show lacks the distro"

say "inspect: refusals"
qemu-img create -q -f raw "$W/zeros.img" 64M
# Both at once (two appliances on two cores: each launch is 10-17 s under TCG).
refused zeros "$W/zeros.img" "no operating system found" &
r1=$!
refused nokernel "$GUEST/disk.qcow2" "not bootable" &
r2=$!
wait $r1 || fail "the refusal of zeros.img failed"
wait $r2 || fail "the refusal of disk.qcow2 without a kernel failed"
no_leftovers

say "prepare variants (one guestfish launch): planted secrets; a v2 with one file added, removed, changed"
cp "$GUEST/disk.qcow2" "$W/seal.qcow2"
cp "$GUEST/disk.qcow2" "$W/v2.qcow2"
guestfish <<GF || fail "guestfish could not prepare the variants"
add $W/seal.qcow2 format:qcow2
add $W/v2.qcow2 format:qcow2
run
mount /dev/sda /
tar-out / $W/root.tar numericowner:true
write /etc/machine-id "0123456789abcdef0123456789abcdef\n"
mkdir-p /etc/ssh
write /etc/ssh/ssh_host_ed25519_key "PRIVATE KEY\n"
write /root/.bash_history "echo secret\n"
write /var/log/syslog "boot log\n"
write /tmp/leftover "temp\n"
umount /
mount /dev/sdb /
write /etc/motd "hello from v2\n"
rm /bin/vi
write /etc/hosts "127.0.0.1 localhost slate-test v2\n"
umount /
GF

say "seal: the stored version has none of the planted files; the source keeps them"
jctl image publish sealed "$W/seal.qcow2" "${boot[@]}" >"$W/sealed.json" || fail "publishing the seal variant"
jq -c .publish.seal "$W/sealed.json"
for p in /etc/ssh/ssh_host_ed25519_key /root/.bash_history /var/log/syslog /tmp/leftover; do
        jq -e --arg p "$p" '.publish.seal.removed | index($p)' "$W/sealed.json" >/dev/null ||
                fail "seal report does not list $p as removed"
done
jq -e '.publish.seal.emptied | index("/etc/machine-id")' "$W/sealed.json" >/dev/null ||
        fail "seal report does not list /etc/machine-id as emptied"
stored=$(jq -r .path "$W/sealed.json")
# The agent-less disk is published meanwhile (below): two appliances on two cores.
jctl image publish noagent "$GUEST/disk-noagent.qcow2" "${boot[@]}" --current >"$W/noagent.json" 2>"$W/noagent.err" &
pn=$!
guestfish --ro <<GF >"$W/check.txt" || fail "guestfish could not read the stored version"
add $stored format:qcow2 readonly:true
add $W/seal.qcow2 format:qcow2 readonly:true
run
mount-ro /dev/sda /
echo stored
filesize /etc/machine-id
exists /etc/ssh/ssh_host_ed25519_key
exists /root/.bash_history
exists /var/log/syslog
exists /tmp/leftover
is-file /usr/libexec/slate/slate-agent
is-file /etc/init.d/slate-agent
umount /
mount-ro /dev/sdb /
echo source
filesize /etc/machine-id
exists /etc/ssh/ssh_host_ed25519_key
exists /root/.bash_history
exists /var/log/syslog
exists /tmp/leftover
GF
expected="stored
0
false
false
false
false
true
true
source
33
true
true
true
true"
[ "$(cat "$W/check.txt")" = "$expected" ] || fail "after sealing, expected:
$expected
got:
$(cat "$W/check.txt")"

say "agent: a disk without slate-agent gets one and boots to a ready desktop"
wait $pn || fail "publishing disk-noagent.qcow2: $(cat "$W/noagent.err")"
[ "$(jq -r .publish.agent.action "$W/noagent.json")" = installed ] || fail "agent not reported as installed"
ctl pool create pa --image noagent --warm 1 --memory 256M >/dev/null
wait_for 180 "a ready desktop from the agent-less disk" pool_ready pa 1
ctl pool delete pa >/dev/null

say "publish a directory (a root filesystem tree), and img's v2 at the same time"
mkdir "$W/rootdir"
tar -C "$W/rootdir" --numeric-owner -xf "$W/root.tar"
jctl image publish img "$W/v2.qcow2" "${boot[@]}" >/dev/null 2>"$W/v2.err" &
pv=$!
jctl image publish fromdir "$W/rootdir" "${boot[@]}" >"$W/dir.json" || fail "publishing a directory"
[ "$(jq -r .format "$W/dir.json")" = dir ] || fail "directory publish not recorded as format dir"
[ "$(jq -r .os "$W/dir.json")" = linux ] || fail "directory publish: os not linux"
say "dir steps (ms): $(jq -c .publish.timings_ms "$W/dir.json")"

say "diff: v1 → v2 lists exactly the added, removed and changed file"
wait $pv || fail "publishing v2: $(cat "$W/v2.err")"
start=$(date +%s%N)
jctl image diff img 1 2 >"$W/diff.json" || fail "image diff failed"
say "diff took $(( ($(date +%s%N) - start) / 1000000 )) ms: $(jq -c '{added,removed,changed,entries,checksummed}' "$W/diff.json")"
[ "$(jq -c .added "$W/diff.json")" = '["/etc/motd"]' ] || fail "added: $(jq -c .added "$W/diff.json")"
[ "$(jq -c .removed "$W/diff.json")" = '["/bin/vi"]' ] || fail "removed: $(jq -c .removed "$W/diff.json")"
[ "$(jq -c .changed "$W/diff.json")" = '["/etc/hosts"]' ] || fail "changed: $(jq -c .changed "$W/diff.json")"

no_leftovers
stop_slated TERM
echo "PASS: pipeline"
