#!/usr/bin/env bash
# Hostile clients: connections that stall mid-handshake or send garbage hold no desktop, do not
# block another user's logon, and do not crash slated; a flood from one address is capped.
# Administrative work does not block a logon either: slated runs with a libuv pool of ONE
# thread, and an image publish holds it while alice logs on (PAM, overlays and the user's
# disks have slated's own threads, broker/workq.h; before, her PAM call queued behind it).
. "$(dirname "$0")/../integration/lib.sh"
require_tools
command -v nc >/dev/null || skip "nc not installed (apt-get install netcat-openbsd)"
setup tcg
setup_pam alice:secret
setup_rdp
echo "max-preauth-per-source = 4" >>"$CONF"
SLATED_ENV=("${SLATED_ENV[@]}" UV_THREADPOOL_SIZE=1)
start_slated
publish_guest tiny >/dev/null
ctl pool create desk --image tiny --warm 1 --max 2 --memory 256M >/dev/null
ctl pool entitle desk all >/dev/null
wait_for 180 "a ready desktop" pool_ready desk 1
ready=$(jctl desktop list | jq -r '.[0].id')

say "12 stalled connections from 127.0.0.2, garbage from 127.0.0.3"
stall_pids=()
for _ in $(seq 1 12); do
        sleep 30 | nc -s 127.0.0.2 127.0.0.1 "$RDP_PORT" >/dev/null 2>&1 &
        stall_pids+=($!)
done
for _ in $(seq 1 5); do
        head -c 5000 /dev/urandom | nc -s 127.0.0.3 -q 2 127.0.0.1 "$RDP_PORT" >/dev/null 2>&1 || true
done
printf '\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x01\x00\x08\x00\x0b\x00\x00\x00' |
        nc -s 127.0.0.3 -q 2 127.0.0.1 "$RDP_PORT" >/dev/null 2>&1 || true

say "a user name with a newline and a terminal escape: logged escaped, no forged line"
rdp --user "$(printf 'mallory\nFORGED: slated ready\033[2J')" --password x >"$T/forged" 2>&1 || true
wait_for 10 "the attempt in the log" grep -q 'mallory\\x0aFORGED' "$T/slated.log"
! grep -q "^FORGED" "$T/slated.log" || fail "a client's user name forged a log line"
! grep -q "$(printf '\033')" "$T/slated.log" || fail "a client's escape sequence reached the log"

say "alice logs on meanwhile, while a publish holds libuv's only thread"
jctl image publish second "$GUEST/disk.qcow2" --kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd.img" \
        >"$T/publish.out" 2>&1 &
pub=$!
wait_for 60 "the publish to start" sh -c "ls -d '$T'/state/images/.staging-* >/dev/null 2>&1"
t0=$(date +%s%N)
rdp --user alice --password secret --wait-frame --expect-pixel "20,20,$(desk_user_rgb alice)" >"$T/out" 2>&1 ||
        fail "alice could not log on during the attack: $(cat "$T/out")"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
say "alice's first frame after $ms ms"
kill -0 "$pub" 2>/dev/null || fail "the publish ended before alice's logon did: the logon waited for it ($ms ms)"
wait "$pub" || fail "the publish failed: $(cat "$T/publish.out")"
grep -q "from this address's source" "$T/slated.log" || fail "the per-address pre-auth cap did not trigger"
wait_for 20 "stalled connections dropped at the handshake timeout" \
        sh -c "! grep -c 'handshake timeout' '$T/slated.log' | grep -qx 0"
kill "${stall_pids[@]}" 2>/dev/null || true
kill -0 "$SLATED_PID" || fail "slated died"
[ "$(jctl session list | jq length)" -eq 1 ] || fail "garbage created sessions"
assigned=$(jctl desktop list | jq '[.[] | select(.state == "assigned")] | length')
[ "$assigned" -eq 1 ] || fail "expected only alice's desktop assigned, found $assigned"
stop_slated TERM
echo "PASS: hostile"
