#!/usr/bin/env bash
# Crypto-erasure: the guest writes a random canary to its disk (derived from its boot id, see
# tests/guest/README.md). In encrypted mode the canary is never found under the state, run or
# ram dirs, even while the desktop runs; in every mode it is gone after `desktop destroy`.
# The plain mode shows the canary IS found while running, so this test can fail.
. "$(dirname "$0")/lib.sh"
require_tools
setup tcg
start_slated
publish_guest tiny >/dev/null

# canary_found CANARY: is it anywhere in our dirs (files, the database, sockets excluded)?
canary_found() { grep -r -a -l -F --devices=skip "$1" "$T/state" "$T/run" "$RAM" 2>/dev/null | grep -v '\.log$' ; }

for mode in encrypted plain ram; do
        say "mode $mode"
        ctl pool create "e-$mode" --image tiny --warm 1 --max 1 --memory 256M --overlay "$mode" >/dev/null
        wait_for 180 "a ready $mode desktop" pool_ready "e-$mode" 1
        d=$(jctl desktop list --pool "e-$mode" | jq '.[0]')
        id=$(echo "$d" | jq -r .id)
        boot_id=$(echo "$d" | jq -r .boot_id)
        [ -n "$boot_id" ] && [ "$boot_id" != null ] || fail "no boot id from the agent"
        canary="SLATE-CANARY-$(printf %s "$boot_id" | sha256sum | cut -d' ' -f1)"
        ov=$(echo "$d" | jq -r .overlay_path)
        case $mode in
        ram) [ "$(stat -f -c %T "$(dirname "$ov")")" = tmpfs ] || fail "ram overlay $ov is not on tmpfs" ;;
        *) case $ov in "$T/state/"*) ;; *) fail "overlay $ov not under the state dir" ;; esac ;;
        esac
        found=$(canary_found "$canary" || true)
        if [ "$mode" = encrypted ]; then
                [ -z "$found" ] || fail "encrypted mode: canary readable while running in: $found"
                say "encrypted: canary not found while the desktop runs"
        else
                [ -n "$found" ] || fail "$mode mode: canary not found while running (the test cannot see it?)"
                say "$mode: canary visible while running in $(basename "$found")"
        fi
        ctl pool set "e-$mode" --warm 0 >/dev/null
        # With warm 0 the pool manager may erase the idle desktop first: gone either way.
        ctl desktop destroy "$id" 2>/dev/null || jctl desktop list | jq -e --arg id "$id" 'all(.id != $id)' >/dev/null ||
                fail "desktop destroy $id failed while it still exists"
        gone() { ! jctl desktop list | jq -e --arg id "$id" '.[] | select(.id == $id)' >/dev/null; }
        wait_for 20 "desktop $id destroyed" gone
        found=$(canary_found "$canary" || true)
        [ -z "$found" ] || fail "$mode mode: canary still present after destroy in: $found"
        [ ! -e "$ov" ] || fail "$mode mode: overlay file left: $ov"
        say "$mode: canary gone after destroy"
        ctl pool delete "e-$mode"
done
# The key never reaches a command line or the QEMU environment (checked while one runs).
ctl pool create keycheck --image tiny --warm 1 --max 1 --memory 256M >/dev/null
wait_for 180 "a ready encrypted desktop" pool_ready keycheck 1
pid=$(jctl desktop list --pool keycheck | jq -r '.[0].pid')
tr '\0' ' ' </proc/$pid/cmdline | grep -q 'key-secret' || fail "QEMU does not use a key secret"
if tr '\0' '\n' </proc/$pid/cmdline | grep -Eq '(^|[=,])[0-9a-f]{64}($|,)'; then fail "a 256-bit key is on the QEMU command line"; fi
if grep -aEq '[0-9a-f]{64}' "$T/slated.log"; then
        grep -aE '[0-9a-f]{64}' "$T/slated.log" | grep -v -E 'sha256|SLATE-CANARY|boot id' && fail "a 64-hex string is in slated's log"
fi
stop_slated TERM
echo "PASS: erasure"
