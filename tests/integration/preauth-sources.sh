#!/usr/bin/env bash
# The per-source pre-auth cap counts sources, not address strings (issue: hardening): one IPv6
# /64 or one IPv4 /auth-ipv4-prefix is one source, so a handful of addresses cannot fill
# max-preauth. Here 127.0.0.0/8 stands in for a client's network: with auth-ipv4-prefix = 24,
# stalled connections from 127.0.0.2 and 127.0.0.5 fill the cap of 2 and 127.0.0.9 is refused,
# while 127.0.1.1 (another /24) still gets in. Then accept-rate: a burst of new connections
# beyond it is turned away before a process starts for each. No desktop is needed.
. "$(dirname "$0")/lib.sh"
require_tools
command -v nc >/dev/null || skip "nc not installed (apt-get install netcat-openbsd)"
setup tcg
setup_listener "handshake-timeout = 30" "max-preauth-per-source = 2" "auth-ipv4-prefix = 24"
start_slated
pids=()
stall() { sleep 20 | nc -s "$1" 127.0.0.1 "$PORT" >/dev/null 2>&1 & pids+=($!); }
refusals() { grep -c "connections from this address's source" "$T/slated.log" || true; }

say "two stalled connections from one /24, a third from it refused, another /24 let in"
stall 127.0.0.2
stall 127.0.0.5
wait_for 10 "two connections from slate-session's" sh -c "[ \"\$(grep -c 'slate-session pid' '$T/slated.log')\" -ge 2 ]"
[ "$(refusals)" -eq 0 ] || fail "refused before the cap: $(grep 'refused' "$T/slated.log" | tail -2)"
stall 127.0.0.9
wait_for 10 "the third one from 127.0.0.0/24 refused" sh -c "[ \"\$(grep -c \"from this address's source\" '$T/slated.log')\" -ge 1 ]"
grep -q "connection 127.0.0.9 refused" "$T/slated.log" || fail "the refusal does not name 127.0.0.9"
stall 127.0.1.1
wait_for 10 "127.0.1.1 let in" sh -c "grep -q 'connection 127.0.1.1: slate-session pid' '$T/slated.log'"
[ "$(refusals)" -eq 1 ] || fail "$(refusals) refusals, expected 1"
kill "${pids[@]}" 2>/dev/null || true
stop_slated TERM

say "accept-rate 2 (bursts of 4): of 12 connections at once from 12 sources, the burst gets in"
echo "accept-rate = 2" >>"$CONF"
before=$(grep -c "slate-session pid" "$T/slated.log" || true)
start_slated
for i in $(seq 1 12); do stall "127.0.$((20 + i)).1"; done
wait_for 10 "refusals by rate" sh -c "grep -q 'new connections a second (accept-rate)' '$T/slated.log'"
sleep 1
took=$(( $(grep -c "slate-session pid" "$T/slated.log" || true) - before ))
rated=$(grep -c "(accept-rate)" "$T/slated.log" || true)
say "$took started, $rated refused by rate"
[ "$rated" -ge 6 ] || fail "only $rated of 12 refused by the accept rate"
[ "$took" -ge 4 ] && [ "$took" -le 6 ] || fail "$took connections started, expected the burst of 4 (and a token or two)"
kill "${pids[@]}" 2>/dev/null || true
stop_slated TERM
echo "PASS: preauth-sources"
