#!/usr/bin/env bash
# slate-session's own screens, end to end with the real RDP client (tests/e2e/rdp-client) and a real
# QEMU console (TCG, no disk: SeaBIOS's text screen), slated's part played by
# tests/e2e/session-harness (the logon steps, PAM's conversation: a one-time code, an expired
# password): no VM boot, a few seconds a case.
# Progress screen: from the first frame to usable the client never sees a black frame, it shows
# the Xfce session's backdrop (#152233) with text, then the desktop's console; a session that
# fails says why for 5 s; a reconnect goes straight to the desktop.
# Logon screen (a client with no password): the right password logs on; a password then a
# one-time code logs on only with both; an expired password is changed; three wrong attempts
# close the connection; a 10,000-key paste is cut at the field's bound; Unicode events type.
CONSOLE_LIB_NAME=screen
. "$(dirname "$0")/console-lib.sh"
[ -r /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || skip "fonts-dejavu-core not installed"
sleep 2 # SeaBIOS has written its first lines

BACKDROP=152233
CONSOLE=2,2,a8a8a8 # the top of SeaBIOS's first letter: the desktop's console, not the screen
# A client that leaves the moment it sees the console may take the frame's acknowledgement with it
# (the usable-frame phase is reported on that ack): those that check the phase stay a second.

# harness ARGS...: one connection; sets PORT and HPID, logs to $T/h.log.
harness() {
        PORT=$(port)
        "$HARNESS" --port "$PORT" --vnc "$T/vnc.sock" --cert "$T/cert.pem" --key "$T/key.pem" "$@" >"$T/h.log" 2>&1 &
        HPID=$!
        for _ in $(seq 50); do grep -q listening "$T/h.log" 2>/dev/null && return; sleep 0.1; done
        fail "the harness does not listen"
}
client() { "$CLIENT" --host 127.0.0.1 --port "$PORT" --timeout 30 "$@"; }
# colour_pixels FILE RRGGBB: pixels of (about) that colour.
colour_pixels() {
        convert "$1" -fuzz 6% -fill white -opaque "#$2" -fill black +opaque white -format "%[fx:round(mean*w*h)]" info:
}

say "progress screen: backdrop and text from the first frame, never black, then the desktop"
harness --steps 3 --step-ms 1500 --user alice --password secret
rc=0; client --user alice --password secret --wait-frame --expect-pixel "5,5,$BACKDROP" --expect-never-black \
        --sleep 500 --after-pixel "$CONSOLE" --hold 1 >"$T/c.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "progress: rdp-client exit $rc: $(cat "$T/c.out")"
grep -q "black_frames=0" "$T/c.out" || fail "progress: a frame was black: $(cat "$T/c.out")"
grep -q "width=720 height=400" "$T/c.out" || fail "progress: the client did not switch to the console's size: $(cat "$T/c.out")"
harness_end
grep -q "harness: first-frame" "$T/h.log" || fail "progress: no IPC_FIRST_FRAME"
grep -q "phase usable-frame=" "$T/h.log" || fail "progress: no usable-frame phase"
ff=$(sed -n 's/.*first frame .* after \([0-9]*\) ms.*/\1/p' "$T/h.log" | head -1)
uf=$(sed -n 's/.*phase usable-frame=\([0-9]*\) ms.*/\1/p' "$T/h.log" | head -1)
[ "$uf" -gt $((ff + 4000)) ] || fail "progress: usable ($uf ms) should come after the 3 steps, first frame at $ff ms"
say "first frame ${ff} ms, usable frame ${uf} ms after accept"

say "progress screen: what a step says is on the screen"
harness --steps 2 --step-ms 8000 --user alice --password secret
rc=0; client --user alice --password secret --wait-frame --expect-pixel "5,5,$BACKDROP" --hold 2 \
        --screenshot "$T/progress.ppm" >"$T/c.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "progress screenshot: rdp-client exit $rc: $(cat "$T/c.out")"
kill "$HPID" 2>/dev/null || true; harness_end
bd=$(colour_pixels "$T/progress.ppm" "$BACKDROP")
txt=$(colour_pixels "$T/progress.ppm" f2f5f8)
bar=$(colour_pixels "$T/progress.ppm" 5aa0e6)
say "progress screenshot: $bd backdrop, $txt title, $bar bar pixels"
[ "$bd" -gt 500000 ] && [ "$txt" -gt 300 ] && [ "$bar" -gt 500 ] ||
        fail "the progress screen lacks its backdrop, title or step bar"
cp "$T/progress.ppm" "$B/tests/e2e/progress-last.ppm" 2>/dev/null || true

say "a session that does not come up: the reason stays 5 s, then the end"
harness --steps 1 --step-ms 500 --fail "The desktop did not become ready in time." --user alice --password secret
rc=0; client --user alice --password secret --wait-frame --hold 2 --screenshot "$T/failed.ppm" >"$T/c.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "failed: rdp-client exit $rc: $(cat "$T/c.out")"
harness_end
red=$(colour_pixels "$T/failed.ppm" ff9a8f)
[ "$red" -gt 200 ] || fail "the failure's reason is not on the screen ($red pixels)"
# A client that stays: slate-session ends the connection itself once the reason was shown.
harness --steps 1 --step-ms 500 --fail "The desktop did not become ready in time." --user alice --password secret
rc=0; client --user alice --password secret --wait-frame --hold 20 >"$T/c.out" 2>&1 || rc=$?
[ $rc -eq 10 ] || [ $rc -eq 11 ] || fail "failed: rdp-client exit $rc, expected the server to close: $(cat "$T/c.out")"
harness_end
ms=$(sed -n 's/.*slate-session exited 0 after \([0-9]*\) ms.*/\1/p' "$T/h.log")
[ -n "$ms" ] && [ "$ms" -ge 5000 ] && [ "$ms" -lt 10000 ] || fail "failed: slate-session ended after '$ms' ms, expected 5-10 s"

say "reconnect: usable at once, straight to the desktop"
harness --usable-at-attach --steps 0 --user alice --password secret
rc=0; client --user alice --password secret --wait-frame --expect-never-black --after-pixel "$CONSOLE" --hold 1 >"$T/c.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "reconnect: rdp-client exit $rc: $(cat "$T/c.out")"
harness_end
grep -q "phase usable-frame=" "$T/h.log" || fail "reconnect: no usable-frame phase"

say "logon screen: the right password logs on"
harness --steps 2 --step-ms 300 --user alice --password 'Secret-1!' --banner "Authorised use only."
rc=0; client --user alice --no-password --wait-frame --expect-pixel "5,5,$BACKDROP" --type 'Secret-1!' --key enter \
        --after-pixel "$CONSOLE" --expect-never-black >"$T/c.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "logon screen: rdp-client exit $rc: $(cat "$T/c.out")"
harness_end
grep -q "phase logon-screen" "$T/h.log" || fail "logon screen: slated was not told of the logon screen"
grep -q "auth user=alice .* interactive attempt=1 → ok" "$T/h.log" || fail "logon screen: no interactive logon"
! grep -q 'Secret-1' "$T/h.log" || fail "the typed password is in a log"

say "logon screen with RemoteFX (the client acknowledges frames): every key is drawn, paced by the acks"
SLATE_LOG_LEVEL=debug harness --steps 1 --step-ms 300 --user alice --password abcdefghij
keys=(); for c in a b c d e f g h i j; do keys+=(--type "$c" --sleep 150); done
rc=0; client --codec rfx --user alice --no-password --wait-frame --expect-pixel "5,5,$BACKDROP,24" "${keys[@]}" \
        --key enter --after-pixel "2,2,a8a8a8,48" >"$T/c.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "rfx: rdp-client exit $rc: $(cat "$T/c.out")"
harness_end
grep -q "encoder: remotefx" "$T/h.log" || fail "rfx: the session did not use RemoteFX"
n=$(grep -c "screen frame" "$T/h.log" || true)
say "rfx: $n screen frames for 10 keys"
[ "$n" -ge 11 ] || fail "rfx: $n screen frames for 10 keys: the screen stopped following the keys"

say "logon screen: no user name from the client, typed with Tab between the fields"
harness --user bob --password hunter2
rc=0; client --no-password --wait-frame --type bob --key tab --type hunter2 --key enter --after-pixel "$CONSOLE" \
        >"$T/c.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "no user: rdp-client exit $rc: $(cat "$T/c.out")"
harness_end
grep -q "auth user=bob .* interactive attempt=1 → ok" "$T/h.log" || fail "no user: bob did not log on"

say "logon screen: Unicode events type (é)"
harness --user carol --password 'pässwörd'
rc=0; client --user carol --no-password --wait-frame --unicode 'pässwörd' --key enter --after-pixel "$CONSOLE" \
        >"$T/c.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "unicode: rdp-client exit $rc: $(cat "$T/c.out")"
harness_end

say "logon screen: a password then a one-time code, only both log on"
harness --user alice --password secret --otp 424242
rc=0; client --user alice --no-password --wait-frame --type secret --key enter --sleep 700 --type 111111 --key enter \
        --sleep 700 --type secret --key enter --sleep 700 --type 424242 --key enter --after-pixel "$CONSOLE" --hold 1 \
        >"$T/c.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "otp: rdp-client exit $rc: $(cat "$T/c.out")"
harness_end
grep -q "refused attempt 1: the verification code is incorrect" "$T/h.log" || fail "otp: a wrong code was not refused"
grep -q "auth user=alice .* attempt=2 → ok" "$T/h.log" && grep -c "prompt reply" "$T/h.log" | grep -qx 2 ||
        fail "otp: the second attempt did not ask for the code"
grep -q "phase usable-frame" "$T/h.log" || fail "otp: the right code did not log on"

say "logon screen: an expired password is changed on the spot"
harness --user dave --password pw4 --expired 'N3w-pass'
rc=0; client --user dave --no-password --wait-frame --type pw4 --key enter --sleep 700 --type 'N3w-pass' --key enter \
        --sleep 700 --type 'N3w-pass' --key enter --after-pixel "$CONSOLE" >"$T/c.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "expired: rdp-client exit $rc: $(cat "$T/c.out")"
harness_end
grep -q "harness: password changed" "$T/h.log" || fail "expired: the password was not changed"

say "logon screen: three wrong attempts close the connection"
harness --user alice --password secret
rc=0; client --user alice --no-password --wait-frame --type wrong1 --key enter --sleep 600 --type wrong2 --key enter \
        --sleep 600 --type wrong3 --key enter --hold 5 >"$T/c.out" 2>&1 || rc=$?
[ $rc -eq 10 ] && grep -q "logon_error=LOGON_FAILED_BAD_PASSWORD" "$T/c.out" ||
        fail "three wrong: rdp-client exit $rc, expected a refusal (bad password): $(cat "$T/c.out")"
harness_end
[ "$(grep -c 'refused attempt' "$T/h.log")" -eq 3 ] || fail "three wrong: not three refusals"
grep -q "slate-session exited 0" "$T/h.log" || fail "three wrong: slate-session did not end cleanly"

say "logon screen: a 10,000-key paste is cut at the field's bound"
harness --user alice --password secret
rc=0; client --user alice --no-password --wait-frame --paste 10000 --key enter --sleep 1500 \
        --expect-never-black >"$T/c.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "paste: rdp-client exit $rc: $(cat "$T/c.out")"
kill "$HPID" 2>/dev/null || true; harness_end
grep -q "logon screen: 9488 characters dropped" "$T/h.log" || fail "paste: the field was not cut at 512 bytes"
grep -q "auth user=alice .* interactive attempt=1 → refused" "$T/h.log" || fail "paste: no attempt after the paste"

echo "PASS: logon-screen"
