# A throwaway OpenSSH server on loopback, for tests that replicate a block store to "another
# host" over SSH/SFTP. Sourced by bash test scripts; needs nothing else from the suite.
#
#   . "$(dirname "$0")/sshd.sh"
#   sshd_start "$T/replica-host"       # call directly, not in $(...): it exports variables
#   trap 'sshd_stop; teardown' EXIT    # sshd_stop before anything removes the directory
#   $SLATE_SSH slate-replica true
#   sftp -F "$SLATE_SSH_CONFIG" -b "$T/batch" slate-replica
#
# After sshd_start DIR:
#   SSHD_PORT         the loopback port the daemon listens on (127.0.0.1 only)
#   SLATE_SSH         "ssh -F DIR/ssh/config": an ssh command line, used as $SLATE_SSH HOST CMD
#   SLATE_SSH_CONFIG  DIR/ssh/config: an ssh_config whose Host slate-replica is this daemon
#   SLATE_SSH_HOST    slate-replica
#   SSHD_PID          the listening daemon's pid (also in DIR/ssh/sshd.pid)
# The remote user is the one running the test (root under make check as root). Its log is
# DIR/ssh/sshd.log. Remote commands run through that user's shell, which reads its startup files
# (bash run by sshd reads ~/.bashrc: slow, and it must print nothing) and gets none of the test's
# environment: name build-tree programs by absolute path. sftp (internal-sftp) runs no shell.

SSHD_BIN=/usr/sbin/sshd
SLATE_SSH_HOST=slate-replica

_sshd_skip() { echo "SKIP: $*"; exit 77; }
_sshd_fail() {
        echo "FAIL: $*" >&2
        if [ -n "${SSHD_DIR:-}" ] && [ -s "$SSHD_DIR/sshd.log" ]; then
                echo "--- last lines of sshd's log:" >&2
                tail -n 30 "$SSHD_DIR/sshd.log" >&2
        fi
        sshd_stop       # a daemon half started is not left behind for the caller's trap to miss
        exit 1
}

# Missing pieces make the test skip (77) with the package to install, never pass silently.
_sshd_require() {
        [ -x "$SSHD_BIN" ] || _sshd_skip "sshd not installed (apt-get install openssh-server; ./bootstrap deps)"
        local t
        for t in ssh ssh-keygen sftp; do
                command -v $t >/dev/null || _sshd_skip "$t not installed (apt-get install openssh-client; ./bootstrap deps)"
        done
        # sshd refuses to start without its privilege separation user (made by openssh-server's
        # postinst); as root it also chroots the pre-auth child into /run/sshd.
        getent passwd sshd >/dev/null || _sshd_skip "no sshd user (reinstall openssh-server)"
        if [ "$(id -u)" -eq 0 ] && [ ! -d /run/sshd ]; then
                if ! mkdir -p /run/sshd || ! chmod 0755 /run/sshd; then _sshd_skip "cannot create /run/sshd"; fi
        fi
}

# The pid in the pid file, only if it is still our daemon: a stale file's pid may be reused by
# anything else by now, and must not be killed.
_sshd_ours() {
        local pid=$1 cmd
        [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
        [[ $cmd == *"-f $SSHD_DIR/sshd_config "* ]]
}

# Descendants of a pid, deepest last: each connection is a child of the listener, and commands
# run over ssh are children of those; killing the listener alone leaves all of them running.
_sshd_tree() {
        local c
        for c in $(pgrep -P "$1" 2>/dev/null); do
                echo "$c"
                _sshd_tree "$c"
        done
}

# sshd_start DIR: keys, config and a running daemon on a free loopback port (see the top). One
# daemon per test shell: a second sshd_start stops the first (the same DIR keeps its keys).
sshd_start() {
        [ $# -eq 1 ] || _sshd_fail "usage: sshd_start DIR"
        _sshd_require
        sshd_stop
        mkdir -p "$1/ssh"
        SSHD_DIR=$(cd "$1/ssh" && pwd)     # absolute: sshd chdirs to / when it daemonises
        # $SLATE_SSH is used unquoted (word split), so its path must not contain blanks.
        case $SSHD_DIR in *[[:space:]]*) _sshd_fail "sshd_start: blank in the path $SSHD_DIR" ;; esac
        chmod 0700 "$SSHD_DIR"
        local d=$SSHD_DIR user
        user=$(id -un)
        # Kept if present, so a restart on the same DIR keeps the host's identity. ssh-keygen
        # would ask before overwriting, and stdin is not a terminal here.
        [ -f "$d/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C slate-test-host -f "$d/host_ed25519" </dev/null ||
                _sshd_fail "ssh-keygen (host key)"
        [ -f "$d/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C slate-test-client -f "$d/id_ed25519" </dev/null ||
                _sshd_fail "ssh-keygen (client key)"
        cp "$d/id_ed25519.pub" "$d/authorized_keys"
        chmod 0600 "$d/authorized_keys"

        # A random port below the kernel's ephemeral range (32768-60999 by default), and another
        # one if it is taken: trying the bind itself leaves no window for another test to take
        # the port between a probe and sshd's bind.
        local port state
        for _ in 1 2 3 4 5 6 7 8 9 10; do
                port=$(shuf -i 20000-32767 -n 1)
                _sshd_config "$port" "$user"
                : >"$d/sshd.log"
                rm -f "$d/sshd.pid"
                # sshd forks into the background before it binds, so its exit status says nothing
                # about the port: the pid file (written once it listens) or the log tells.
                "$SSHD_BIN" -f "$d/sshd_config" -E "$d/sshd.log" </dev/null || _sshd_fail "sshd did not start"
                state=$(_sshd_wait_listening "$port")
                [ "$state" = busy ] || break
        done
        case $state in
        up) ;;
        busy) _sshd_fail "sshd found no free port in 10 tries" ;;
        *) _sshd_fail "sshd on 127.0.0.1:$port not answering after 5 s" ;;
        esac
        SSHD_PID=$(cat "$d/sshd.pid")
        SSHD_PORT=$port

        _sshd_client_config "$port" "$user"
        SLATE_SSH_CONFIG=$d/config
        SLATE_SSH="ssh -F $d/config"
        export SSHD_PORT SSHD_PID SLATE_SSH SLATE_SSH_CONFIG SLATE_SSH_HOST

        # One real log-on with sftp now, so a broken key, config or sftp subsystem fails here,
        # named, with sshd's log, rather than later as an obscure replication error. (sftp, not
        # "ssh true": that would also pay for the remote user's ~/.bashrc, 0.5 s here.)
        echo bye | sftp -F "$d/config" -b - "$SLATE_SSH_HOST" >/dev/null ||
                _sshd_fail "sftp to $SLATE_SSH_HOST (127.0.0.1:$port) failed"
}

