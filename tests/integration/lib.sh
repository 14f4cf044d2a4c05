# Shared helpers for the integration tests: a private slated with its own state and run dirs,
# real QEMU (TCG here), the tiny test guest. Sourced by each test script.
set -euo pipefail

B=${SLATE_BUILDDIR:?run from make check}
S=${SLATE_SRCDIR:?run from make check}
GUEST=$B/tests/guest/out
SLATED=$B/broker/slated
SLATECTL=$B/broker/slatectl

skip() { echo "SKIP: $*"; exit 77; }
fail() {
        echo "FAIL: $*" >&2
        if [ -n "${T:-}" ] && [ -f "$T/slated.log" ]; then
                echo "--- last lines of slated's log:" >&2
                grep -v -e 'control: uid' -e '^<7>.*qmp ' "$T/slated.log" | tail -n 60 >&2
        fi
        exit 1
}
# Each line ends with the seconds since the test began, to see where a slow test spends them.
say() { echo "# $* [${SECONDS}s]"; }

require_tools() {
        command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
        command -v qemu-img >/dev/null || skip "qemu-img not installed (apt-get install qemu-utils)"
        command -v jq >/dev/null || skip "jq not installed (apt-get install jq)"
        for f in vmlinux initrd.img disk.qcow2 cmdline; do
                [ -s "$GUEST/$f" ] || skip "test guest not built ($GUEST/$f missing; run make guest)"
        done
}

