#!/usr/bin/env bash
# Ten users log on at the same moment: each gets their own desktop, each sees their own colour.
. "$(dirname "$0")/../integration/lib.sh"
require_tools
setup tcg
users=()
for i in $(seq 1 10); do users+=("user$i:pw$i"); done
setup_pam "${users[@]}"
setup_rdp
start_slated
publish_guest tiny >/dev/null
ctl pool create many --image tiny --warm 10 --max 10 --memory 192M >/dev/null
ctl pool entitle many all >/dev/null
wait_for 400 "10 ready desktops" pool_ready many 10

say "10 logons at once"
pids=()
start=$(date +%s%N)
for i in $(seq 1 10); do
        rdp --user "user$i" --password "pw$i" --wait-frame --expect-pixel "20,20,$(desk_user_rgb "user$i")" --hold 3 \
                >"$T/out.$i" 2>&1 &
        pids+=($!)
done
failed=0
for i in $(seq 1 10); do
        if ! wait "${pids[$((i - 1))]}"; then
                echo "user$i failed: $(cat "$T/out.$i")" >&2
                failed=$((failed + 1))
        fi
done
say "all done in $(( ($(date +%s%N) - start) / 1000000 )) ms"
[ $failed -eq 0 ] || fail "$failed of 10 concurrent logons failed"
n=$(jctl session list | jq '[.[].desktop] | unique | length')
[ "$n" -eq 10 ] || fail "10 sessions should have 10 distinct desktops, found $n"
ctl session list
stop_slated TERM
echo "PASS: concurrent"
