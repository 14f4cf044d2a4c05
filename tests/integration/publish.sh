#!/usr/bin/env bash
# The golden image catalogue: publish versions, refuse garbage with a clear error and leave the
# catalogue and store untouched, make an older version current (rollback), retire, verify.
. "$(dirname "$0")/lib.sh"
require_tools
setup tcg
start_slated
W=$T/work
mkdir -p "$W"

store_files() { find "$T/state/images" -type f | sort; }

say "slated stopped (TERM) in the middle of a publish: a clean exit, the next start sweeps the staging dir"
jctl image publish halfway "$GUEST/disk.qcow2" --kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd.img" >/dev/null 2>&1 &
wait_for 60 "the publish to stage" sh -c "ls -d '$T'/state/images/.staging-* >/dev/null 2>&1"
kill -TERM "$SLATED_PID"
status=0
wait "$SLATED_PID" || status=$?
SLATED_PID=
wait || true
# It died of a double free before (libguestfs' atexit handler under the publish's feet).
[ "$status" -eq 0 ] || fail "slated exited with $status when stopped mid-publish: $(tail -3 "$T/slated.log")"
start_slated
! ls -d "$T"/state/images/.staging-* >/dev/null 2>&1 || fail "the interrupted publish's staging dir is still there"
[ "$(jctl image list | jq length)" -eq 0 ] || fail "an interrupted publish made an image"

say "an admin who is not root publishes only files they could read (--kernel /etc/shadow: refused)"
adm=$(getent group slate-admin | cut -d: -f3 || true)
if [ -n "$adm" ] && [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
        # nobody with slate-admin as its group: let in by the control socket, no other rights.
        as_admin() { setpriv --reuid=nobody --regid="$adm" --clear-groups "$SLATECTL" --socket "$T/run/control.sock" "$@"; }
        as_admin status >/dev/null || fail "a slate-admin member cannot use the control socket"
        before_admin=$(find "$T/state/images" -type f | sort)
        for try in "shadow-k $GUEST/disk.qcow2 --kernel /etc/shadow --initrd $GUEST/initrd.img" "shadow-d /etc/shadow"; do
                # shellcheck disable=SC2086
                if as_admin image publish $try >"$T/out" 2>&1; then fail "published for a non-root admin: $try"; fi
                grep -q "/etc/shadow: Permission denied (opened with your rights" "$T/out" ||
                        fail "refusal of $try does not say why: $(cat "$T/out")"
        done
        [ "$(find "$T/state/images" -type f | sort)" = "$before_admin" ] || fail "a refused publish left files"
        [ "$(jctl image list | jq length)" -eq 0 ] || fail "a refused publish made an image"
else
        say "(skipped: needs root, the slate-admin group and the user nobody)"
fi

say "refuse garbage"
head -c 3000 /dev/urandom >"$W/random.img"
qemu-img convert -O qcow2 "$GUEST/disk.qcow2" "$W/full.qcow2"
head -c 65536 "$W/full.qcow2" >"$W/truncated.qcow2"
qemu-img create -q -f qcow2 -F raw -b /etc/passwd -u "$W/backing.qcow2" 64M
: >"$W/empty.img"
before=$(store_files)
for f in random.img truncated.qcow2 backing.qcow2 empty.img missing.img; do
        if ctl image publish bad "$W/$f" 2>"$W/err"; then fail "published $f"; fi
        say "$f: $(cat "$W/err")"
        [ -s "$W/err" ] || fail "no error message for $f"
done
grep -qi "backing" "$W/err.backing" 2>/dev/null || true
if ctl image show bad 2>/dev/null; then fail "a refused publish left a catalogue entry"; fi
[ "$(store_files)" = "$before" ] || fail "a refused publish left files: $(store_files)"
[ -z "$(ls -A "$T/state/images")" ] || fail "store not empty: $(ls -A "$T/state/images")"

say "publish two versions, the first as is, the second through the pipeline; roll back"
publish_guest img >"$W/v1.json"
[ "$(jq -r .as_is "$W/v1.json")" = true ] || fail "v1 not shown as published as is: $(cat "$W/v1.json")"
[ "$(jq -r '.os // "none"' "$W/v1.json")" = none ] || fail "an as-is publish recorded an OS it never looked for"
ctl audit | grep "image.publish" | grep -q "as is" || fail "the audit does not say v1 was published as is: $(ctl audit)"
mkdir -p "$W/tree"
if ctl image publish img "$W/tree" --as-is 2>"$W/err"; then fail "published a directory as is"; fi
grep -q "as-is takes a disk image file" "$W/err" || fail "unclear refusal of a directory as is: $(cat "$W/err")"
qemu-img convert -O raw "$GUEST/disk.qcow2" "$W/disk.raw"
v2=$(jctl image publish img "$W/disk.raw" --kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd.img" --cmdline "$(cat "$GUEST/cmdline")")
[ "$(echo "$v2" | jq -r .version)" = 2 ] || fail "second version is not 2"
[ "$(echo "$v2" | jq -r .format)" = raw ] || fail "format of v2 not recorded as raw"
[ "$(echo "$v2" | jq -r '.as_is // false')" = false ] || fail "a pipeline publish shown as as-is"
[ "$(echo "$v2" | jq -r .agent)" != null ] || fail "a pipeline publish did not record its agent step: $v2"
[ "$(jctl image show img | jq -r .current)" = 1 ] || fail "v2 became current without --current"
ctl image current img 2 >/dev/null
[ "$(jctl image show img | jq -r .current)" = 2 ] || fail "v2 not current"
ctl image current img 1 >/dev/null
[ "$(jctl image show img | jq -r .current)" = 1 ] || fail "rollback to v1 failed"
ctl image show img

say "retire: refused for the current version, allowed for an unused one"
if ctl image retire img 1 2>/dev/null; then fail "retired the current version"; fi
ctl image retire img 2 >/dev/null
[ "$(jctl image show img | jq -r '.versions[1].state')" = retired ] || fail "v2 not retired"
if ctl image current img 2 2>/dev/null; then fail "made a retired version current"; fi

say "verify detects a changed file"
ctl image verify img >/dev/null || fail "verify failed on intact images"
p1=$(jctl image show img | jq -r '.versions[0].path')
chmod u+w "$p1" "$(dirname "$p1")"
printf 'X' | dd of="$p1" bs=1 seek=100000 conv=notrunc status=none
if ctl image verify img >/dev/null 2>&1; then fail "verify did not notice a modified golden file"; fi

say "control socket refuses other users"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
        chmod 666 "$T/run/control.sock"; chmod 755 "$T/run"
        if setpriv --reuid=nobody --regid=nogroup --clear-groups "$SLATECTL" --socket "$T/run/control.sock" status >/dev/null 2>&1; then
                fail "uid nobody was allowed on the control socket"
        fi
        grep -q "refused uid" "$T/slated.log" || fail "refusal not logged"
fi
stop_slated TERM
echo "PASS: publish"
