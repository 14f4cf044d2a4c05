#!/usr/bin/env bash
# Profile backups end to end (issue: a block store that never stores or sends a block twice):
# real slated, the tiny test guest under QEMU, real PAM and RDP client. Every logout backs the
# profile up as a new version (logoff step profile-backup, audited profile.backup): the first
# reads the whole disk, the next only what the dirty bitmap names. Checks: history lists the
# versions; store check reads every chunk clean; a reset profile's backup shares the blocks it
# has in common; profile restore brings an older version back bit for bit (the home canary of
# that logon is there again); slated killed mid-backup leaves the previous versions restorable
# and the store clean; a replica on "another host" (a throwaway sshd on loopback, reached with
# sftp) brings the profile back on a fresh state dir (disaster recovery); a damaged chunk is
# reported by store check with the version named.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/sshd.sh"
require_tools
setup tcg
sshd_start "$T/replica-host"
trap 'sshd_stop; teardown' EXIT
echo "replica-ssh-config = $SLATE_SSH_CONFIG" >>"$CONF"
setup_pam alice:secret
setup_rdp
echo "profile-size = 256M" >>"$CONF"
sed -i "s/^profile-backup = off$/profile-backup = on/" "$CONF"
start_slated
publish_guest tiny >/dev/null
ctl pool create desk --image tiny --warm 1 --max 2 --memory 256M --disconnect-timeout 0 >/dev/null
ctl pool entitle desk user:alice >/dev/null

started() { jctl audit --kind session.started | jq -r '[.[] | select(.subject == "alice")][0].detail // empty'; }
backups() { jctl audit --kind profile.backup | jq '[.[] | select(.subject == "alice")] | length'; }
last_backup() { jctl audit --kind profile.backup | jq -r '[.[] | select(.subject == "alice")][0].detail'; }
session_gone() { [ "$(jctl session list --user alice | jq length)" -eq 0 ]; }
no_ending() { [ "$(jctl session list | jq '[.[] | select(.state == "ending")] | length')" -eq 0 ]; }
backups_at_least() { [ "$(backups)" -ge "$1" ]; }
logon() { # one logon of alice that ends at disconnect; waits for its backup (the Nth)
        wait_for 300 "a ready desktop" pool_ready desk 1
        rdp --user alice --password secret --wait-desktop --hold 1 >"$T/out" 2>&1 || fail "alice logon: $(cat "$T/out")"
        wait_for 60 "alice's session ended" session_gone
        wait_for 120 "backup $1 of alice" backups_at_least "$1"
}
canary_of() { echo "$1" | sed -n 's/.*home=\(new:\)\{0,1\}\([0-9a-f-]*\).*/\2/p'; }

say "first logout: a full backup"
logon 1
c1=$(canary_of "$(started)")
[ -n "$c1" ] || fail "no home canary: $(started)"
b1=$(last_backup)
say "backup 1: $b1"
case $b1 in *"version 1: full"*) ;; *) fail "the first backup is not a full version 1: $b1" ;; esac

say "second logout: only what the dirty bitmap names is read"
logon 2
[ "$(canary_of "$(started)")" = "$c1" ] || fail "the home canary changed: $(started)"
b2=$(last_backup)
say "backup 2: $b2"
case $b2 in *"version 2: incremental"*) ;; *) fail "the second backup is not incremental: $b2" ;; esac
read2=$(echo "$b2" | sed -n 's/.*: incremental[^,]*, \([0-9]*\) blocks read.*/\1/p')
[ -n "$read2" ] && [ "$read2" -lt 6000 ] || fail "the incremental read $read2 of 65536 blocks: $b2"

jctl profile history alice | jq -e 'length == 2 and .[0].version == 1 and .[1].size == 268435456' >/dev/null ||
        fail "history: $(jctl profile history alice)"
ctl store check --read-data >"$T/check" || fail "store check: $(cat "$T/check")"

say "a reset profile: its first backup is full but shares the blocks both disks have"
ctl profile reset alice >/dev/null
logon 3
c3=$(canary_of "$(started)")
[ -n "$c3" ] && [ "$c3" != "$c1" ] || fail "the reset profile is not new: $(started)"
b3=$(last_backup)
say "backup 3: $b3"
case $b3 in *"version 3: full"*) ;; *) fail "a new disk's first backup is not full: $b3" ;; esac
shared=$(echo "$b3" | sed -n 's/.* (\([0-9]*\) zero, \([0-9]*\) already stored).*/\2/p')
[ -n "$shared" ] && [ "$shared" -gt 0 ] || fail "a fresh filesystem shared no block with the first one: $b3"

say "profile restore 1: the first logon's home is back"
ctl profile restore alice 1 >/dev/null 2>"$T/progress" || fail "restore failed: $(cat "$T/progress")"
grep -qx "restore\.\.\." "$T/progress" || fail "restore showed no progress: $(cat "$T/progress")"
jctl audit --kind profile.restore | jq -e '.[0].detail | contains("version 1 as generation 3")' >/dev/null ||
        fail "restore not audited: $(jctl audit --kind profile.restore)"
logon 4
[ "$(canary_of "$(started)")" = "$c1" ] || fail "the restored profile does not have version 1's home: $(started)"
b4=$(last_backup)
case $b4 in *"version 4: incremental"*) ;; *) fail "the backup after a restore is not incremental from it: $b4" ;; esac

