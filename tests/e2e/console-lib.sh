# Sourced by the e2e scripts that run slate-session against a real QEMU console with no VM boot
# (TCG, no disk: SeaBIOS's text screen), slated's part played by tests/e2e/session-harness:
# logon-screen.sh and gfx.sh. Sets B, S, HARNESS, CLIENT and T (a temp dir named after
# CONSOLE_LIB_NAME), starts QEMU with its VNC socket at $T/vnc.sock, makes a throwaway TLS
# certificate ($T/cert.pem, $T/key.pem); skip, say, fail (with the harness log), port (a free
# TCP port) and harness_end (wait for the harness; its status in HRC). Cleans up on exit.
set -euo pipefail
B=${SLATE_BUILDDIR:?run from make check}
S=${SLATE_SRCDIR:?run from make check}
skip() { echo "SKIP: $*"; exit 77; }
say() { echo "# $* [${SECONDS}s]"; }
HARNESS=$B/tests/e2e/session-harness
CLIENT=$B/tests/e2e/rdp-client
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
command -v convert >/dev/null && command -v compare >/dev/null ||
        skip "ImageMagick not installed (apt-get install imagemagick)"
command -v openssl >/dev/null || skip "openssl not installed"
[ -x "$HARNESS" ] && [ -x "$CLIENT" ] && [ -x "$B/rdp/slate-session" ] ||
        skip "slate-session, tests/e2e/session-harness or rdp-client not built (make check TESTS=)"

T=$(mktemp -d "/var/tmp/slate-${CONSOLE_LIB_NAME:-console}.XXXXXX")
QEMU_PID=
cleanup() {
        [ -n "$QEMU_PID" ] && kill "$QEMU_PID" 2>/dev/null || true
        [ -n "${HPID:-}" ] && kill "$HPID" 2>/dev/null || true
        if [ -n "${SLATE_TEST_KEEP:-}" ]; then echo "# kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
fail() {
        echo "FAIL: $*" >&2
        [ -f "$T/h.log" ] && { echo "--- harness and slate-session:" >&2; grep -v '^\[' "$T/h.log" | tail -n 40 >&2; }
        exit 1
}
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 -subj /CN=localhost \
        2>/dev/null || fail "openssl cannot make a certificate"
qemu-system-x86_64 -display none -vnc "unix:$T/vnc.sock" -m 32 -nodefaults -vga std -machine pc,accel=tcg \
        >"$T/qemu.log" 2>&1 &
QEMU_PID=$!
for _ in $(seq 50); do [ -S "$T/vnc.sock" ] && break; sleep 0.1; done
[ -S "$T/vnc.sock" ] || fail "QEMU did not open its VNC socket: $(cat "$T/qemu.log")"

port() { for p in $(shuf -i 20000-60000 -n 50); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }; done; }
harness_end() { HRC=0; wait "$HPID" || HRC=$?; HPID=; }
