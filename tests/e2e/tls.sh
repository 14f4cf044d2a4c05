#!/usr/bin/env bash
# The TLS versions and cipher suites slated's RDP listener accepts (issue: hardening), enumerated
# by tests/e2e/tls-enum after RDP's X.224 prelude: TLS 1.2 and 1.3 only, and only suites with
# forward secrecy and an AEAD cipher (ECDHE or DHE with AES-GCM or ChaCha20-Poly1305; TLS 1.3's
# AES-GCM and ChaCha20). The table is docs/security.md's. No desktop is needed: the handshake
# is slate-session's, before any logon. Then: the server key is nowhere in a session held
# after its handshake (the key stays in slated, which signs for it).
. "$(dirname "$0")/../integration/lib.sh"
require_tools
[ -x "$B/tests/e2e/tls-enum" ] || skip "tests/e2e/tls-enum not built"
setup tcg
setup_listener "max-preauth-per-source = 64"
start_slated
"$B/tests/e2e/tls-enum" 127.0.0.1 "$PORT" >"$T/enum" || fail "tls-enum failed"
grep -q "no-x224" "$T/enum" && fail "the listener did not answer the X.224 request: $(grep no-x224 "$T/enum" | head -3)"
say "accepted:"
grep " accepted$" "$T/enum" | sed 's/^/#   /'
for v in TLSv1.0 TLSv1.1; do
        grep -q "^$v any refused$" "$T/enum" || fail "$v is accepted: $(grep "^$v " "$T/enum")"
done
grep -q "^TLSv1.2 .* accepted$" "$T/enum" || fail "TLS 1.2 refused altogether (clients need it)"
grep -q "^TLSv1.3 .* accepted$" "$T/enum" || fail "TLS 1.3 refused altogether"
weak=$(grep " accepted$" "$T/enum" | awk '$1 == "TLSv1.2" && $2 != "any"' |
        grep -Ev '^TLSv1.2 (ECDHE-(RSA|ECDSA)|DHE-RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305) ' || true)
[ -z "$weak" ] || fail "weak TLS 1.2 suites accepted:$(printf '\n%s' "$weak")"
weak13=$(grep " accepted$" "$T/enum" | awk '$1 == "TLSv1.3"' | grep -Ev ' TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256) ' || true)
[ -z "$weak13" ] || fail "TLS 1.3 suites outside AES-GCM and ChaCha20 accepted: $weak13"

# The server key is not in a session before authentication (rdp/keyless.h): hold one after its
# TLS handshake and search its memory for pieces of the key (tests/e2e/memscan).
if [ -x "$B/tests/e2e/memscan" ]; then
        "$B/tests/e2e/tls-enum" 127.0.0.1 "$PORT" --hold 30 >"$T/held" &
        HOLD=$!
        for _ in $(seq 100); do grep -q "^held" "$T/held" && break; sleep 0.1; done
        grep -q "^held" "$T/held" || fail "no TLS handshake to hold"
        spid=$(pgrep -P "$SLATED_PID" -x slate-session | head -1)
        [ -n "$spid" ] || fail "no slate-session to search"
        say "session pid $spid held after $(sed 's/^held //' "$T/held")"
        rc=0; "$B/tests/e2e/memscan" "$spid" "$T/tls/key.pem" >"$T/memscan" || rc=$?
        sed 's/^/#   /' "$T/memscan"
        [ $rc -eq 2 ] && fail "memscan could not search the session"
        [ $rc -eq 0 ] || fail "the server's private key is in the pre-authentication session's memory"
        # The control: slated holds the key, and memscan finds it there.
        "$B/tests/e2e/memscan" "$SLATED_PID" "$T/tls/key.pem" >"$T/memscan-slated" && fail "memscan does not find the key even in slated: $(tail -1 "$T/memscan-slated")"
        kill "$HOLD" 2>/dev/null; wait "$HOLD" 2>/dev/null || true
fi
stop_slated TERM
echo "PASS: tls"