# Free TCP port on loopback for the RDP listener.
free_port() {
        local p
        for p in $(shuf -i 20000-60000 -n 50); do
                (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
        done
        echo 33891
}

# setup_pam USER:PASSWORD...: pam_wrapper + pam_matrix for slated (the real PAM library and
# stack with a private password file; research: pam-testing.md). Call after setup. The session
# stack runs a hook (pam_exec: PAM_TYPE is open_session or close_session) that appends
# "TYPE USER RHOST" to $T/pam-sessions.log: what slated opened and closed.
setup_pam() {
        PAM_MOD=$(pkg-config --variable=modules pam_wrapper 2>/dev/null || true)
        PAM_LIB=$(ls /usr/lib/*/libpam_wrapper.so 2>/dev/null | head -1 || true)
        [ -n "$PAM_MOD" ] && [ -f "$PAM_MOD/pam_matrix.so" ] && [ -n "$PAM_LIB" ] ||
                skip "pam_wrapper not installed (apt-get install libpam-wrapper)"
        mkdir -p "$T/pam.d"
        : >"$T/passdb"
        for up in "$@"; do echo "$up:slate" >>"$T/passdb"; done
        for t in auth account; do echo "$t required $PAM_MOD/pam_matrix.so passdb=$T/passdb"; done >"$T/pam.d/slate"
        printf '#!/bin/sh\necho "$PAM_TYPE $PAM_USER $PAM_RHOST" >>"%s/pam-sessions.log"\n' "$T" >"$T/pam-hook"
        chmod 755 "$T/pam-hook"
        echo "session required pam_exec.so $T/pam-hook" >>"$T/pam.d/slate"
        for t in auth account password session; do echo "$t required pam_deny.so"; done >"$T/pam.d/other"
        SLATED_ENV=(LD_PRELOAD="$PAM_LIB" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d")
}

# setup_pam_oath USER...: after setup_pam, a second factor for these users (everyone in the
# passdb needs one then): pam_oath (Debian's libpam-oath) asks a TOTP code after the password.
# totp prints the code for now (oathtool). Skips without them.
setup_pam_oath() {
        PAM_OATH=$(ls /usr/lib/*/security/pam_oath.so /lib/*/security/pam_oath.so 2>/dev/null | head -1 || true)
        [ -n "$PAM_OATH" ] || skip "pam_oath not installed (apt-get install libpam-oath)"
        command -v oathtool >/dev/null || skip "oathtool not installed (apt-get install oathtool)"
        OATH_KEY=3132333435363738393031323334353637383930
        local u
        for u in "$@"; do echo "HOTP/T30/6 $u - $OATH_KEY"; done >"$T/oath.users"
        chmod 600 "$T/oath.users"
        sed -i "1a auth required $PAM_OATH usersfile=$T/oath.users window=2 digits=6" "$T/pam.d/slate"
}
totp() { oathtool --totp -d 6 "$OATH_KEY"; }

# setup_pam_expired USER...: after setup_pam, these users' passwords have expired; the password
# stack changes them (tests/pam/pam_expired.so: "New password", "Retype new password"), and a
# change leaves $T/pam-state/USER.changed. With "chatty=USER" among the arguments, that user is
# asked "Question N:" without end instead.
setup_pam_expired() {
        local mod=$B/tests/pam/pam_expired.so args="" u
        [ -f "$mod" ] || fail "$mod not built (make check TESTS=)"
        mkdir -p "$T/pam-state"
        for u in "$@"; do
                case $u in
                chatty=*) sed -i "1a auth required $mod $u" "$T/pam.d/slate" ;;
                *) args="$args password_expired=$u" ;;
                esac
        done
        sed -i "/^account required .*pam_matrix/a account required $mod$args state=$T/pam-state" "$T/pam.d/slate"
        echo "password required $mod state=$T/pam-state" >>"$T/pam.d/slate"
}

# setup_listener [CONFIG-LINE...]: slated listens for RDP on PORT (a free loopback port) with the
# built slate-session; the lines given follow in the config.
setup_listener() {
        [ -x "$B/rdp/slate-session" ] || skip "slate-session not built"
        PORT=$(free_port)
        printf '%s\n' "listen = 127.0.0.1:$PORT" "session-program = $B/rdp/slate-session" "$@" >>"$CONF"
}

# setup_rdp: the listener for the test client (rdp, on RDP_PORT).
setup_rdp() {
        [ -x "$B/tests/e2e/rdp-client" ] || skip "tests/e2e/rdp-client not built"
        setup_listener "handshake-timeout = 5"
        RDP_PORT=$PORT
}

# setup_session_uids AT HANDSHAKE_S: for the tests of slate-session's isolation (as root: only then
# do sessions get uids of their own): `setup tcg`, the listener on PORT, and session uids from
# BASE, a range of this run's own near AT (another test's slated at the same time, make -j check,
# hands out its own ids, and this one skips those).
setup_session_uids() {
        require_tools
        command -v nc >/dev/null || skip "nc not installed (apt-get install netcat-openbsd)"
        [ "$(id -u)" -eq 0 ] || skip "needs root (sessions get uids of their own only when slated is root)"
        setup tcg
        BASE=$(($1 + (RANDOM % 4096) * 256))
        setup_listener "handshake-timeout = $2" "session-uid-base = $BASE"
}

# proc_status PID KEY: one field of /proc/PID/status (Uid, Groups, Seccomp, ...).
proc_status() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status"; }

# check_session_uid WHAT PID UID: a slate-session (WHAT: "pid", "spare") runs as UID of
# session-uid-base's range (real, effective, saved, fs; its gid the same), with no supplementary
# group, under no-new-privs and a seccomp filter.
check_session_uid() {
        local what=$1 p=$2 u=$3 f
        [ "$u" -ge "$BASE" ] && [ "$u" -lt $((BASE + 65536)) ] || fail "$what $p: uid $u is outside session-uid-base's range"
        for f in Uid Gid; do
                [ "$(proc_status "$p" $f)" = "$u $u $u $u" ] || fail "$what $p: $f $(proc_status "$p" $f), not $u"
        done
        [ -z "$(proc_status "$p" Groups)" ] || fail "$what $p has supplementary groups: $(proc_status "$p" Groups)"
        [ "$(proc_status "$p" NoNewPrivs)" = 1 ] || fail "$what $p: NoNewPrivs $(proc_status "$p" NoNewPrivs)"
        [ "$(proc_status "$p" Seccomp)" = 2 ] || fail "$what $p: Seccomp $(proc_status "$p" Seccomp), not 2 (filter)"
}

RDP_CLIENT="$B/tests/e2e/rdp-client"
rdp() { "$RDP_CLIENT" --host 127.0.0.1 --port "$RDP_PORT" --timeout 60 "$@"; }

# desk_user_rgb USER: the colour the test guest paints USER's session with (tests/guest/README.md).
. "$S/tests/guest/desk-rgb.sh"

# setup [accel]: temp dirs and a config; exports T, CONF.
setup() {
        T=$(mktemp -d /var/tmp/slate-it.XXXXXX)
        RAM=$(mktemp -d /dev/shm/slate-it.XXXXXX)
        chmod 755 "$T"
        CONF=$T/slate.conf
        cat >"$CONF" <<CONF
state-dir = $T/state
run-dir = $T/run
ram-dir = $RAM
log-level = debug
accel = ${1:-tcg}
probe-kernel = $GUEST/vmlinux
probe-initrd = $GUEST/initrd.img
heartbeat-interval = 1
heartbeat-misses = 10
profile-spares = 0
profile-backup = off
tls-cert = $T/tls/cert.pem
tls-key = $T/tls/key.pem
# Pools boot cold unless a test asks for clones (--clone; tests/integration/clone.sh): the other
# tests count one QEMU per desktop and time cold boots.
pool-clone = off
CONF
        # Publishing runs libguestfs: the appliance kernel the guest recipe fetched, and the agent
        # every published image gets: the test guest's build, which draws the test desktop.
        if [ -f "$GUEST/guestfs-kernel.env" ]; then
                . "$GUEST/guestfs-kernel.env"
                printf 'guestfs-kernel = %s\nguestfs-modules = %s\n' "$SLATE_GUESTFS_KERNEL" "$SLATE_GUESTFS_MODULES" >>"$CONF"
        fi
        echo "agent-binary = $B/tests/guest/slate-agent-testdesk" >>"$CONF"
        trap teardown EXIT
}

teardown() {
        stop_slated KILL || true
        # Kill anything of ours still alive, then remove the dirs.
        pkill -KILL -f "$T/run/desktops/" 2>/dev/null || true
        sleep 0.2
        if [ -n "${SLATE_TEST_KEEP:-}" ]; then echo "# kept $T" >&2; return; fi
        chmod -R u+w "$T" 2>/dev/null || true
        rm -rf "$T" "$RAM"
}

SLATED_ENV=()
start_slated() {
        grep -q '^listen' "$CONF" || echo "listen = none" >>"$CONF"
        env "${SLATED_ENV[@]}" "$SLATED" --config "$CONF" --foreground >>"$T/slated.log" 2>&1 &
        SLATED_PID=$!
        # SLATE_START_WAIT: seconds to wait (default 30; more for slated under valgrind).
        local wait_s=${SLATE_START_WAIT:-30}
        for _ in $(seq 1 $((wait_s * 10))); do
                ctl status >/dev/null 2>&1 && return 0
                kill -0 $SLATED_PID 2>/dev/null || fail "slated exited at start"
                sleep 0.1
        done
        fail "slated did not open its control socket in $wait_s s"
}

stop_slated() {
        local sig=${1:-TERM}
        [ -n "${SLATED_PID:-}" ] || return 0
        kill -"$sig" "$SLATED_PID" 2>/dev/null || true
        wait "$SLATED_PID" 2>/dev/null || true
        SLATED_PID=
}

ctl() { "$SLATECTL" --socket "$T/run/control.sock" "$@"; }
jctl() { "$SLATECTL" --socket "$T/run/control.sock" --json "$@"; }

# publish_guest NAME: the test guest as the next current version of NAME, published --as-is
# (its disk already holds this build's agent): no libguestfs launch, which costs 15-20 s under
# TCG. Tests of the publishing pipeline itself use publish_guest_prepared.
publish_guest() {
        jctl image publish "$1" "$GUEST/disk.qcow2" --kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd.img" \
                --cmdline "$(cat "$GUEST/cmdline")" --current --as-is
}
# publish_guest_prepared NAME: the same through the whole pipeline (inspect, seal, agent).
publish_guest_prepared() {
        jctl image publish "$1" "$GUEST/disk.qcow2" --kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd.img" \
                --cmdline "$(cat "$GUEST/cmdline")" --current
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_for() {
        local secs=$1 what=$2
        shift 2
        local end=$(($(date +%s) + secs))
        while [ "$(date +%s)" -lt "$end" ]; do
                "$@" && return 0
                sleep 0.5
        done
        fail "timed out after ${secs}s waiting for $what"
}

count_state() { # pool state
        jctl desktop list --pool "$1" | jq --arg s "$2" '[.[] | select(.state == $s)] | length'
}

pool_ready() { [ "$(count_state "$1" ready)" -ge "$2" ]; }

# QEMU processes started by this test's slated.
# The CPU scheduling policies of a process's threads, one per line (0 normal, 5 idle): field 41
# of /proc/PID/task/TID/stat, counted after the ")" that ends the thread's name.
thread_policies() { for f in /proc/"$1"/task/*/stat; do sed 's/.*) //' "$f" 2>/dev/null | awk '{print $39}'; done | sort -u; }
# CPU ticks (user + system) a process has used.
cpu_ticks() { sed 's/.*) //' /proc/"$1"/stat | awk '{print $12 + $13}'; }
qemu_pids() { pgrep -f "qemu-system.*$T/run/desktops/" || true; }
