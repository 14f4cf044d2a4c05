#!/usr/bin/env bash
# App capture end to end: `slatectl app capture` installs GNU hello into a throwaway copy of a
# small Debian 12 golden image (libguestfs under TCG, offline: the fixture's cached .deb), the layer's
# manifest lists the package and its program, the golden file's hash is unchanged, and in a desktop
# of that image the entitled user runs hello from the layer while another user has no hello.
# The Debian image is the capture fixture (tests/capture/build-debian-min.sh, cached) booted with the
# tiny guest's kernel, initramfs and init; its session hook runs the programs in
# /etc/slate-test/programs and reports their first word (tests/guest/session-hook).
. "$(dirname "$0")/../integration/lib.sh"
require_tools
command -v setpriv >/dev/null || skip "setpriv not installed (util-linux)"
FIX=$B/tests/capture/out
FCACHE=$B/tests/capture/cache
timeout 900 bash "$S/tests/capture/build-debian-min.sh" "$FIX" "$FCACHE" >"$B/tests/capture-fixture-e2e.log" 2>&1 ||
        skip "the Debian fixture cannot be built here: $(tail -n 1 "$B/tests/capture-fixture-e2e.log")"
tar=$(ls "$FCACHE"/debian-min-*.tar 2>/dev/null | head -1)
[ -n "$tar" ] || skip "no cached Debian tree in $FCACHE"
setup tcg
setup_pam alice:secret bob:hunter2
setup_rdp
start_slated

say "a Debian desktop image: the fixture's tree with the test guest's init"
. "$S/tests/capture/publish-debmin.sh"
publish_debmin "$tar" hello
golden=$(jctl image show debmin | jq -r '.versions[0].path')
sum_before=$(sha256sum "$golden" | cut -d' ' -f1)

say "app capture hello (offline, the fixture's .deb)"
start_ms=$(date +%s%3N)
ctl app capture hello --image debmin --packages hello --deb-dir "$FIX/debs" >"$T/capture.out" 2>"$T/capture.err" ||
        fail "app capture: $(tail -3 "$T/capture.err")"
say "captured in $(( $(date +%s%3N) - start_ms )) ms: $(head -1 "$T/capture.out")"
grep -a 'capture of hello' "$T/slated.log" | tail -1 | sed 's/^/# /' || true
jctl app show hello >"$T/app.json"
jq -e '.versions[0].source == "capture" and (.versions[0].packages | any(startswith("hello="))) and
        (.versions[0].executables | index("usr/bin/hello")) and .versions[0].overrides == []' "$T/app.json" >/dev/null ||
        fail "the layer's manifest: $(cat "$T/app.json")"
files=$(jq -r '.versions[0].path' "$T/app.json")/files.txt
grep -qx 'usr/bin/hello' "$files" || fail "usr/bin/hello is not in the layer"
grep -qx 'var/lib/dpkg/status-layer' "$files" || fail "the layer has no dpkg status for its packages"
if grep -E '^(var/lib/apt|var/cache|var/log|tmp|etc/resolv.conf)' "$files"; then fail "apt state, caches or logs in the layer"; fi
[ "$(sha256sum "$golden" | cut -d' ' -f1)" = "$sum_before" ] || fail "the capture changed the golden image"
ctl image verify debmin >/dev/null || fail "image verify after the capture"

say "a desktop of that image: alice (entitled) runs hello from the layer, bob has none"
ctl app entitle hello user:alice >/dev/null
ctl pool create deb --image debmin --warm 1 --max 2 --memory 512M --disconnect-timeout 0 >/dev/null
ctl pool entitle deb all >/dev/null
wait_for 300 "a ready Debian desktop" pool_ready deb 1
last_started() { jctl audit --kind session.started | jq -r --arg u "$1" '[.[] | select(.subject == $u)][0].detail // empty'; }
session_gone() { [ "$(jctl session list --user "$1" | jq length)" -eq 0 ]; }
rdp --user alice --password secret --wait-desktop --hold 1 >"$T/out" 2>&1 || fail "alice logon: $(cat "$T/out")"
wait_for 60 "alice's session ended" session_gone alice
a=$(last_started alice)
say "alice: $a"
case $a in *"run:hello=Hello,"*) ;; *) fail "alice cannot run hello from the layer: $a" ;; esac
wait_for 300 "a ready Debian desktop" pool_ready deb 1
rdp --user bob --password hunter2 --wait-desktop --hold 1 >"$T/out" 2>&1 || fail "bob logon: $(cat "$T/out")"
wait_for 60 "bob's session ended" session_gone bob
b=$(last_started bob)
say "bob: $b"
case $b in *"run:hello=missing"*) ;; *) fail "bob, not entitled, has hello: $b" ;; esac
stop_slated TERM
echo "PASS: capture"