# _sshd_wait_listening PORT: up to 5 s for the daemon just started. "up" once it has written its
# pid file and a connection gets the SSH banner (proof that accept, fork and re-exec all work),
# "busy" if its port was taken (it has exited then), "down" otherwise.
_sshd_wait_listening() {
        local banner
        for _ in $(seq 50); do
                if grep -qE 'Cannot bind any address' "$SSHD_DIR/sshd.log"; then
                        echo busy
                        return
                fi
                if [ -s "$SSHD_DIR/sshd.pid" ]; then
                        banner=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" && read -r -t 2 b <&3 && echo "$b") 2>/dev/null || true)
                        case $banner in SSH-2.0-*) echo up; return ;; esac
                fi
                sleep 0.1
        done
        echo down
}

# The daemon's config: loopback only, keys only, nothing from /etc/ssh (-f replaces it whole).
_sshd_config() {
        local d=$SSHD_DIR
        cat >"$d/sshd_config" <<CONF
ListenAddress 127.0.0.1:$1
AddressFamily inet
HostKey $d/host_ed25519
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
AllowUsers $2
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The test dirs are under /var/tmp and made by mktemp: ownership checks would only get in the way.
StrictModes no
# In-process sftp: no dependency on the openssh-sftp-server binary's path.
Subsystem sftp internal-sftp
LogLevel VERBOSE
PrintMotd no
PrintLastLog no
UseDNS no
X11Forwarding no
# Tests may open connections in parallel; the default (10:30:100) starts dropping at 10.
MaxStartups 64
MaxSessions 64
CONF
}

# The client side: Host slate-replica is this daemon; the Host * part also serves a plain
# "ssh -F CONFIG -p PORT 127.0.0.1". -F means neither ~/.ssh/config nor /etc/ssh/ssh_config is read.
_sshd_client_config() {
        local d=$SSHD_DIR
        cat >"$d/config" <<CONF
Host $SLATE_SSH_HOST
        HostName 127.0.0.1
        Port $1
        User $2

Host *
        IdentityFile $d/id_ed25519
        IdentitiesOnly yes
        IdentityAgent none
        StrictHostKeyChecking no
        UserKnownHostsFile $d/known_hosts
        UpdateHostKeys no
        BatchMode yes
        ConnectTimeout 10
        LogLevel ERROR
CONF
        # Written ahead, so the host key is checked anyway and parallel first connections do not
        # all append to known_hosts at once.
        echo "[127.0.0.1]:$1,[localhost]:$1 $(cut -d' ' -f1-2 "$d/host_ed25519.pub")" >"$d/known_hosts"
}

# sshd_stop: the daemon and everything it started (connections, remote commands) ended; safe to
# call twice and when sshd_start never ran, so it suits a trap.
sshd_stop() {
        [ -n "${SSHD_DIR:-}" ] || return 0
        local pid=${SSHD_PID:-} p
        [ -n "$pid" ] || pid=$(cat "$SSHD_DIR/sshd.pid" 2>/dev/null || true)
        if _sshd_ours "$pid"; then
                # Children first: once the listener is gone they are reparented and lost.
                for p in $(_sshd_tree "$pid") "$pid"; do kill -TERM "$p" 2>/dev/null || true; done
                for _ in $(seq 50); do
                        kill -0 "$pid" 2>/dev/null || break
                        sleep 0.1
                done
                kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$SSHD_DIR/sshd.pid"
        SSHD_PID=
        return 0
}