say "slated killed mid-prune (after its first pack rewrite): restarted, the store is clean"
stop_slated TERM
base_env=("${SLATED_ENV[@]}")
SLATED_ENV=("${base_env[@]}" SLATE_CRASH_AT=prune-pack-rewritten:1)
start_slated
SLATED_ENV=("${base_env[@]}")
if ctl store prune --keep-daily 1 --keep-weekly 0 >"$T/out" 2>&1; then fail "the prune finished: the crash point did not fire"; fi
wait "$SLATED_PID" 2>/dev/null || true
kill -0 "$SLATED_PID" 2>/dev/null && fail "slated survived its crash point"
SLATED_PID=
start_slated
ctl store check --read-data >"$T/check" || fail "store check after a prune was killed: $(cat "$T/check")"
ctl profile restore alice >/dev/null || fail "restore of the newest version after a killed prune"

say "prune again: one version a day kept (all of today's but the newest), the store still clean"
# (The killed prune had removed the old versions already; this one finishes their chunks.)
jctl store prune --keep-daily 1 --keep-weekly 0 | jq -e '.versions_kept == 1' >/dev/null ||
        fail "prune: $(jctl store prune --keep-daily 1 --keep-weekly 0)"
ctl store check --read-data >"$T/check" || fail "store check after prune: $(cat "$T/check")"
[ "$(jctl profile history alice | jq length)" -eq 1 ] || fail "history after prune: $(jctl profile history alice)"
ls "$T"/state/store/packs/*.tmp.* >/dev/null 2>&1 && fail "a prune left temporary packs behind"
ctl profile restore alice >/dev/null || fail "restore of the newest version after prune"

say "slated killed mid-backup: the versions before it restore, the store is clean"
stop_slated TERM
base_env=("${SLATED_ENV[@]}")
SLATED_ENV=("${base_env[@]}" SLATE_CRASH_AT=backup-read:1)
start_slated
SLATED_ENV=("${base_env[@]}")
wait_for 300 "a ready desktop" pool_ready desk 1
rdp --user alice --password secret --wait-desktop --hold 1 >"$T/out" 2>&1 || fail "alice logon: $(cat "$T/out")"
slated_dead() { ! kill -0 "$SLATED_PID" 2>/dev/null; }
wait_for 120 "slated to die mid-backup" slated_dead
wait "$SLATED_PID" 2>/dev/null || true
SLATED_PID=
grep -q "crash point backup-read" "$T/slated.log" || say "(slated's log does not name the crash point)"
start_slated
wait_for 120 "the backup after the restart" backups_at_least 5
ctl store check --read-data >"$T/check" || fail "store check after the crash: $(cat "$T/check")"
jctl profile history alice | jq -e 'length >= 2' >/dev/null || fail "history after the crash: $(jctl profile history alice)"

wait_for 120 "backups to finish" no_ending
say "profile backup now, with progress: nothing changed since the logout, so an incremental"
ctl profile backup alice >"$T/pb" 2>"$T/progress" || fail "profile backup: $(cat "$T/progress")"
grep -qx "backup\.\.\." "$T/progress" || fail "profile backup showed no progress: $(cat "$T/progress")"
grep -q "incremental" "$T/pb" || fail "a backup with nothing changed is not incremental: $(cat "$T/pb")"

say "disaster recovery: a replica, a fresh state dir, the profile back from the replica"
ctl store replicate "$T/replica" >/dev/null 2>"$T/progress" || fail "replicate failed: $(cat "$T/progress")"
grep -qx "replicate\.\.\." "$T/progress" || fail "replicate showed no progress: $(cat "$T/progress")"
jctl store replicate "$T/replica" | jq -e '.chunks_sent == 0 and .versions_sent == 0' >/dev/null ||
        fail "a second replication sent something: $(jctl store replicate "$T/replica")"
say "the same over SSH (sftp to $SLATE_SSH_HOST): all of it once, then nothing"
jctl store replicate "$SLATE_SSH_HOST:$T/replica-ssh" >"$T/rep" || fail "replicate over ssh: $(cat "$T/rep")"
jq -e '.chunks_sent > 0 and .versions_sent > 0' "$T/rep" >/dev/null || fail "replicate over ssh sent nothing: $(cat "$T/rep")"
jctl store replicate "$SLATE_SSH_HOST:$T/replica-ssh" | jq -e '.chunks_sent == 0 and .versions_sent == 0' >/dev/null ||
        fail "a second replication over ssh sent something"
last=$(jctl profile history alice | jq '.[-1].version')
stop_slated TERM
mv "$T/state" "$T/state.lost"
mkdir -p "$T/state/keys"
cp -p "$T/state.lost/keys/profile-host.key" "$T/state/keys/"         # the host key, kept apart
start_slated
publish_guest tiny >/dev/null
ctl pool create desk --image tiny --warm 1 --max 2 --memory 256M --disconnect-timeout 0 >/dev/null
ctl pool entitle desk user:alice >/dev/null
jctl profile restore alice --from "$T/replica-ssh" | jq -e --argjson v "$last" '.version == $v' >/dev/null ||
        fail "restore from the replica"
wait_for 300 "a ready desktop" pool_ready desk 1
rdp --user alice --password secret --wait-desktop --hold 1 >"$T/out" 2>&1 || fail "alice logon: $(cat "$T/out")"
wait_for 60 "alice's session ended" session_gone
[ "$(canary_of "$(started)")" = "$c1" ] || fail "the home from the replica is not alice's: $(started)"

say "a damaged chunk: store check names the versions it breaks"
stop_slated TERM
pack=$(ls -S "$T"/state/store/packs/*.pack | head -1)
printf '\377' | dd of="$pack" bs=1 seek=4200 conv=notrunc 2>/dev/null
start_slated
if ctl store check --read-data >"$T/check"; then fail "store check passed a damaged pack"; fi
grep -q "alice v" "$T/check" || fail "the damaged versions are not named: $(cat "$T/check")"
stop_slated TERM
echo "PASS: backup"
