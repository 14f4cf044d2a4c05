# Shared by bench sections that run a private slated (sourced; bash). Provides the temp dirs, the
# clean-up of everything started (by pid, checked against the command line), the numbers helpers
# and bench_slated_start, which writes a slate.conf, a pam_matrix passdb and starts slated on a
# loopback RDP port. Sets T, RAM, PIDS, SLATED_PID, RDP_PORT; callers set BENCH_NAME first.
B=${SLATE_BUILDDIR:?set by bench/run}
S=${SLATE_SRCDIR:?set by bench/run}
GUEST=$B/tests/guest/out
SLATED=$B/broker/slated
SLATECTL=$B/broker/slatectl
RDPC=$B/tests/e2e/rdp-client
SESSION=$B/rdp/slate-session

skip() { echo "$*" >&2; exit 77; }
bench_require() { # TOOL...
        local t
        for t in "$@"; do
                command -v "$t" >/dev/null || skip "$t not installed"
        done
        for t in "$SLATED" "$SLATECTL" "$RDPC" "$SESSION"; do
                [ -x "$t" ] || skip "$t not built (make check builds the e2e tools)"
        done
        for t in vmlinux initrd.img disk.qcow2 cmdline; do
                [ -s "$GUEST/$t" ] || skip "test guest not built ($GUEST/$t missing; run make guest)"
        done
        PAM_MOD=$(pkg-config --variable=modules pam_wrapper 2>/dev/null || true)
        PAM_LIB=$(ls /usr/lib/*/libpam_wrapper.so 2>/dev/null | head -1 || true)
        [ -n "$PAM_MOD" ] && [ -f "$PAM_MOD/pam_matrix.so" ] && [ -n "$PAM_LIB" ] ||
                skip "pam_wrapper not installed (apt-get install libpam-wrapper)"
}

foreign_qemu() { pgrep -c qemu-system || true; }
busy_now() { echo "load $(cut -d' ' -f1-3 /proc/loadavg), $(foreign_qemu) QEMU processes running"; }

# "slate-bench" in the names: other benchmarks wait while `pgrep -f slate-bench` finds us.
T=$(mktemp -d "${BENCH_DISK_DIR:-/var/tmp}/slate-bench-${BENCH_NAME:?}.XXXXXX")
RAM=$(mktemp -d "${BENCH_RAM_DIR:-/dev/shm}/slate-bench-$BENCH_NAME.XXXXXX")
chmod 755 "$T" "$RAM"
PIDS=()
SLATED_PID=

our_qemus() {
        local f p
        for f in "$T"/run/desktops/*/qemu.pid; do
                [ -f "$f" ] || continue
                p=$(cat "$f" 2>/dev/null) || continue
                grep -qF "$T/run/desktops/" "/proc/$p/cmdline" 2>/dev/null && echo "$p"
        done
        return 0
}
bench_cleanup() {
        set +e
        local p q
        for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
        sleep 0.3
        for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        q=$(our_qemus)
        if [ -n "$SLATED_PID" ]; then
                kill -KILL "$SLATED_PID" 2>/dev/null
                wait "$SLATED_PID" 2>/dev/null
        fi
        for p in $q $(our_qemus); do kill -KILL "$p" 2>/dev/null; done
        sleep 0.3
        if [ -n "${SLATE_BENCH_KEEP:-}" ]; then echo "kept $T" >&2; return; fi
        rm -rf "$T" "$RAM"
}
trap 'rc=$?; bench_cleanup; exit $rc' EXIT
trap 'exit 130' INT TERM

fail() {
        echo "$BENCH_NAME: $*" >&2
        [ -f "$T/slated.log" ] && grep -v -e 'control: uid' -e 'qmp ' "$T/slated.log" | tail -n 15 >&2
        exit 1
}
ctl() { "$SLATECTL" --socket "$T/run/control.sock" "$@"; }
jctl() { "$SLATECTL" --socket "$T/run/control.sock" --json "$@"; }
now_ms() { date +%s%3N; }
wait_for() { # SECONDS DESCRIPTION COMMAND...
        local secs=$1 what=$2
        shift 2
        local end=$((SECONDS + secs))
        while [ $SECONDS -lt $end ]; do
                "$@" && return 0
                sleep 0.25
        done
        fail "timed out after ${secs}s waiting for $what"
}
free_port() {
        local p
        for p in $(shuf -i 20000-60000 -n 50); do
                (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
        done
        fail "no free port"
}
# stats [P]: numbers on stdin → "p50 pP" (nearest rank; P is 90 unless given)
stats() {
        sort -n | awk -v q="${1:-90}" '{ v[NR] = $1 } END {
                if (NR == 0) { print "– –"; exit }
                f = q / 100
                m = int(NR * 0.5); if (m < NR * 0.5) m++; if (m < 1) m = 1
                p = int(NR * f); if (p < NR * f) p++; if (p < 1) p = 1
                print v[m], v[p] }'
}

# bench_slated_start USER:PASSWORD...: a private slated with those PAM users, the test guest's
# agent for publishing, and the guestfs kernel the suite uses.
bench_slated_start() {
        RDP_PORT=$(free_port)
        mkdir -p "$T/pam.d"
        local u
        for u in "$@"; do echo "${u%%:*}:${u#*:}:slate"; done >"$T/passdb"
        for u in auth account; do echo "$u required $PAM_MOD/pam_matrix.so passdb=$T/passdb"; done >"$T/pam.d/slate"
        echo "session required pam_permit.so" >>"$T/pam.d/slate"    # a logon opens a PAM session
        for u in auth account password session; do echo "$u required pam_deny.so"; done >"$T/pam.d/other"
        cat >"$T/slate.conf" <<CONF
state-dir = $T/state
run-dir = $T/run
ram-dir = $RAM
log-level = debug
accel = auto
probe-kernel = $GUEST/vmlinux
probe-initrd = $GUEST/initrd.img
tls-cert = $T/tls/cert.pem
tls-key = $T/tls/key.pem
listen = 127.0.0.1:$RDP_PORT
session-program = $SESSION
handshake-timeout = 10
pool-clone = ${BENCH_POOL_CLONE:-off}
CONF
        # BENCH_AGENT_BINARY: the agent publish installs (the Debian desktop needs the real one).
        if [ -n "${BENCH_AGENT_BINARY:-}" ]; then
                echo "agent-binary = $BENCH_AGENT_BINARY" >>"$T/slate.conf"
        elif [ -x "$B/tests/guest/slate-agent-testdesk" ]; then
                echo "agent-binary = $B/tests/guest/slate-agent-testdesk" >>"$T/slate.conf"
        fi
        [ -f "$S/agent/session-script" ] && echo "agent-session-script = $S/agent/session-script" >>"$T/slate.conf"
        if [ -s "$GUEST/guestfs-kernel.env" ]; then
                . "$GUEST/guestfs-kernel.env"
                if [ -r "${SLATE_GUESTFS_KERNEL:-}" ] && [ -d "${SLATE_GUESTFS_MODULES:-}" ]; then
                        printf 'guestfs-kernel = %s\nguestfs-modules = %s\n' "$SLATE_GUESTFS_KERNEL" "$SLATE_GUESTFS_MODULES" >>"$T/slate.conf"
                        export SUPERMIN_KERNEL=$SLATE_GUESTFS_KERNEL SUPERMIN_MODULES=$SLATE_GUESTFS_MODULES
                        export SUPERMIN_KERNEL_VERSION=${SLATE_GUESTFS_MODULES##*/}
                        export LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg
                fi
        fi
        LD_PRELOAD="$PAM_LIB" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
                "$SLATED" --config "$T/slate.conf" --foreground >>"$T/slated.log" 2>&1 &
        SLATED_PID=$!
        for _ in $(seq 1 600); do
                ctl status >/dev/null 2>&1 && break
                kill -0 "$SLATED_PID" 2>/dev/null || fail "slated exited at start"
                sleep 0.1
        done
        ctl status >/dev/null 2>&1 || fail "slated did not open its control socket in 60 s"
}

bench_publish_tiny() {
        jctl image publish tiny "$GUEST/disk.qcow2" --kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd.img" \
                --cmdline "$(cat "$GUEST/cmdline")" --current >/dev/null 2>"$T/publish.err" ||
                fail "image publish failed: $(tail -3 "$T/publish.err")"
}

# bench_xvfb VAR NAME [Xvfb args...]: an Xvfb of W x H (default 1280x800), its display name in VAR.
# Not in a command substitution: PIDS must keep the pid for the clean-up.
bench_xvfb() {
        exec 5>"$T/$2.display"
        Xvfb -displayfd 5 -screen 0 ${W:-1280}x${H:-800}x24 -nolisten tcp -ac "${@:3}" >"$T/$2.xvfb.log" 2>&1 &
        PIDS+=("$!")
        exec 5>&-
        local _
        for _ in $(seq 1 100); do [ -s "$T/$2.display" ] && break; sleep 0.1; done
        [ -s "$T/$2.display" ] || fail "Xvfb $2 did not start: $(tail -3 "$T/$2.xvfb.log")"
        printf -v "$1" ':%s' "$(head -1 "$T/$2.display")"
}

# bench_shadow_start DISPLAY PICTURE: freerdp-shadow-cli (no authentication, TLS as Slate offers)
# on that display, showing PICTURE (any file ImageMagick's display reads) on its root window;
# sets SH_PORT and SHADOW_PID. The reference server of the RDP sections.
bench_shadow_start() {
        local dpy=$1 pic=$2
        DISPLAY=$dpy display -window root "$pic" >/dev/null 2>&1 || true
        SH_PORT=$(free_port)
        mkdir -p "$T/shadow-home"
        HOME=$T/shadow-home XDG_CONFIG_HOME=$T/shadow-home/.config DISPLAY=$dpy \
                freerdp-shadow-cli /port:$SH_PORT /bind-address:127.0.0.1 -auth /sec:tls >"$T/shadow.log" 2>&1 &
        SHADOW_PID=$!
        PIDS+=("$SHADOW_PID")
        shadow_up() {
                kill -0 "$SHADOW_PID" 2>/dev/null || fail "freerdp-shadow-cli exited: $(tail -5 "$T/shadow.log")"
                (exec 3<>/dev/tcp/127.0.0.1/$SH_PORT) 2>/dev/null
        }
        wait_for 30 "freerdp-shadow-cli listening" shadow_up
        # It sends black until it has seen X damage once: repaint the root after its start.
        sleep 0.5
        DISPLAY=$dpy xsetroot -solid gray 2>/dev/null || true
        sleep 0.5
        DISPLAY=$dpy display -window root "$pic" >/dev/null 2>&1 || true
        sleep 0.5
}

# desk_user_rgb USER: the colour the tiny guest's test desktop paints USER's session with, as
# RRGGBB (the tests check it too).
. "$S/tests/guest/desk-rgb.sh"
