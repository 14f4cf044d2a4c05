#!/usr/bin/env bash
# Logons never wait behind administrative work (issue: hardening): PAM, overlays and the user's
# disks run on slated's own logon threads (broker/workq.h), not in libuv's pool with publishes,
# diffs, verifies and backups. slated runs here with a libuv pool of ONE thread; an image
# publish (tens of seconds in libguestfs) takes it, and alice's logon must be done while the
# publish still runs. Before, her PAM call queued behind the publish.
. "$(dirname "$0")/../integration/lib.sh"
require_tools
setup tcg
setup_pam alice:secret
setup_rdp
SLATED_ENV=("${SLATED_ENV[@]}" UV_THREADPOOL_SIZE=1)
start_slated
publish_guest tiny >/dev/null
ctl pool create desk --image tiny --warm 1 --max 1 --memory 256M >/dev/null
ctl pool entitle desk user:alice >/dev/null
wait_for 300 "a ready desktop" pool_ready desk 1

say "a publish takes libuv's only thread; alice logs on meanwhile"
jctl image publish second "$GUEST/disk.qcow2" --kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd.img" \
        >"$T/publish.out" 2>&1 &
pub=$!
wait_for 60 "the publish to start" sh -c "ls -d '$T'/state/images/.staging-* >/dev/null 2>&1"
t0=$(date +%s%N)
rdp --user alice --password secret --wait-frame >"$T/out" 2>&1 || fail "alice's logon: $(cat "$T/out")"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
say "alice's first frame after $ms ms"
kill -0 "$pub" 2>/dev/null || fail "the publish ended before alice's logon did: the logon waited for it ($ms ms)"
wait "$pub" || fail "the publish failed: $(cat "$T/publish.out")"
stop_slated TERM
echo "PASS: admin-load"
