#!/usr/bin/env bash
# qemu-img on a published (hostile) file runs in a sandbox: slated's qemu-img here is a spy that
# looks around from inside the run (its uid and capabilities, a listener on loopback, a 0600 file
# of the test's, /etc/shadow) and then runs the real one. A file carrying a marker makes it report
# what it saw and stop; any other run stops only if it saw too much. Publishing still works end to
# end, and a backing file naming a host file is never read.
. "$(dirname "$0")/lib.sh"
require_tools
[ "$(id -u)" -eq 0 ] || skip "needs root: slated publishes as root"
command -v capsh >/dev/null || skip "capsh not installed (apt-get install libcap2-bin)"
command -v nc >/dev/null || skip "nc not installed (apt-get install netcat-openbsd)"
setup tcg
W=$T/work
mkdir -p "$W"

# What the sandbox must keep out of reach: a listener on loopback, a file only root may read.
PORT=$(free_port)
nc -lk 127.0.0.1 "$PORT" >/dev/null 2>&1 &
NC_PID=$!
trap 'kill $NC_PID 2>/dev/null || true; teardown' EXIT
SECRET=$T/secret
head -c 1M /dev/zero | tr '\0' 'S' >"$SECRET"
chmod 600 "$SECRET"

cat >"$T/qemu-img-spy" <<SPY
#!/bin/bash
look() {
        local caps net=unreachable secret=unreadable shadow=unreadable
        caps=\$(capsh --current 2>/dev/null | sed -n 's/^Current: //p')
        (exec 3<>/dev/tcp/127.0.0.1/\$SPY_PORT) 2>/dev/null && net=reachable
        head -c1 "\$SPY_SECRET" >/dev/null 2>&1 && secret=readable
        head -c1 /etc/shadow >/dev/null 2>&1 && shadow=readable
        echo "uid=\$(id -u) caps=\${caps:-?} net=\$net secret=\$secret shadow=\$shadow"
}
seen=\$(look)
for a; do
        if [ -f "\$a" ] && head -c 4096 "\$a" 2>/dev/null | grep -q SLATE-SANDBOX-PROBE; then
                echo "sandbox-report \$seen" >&2
                exit 1
        fi
done
case "\$seen" in
*" caps== net=unreachable secret=unreadable shadow=unreadable") exec $(command -v qemu-img) "\$@" ;;
esac
echo "sandbox breach: \$seen" >&2
exit 1
SPY
chmod 755 "$T/qemu-img-spy"
echo "qemu-img = $T/qemu-img-spy" >>"$CONF"
SLATED_ENV=(SPY_PORT="$PORT" SPY_SECRET="$SECRET")
start_slated

# The spy's sight of a run on the probe file $1 (published by "${@:2}", default root's slatectl).
report() {
        local f=$1
        shift
        if "${@:-ctl}" image publish probe "$f" >"$T/out" 2>&1; then fail "the probe $f was published"; fi
        grep -o 'sandbox-report [^"]*' "$T/out" | head -1 | sed 's/^sandbox-report //' || true
}
expect() { # what saw want
        [ "$2" = "$3" ] || fail "$1: the sandboxed qemu-img saw '$2', not '$3' (slatectl said: $(cat "$T/out"))"
        say "$1: $2"
}
probe_file() { { echo SLATE-SANDBOX-PROBE; head -c 1M /dev/zero; } >"$1"; }

say "a file others may read: qemu-img runs as nobody, with no capability, no network, no other file"
probe_file "$W/probe.img"
chmod 644 "$W/probe.img"
expect "root's 0644 file" "$(report "$W/probe.img")" "uid=65534 caps== net=unreachable secret=unreadable shadow=unreadable"

say "root's own 0600 file: qemu-img runs as its owner, root, with no capability either"
chmod 600 "$W/probe.img"
expect "root's 0600 file" "$(report "$W/probe.img")" "uid=0 caps== net=unreachable secret=unreadable shadow=unreadable"

adm=$(getent group slate-admin | cut -d: -f3 || true)
if [ -n "$adm" ] && id nobody >/dev/null 2>&1; then
        say "an admin who is not root: the file opened with their rights reaches the sandbox by its fd"
        as_admin() { setpriv --reuid=nobody --regid="$adm" --clear-groups "$SLATECTL" --socket "$T/run/control.sock" "$@"; }
        chown nobody "$W/probe.img"
        expect "nobody's 0600 file, published by nobody" "$(report "$W/probe.img" as_admin)" \
                "uid=65534 caps== net=unreachable secret=unreadable shadow=unreadable"
else
        say "(skipped the admin case: needs the slate-admin group and the user nobody)"
fi

# (tests/unit/test_image.c import_reads_no_host_file_even_unchecked: the sandbox holds without the refusal)
say "a qcow2 whose backing file is a host file: refused"
qemu-img create -q -f qcow2 -F raw -b "$SECRET" "$W/backed.qcow2"
if ctl image publish backed "$W/backed.qcow2" >"$T/out" 2>&1; then fail "published a qcow2 backed by $SECRET"; fi
grep -q "backing file" "$T/out" || fail "refusal does not name the backing file: $(cat "$T/out")"
! grep -q "sandbox breach" "$T/out" || fail "$(cat "$T/out")"

say "publishing still works end to end through the sandbox (info, check, convert, the converted file's checks)"
publish_guest_prepared img >"$T/out" 2>&1 || fail "publish through the sandbox failed: $(cat "$T/out")"
disk=$(jctl image show img | jq -r '.versions[0].path')
[ "$(stat -c '%u %a' "$disk")" = "0 444" ] || fail "the published disk is $(stat -c '%U %a' "$disk"), not root's 0444"
qemu-img check -q "$disk" || fail "the published disk does not pass qemu-img check"
[ -z "$(find "$T/state/images" -name '*.out')" ] || fail "the sandbox's output dir was left behind"
stop_slated TERM
echo "PASS: image-sandbox"
