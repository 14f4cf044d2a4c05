#!/usr/bin/env bash
# slated killed (SIGKILL) at each named step of a logon, a logoff and a refill boot while ten
# logons are in flight, then started again: it must come up, keep every session whose desktop
# survived (disconnected, reconnectable), end the rest with a reason in the audit, leave no QEMU,
# overlay or run dir without a desktop, and refill the pool.
#
# SLATE_CRASH_RUNS (default 1) runs of every point; SLATE_CRASH_POINTS: the points ("all", or a
# list; default one of each kind, to keep `make check` short); SLATE_CRASH_LOGONS (default 6,
# 10 in `make check-faults`) logons at once. `make check-faults` runs every point 10 times.
# The pool clones its desktops (the product's default), so each refill takes seconds instead of
# a minute of cold boots; SLATE_CRASH_BOOT=cold boots them instead.
. "$(dirname "$0")/../integration/lib.sh"
require_tools
command -v sqlite3 >/dev/null || skip "sqlite3 not installed (apt-get install sqlite3)"
setup tcg
N=${SLATE_CRASH_LOGONS:-6}
RUNS=${SLATE_CRASH_RUNS:-1}
# Logon: PAM queued, PAM done, desktop taken, agent asked, agent started, console attached,
# first frame. Logoff: ending recorded, agent stopped, destroy begun, overlay erase. Refill:
# a new desktop recorded, its QEMU started.
ALL_POINTS="auth authenticated desktop-assigned agent-start agent-started attach first-frame
        logoff session-stopped desktop-destroy desktop-erase desktop-create qemu-started"
POINTS=${SLATE_CRASH_POINTS:-"desktop-assigned agent-started logoff desktop-create"}
[ "$POINTS" != all ] || POINTS=$ALL_POINTS
users=()
for i in $(seq 1 "$N"); do users+=("crash$i:pw$i"); done
setup_pam "${users[@]}"
setup_rdp
BASE_ENV=("${SLATED_ENV[@]}")
start_slated
publish_guest tiny >/dev/null
# Profiles off: this test is about slated's own state across kills; ten first-logon profile disks at
# once (qemu-img's LUKS benchmark, ~1 s of CPU each) beside ten booting VMs only slow it down. The
# profile's own crash behaviour is tests/e2e/profiles.sh's (a desktop killed mid-write).
if [ "${SLATE_CRASH_BOOT:-clone}" = cold ]; then
        ctl pool create many --image tiny --warm "$N" --max $((2 * N)) --memory 160M --disconnect-timeout 900 \
                --profiles off --boot >/dev/null
else
        # Spares wait while the template is built, then clone; should the build fail, they boot.
        ctl pool create many --image tiny --warm "$N" --max $((2 * N)) --memory 160M --disconnect-timeout 900 \
                --profiles off --clone >/dev/null
fi
ctl pool entitle many all >/dev/null
wait_for 600 "$N ready desktops" pool_ready many "$N"
say "$N ready desktops: $(jctl desktop list --pool many | jq -r 'group_by(.boot_mode) | map("\(length) \(.[0].boot_mode)") | join(", ")'); templates: $(jctl template list | jq -r 'map("\(.name) \(.state) \(.why // "")") | join("; ")')"

# Every QEMU of this test belongs to a listed desktop, and every running desktop has one.
qemus_match() {
        local listed running
        listed=$(jctl desktop list | jq -r '.[] | select(.pid > 0) | .pid' | sort -n | tr '\n' ' ')
        running=$(qemu_pids | sort -n | tr '\n' ' ')
        [ "$listed" = "$running" ]
}

# No overlay or run dir without a desktop.
no_orphan_files() {
        local ids f
        ids=" $(jctl desktop list | jq -r '.[].id' | tr '\n' ' ') "
        for f in "$T/state/overlays"/* "$RAM"/*; do
                [ -e "$f" ] || continue
                f=$(basename "$f" .qcow2)
                [[ $ids == *" $f "* ]] || { echo "orphan overlay $f" >&2; return 1; }
        done
        for f in "$T/run/desktops"/*; do
                [ -e "$f" ] || continue
                [[ $ids == *" $(basename "$f") "* ]] || { echo "orphan run dir $f" >&2; return 1; }
        done
}

idle_again() {
        [ "$(jctl session list | jq length)" -eq 0 ] && pool_ready many "$N" &&
                [ "$(jctl desktop list | jq '[.[] | select(.state != "ready")] | length')" -eq 0 ]
}

crash_once() { # point run
        local point=$1 run=$2 k=$(((N + 1) / 2)) i
        say "run $run: SIGKILL at $point (hit $k of $N logons)"
        stop_slated TERM
        SLATED_ENV=("${BASE_ENV[@]}" SLATE_CRASH_AT="$point:$k")
        start_slated
        SLATED_ENV=("${BASE_ENV[@]}")
        local pids=()
        for i in $(seq 1 "$N"); do
                rdp --user "crash$i" --password "pw$i" --timeout 40 --wait-desktop --hold 1 >"$T/c.$i" 2>&1 &
                pids+=($!)
        done
        for p in "${pids[@]}"; do wait "$p" || true; done
        # Logons done: logoff points are reached by ending every session.
        if kill -0 "$SLATED_PID" 2>/dev/null; then
                for sid in $(jctl session list | jq -r '.[].id'); do
                        ctl session end "$sid" >/dev/null 2>&1 &
                done
                wait_for 120 "slated to reach $point" bash -c "! kill -0 $SLATED_PID 2>/dev/null"
        fi
        wait "$SLATED_PID" 2>/dev/null || true
        SLATED_PID=
        grep -q "crash point $point reached" "$T/slated.log" || fail "slated died before reaching $point"
        # What the crash left behind: the sessions the next start must account for.
        sqlite3 "$T/state/slate.db" "SELECT id || ' ' || user || ' ' || state || ' ' || desktop FROM sessions" \
                >"$T/left" 2>/dev/null || :
        local seq
        seq=$(sqlite3 "$T/state/slate.db" "SELECT IFNULL(MAX(seq), 0) FROM audit")
        say "left behind: $(wc -l <"$T/left") session rows, $(qemu_pids | wc -l) QEMU"

        start_slated
        grep -q "SIGSEGV\|AddressSanitizer" "$T/slated.log" && fail "slated crashed at start"
        wait_for 60 "every QEMU to belong to a listed desktop" qemus_match
        no_orphan_files || fail "files without a desktop after the restart at $point"
        local kept=0 sid user state desk
        while read -r sid user state desk; do
                if jctl session list | jq -e --arg id "$sid" '.[] | select(.id == $id)' >/dev/null; then
                        local st d
                        st=$(jctl session list | jq -r --arg id "$sid" '.[] | select(.id == $id) | .state')
                        d=$(jctl session list | jq -r --arg id "$sid" '.[] | select(.id == $id) | .desktop')
                        [ "$st" = disconnected ] || fail "kept session $sid is $st, not disconnected"
                        jctl desktop list | jq -e --arg d "$d" '.[] | select(.id == $d and .state == "assigned")' \
                                >/dev/null || fail "kept session $sid has no assigned desktop $d"
                        kept=$((kept + 1))
                else
                        jctl audit --kind logout --limit 500 | jq -e --arg id "$sid" --argjson seq "$seq" \
                                '.[] | select(.seq > $seq and (.detail | startswith("session " + $id + ":")))' \
                                >/dev/null || fail "session $sid ($user) vanished at $point without an audited end"
                        # A logoff cut short is finished with its own reason, and its desktop erased.
                        if [ "$state" = ending ]; then
                                jctl audit --kind logout --limit 500 | jq -e --arg id "$sid" \
                                        '.[] | select((.detail | startswith("session " + $id + ":")) and
                                                      (.detail | contains("finished after a broker restart")))' \
                                        >/dev/null || fail "the logoff of $sid was not finished with its reason"
                        fi
                        if [ -n "$desk" ]; then
                                erased() { ! jctl desktop list | jq -e --arg d "$1" '.[] | select(.id == $d)' >/dev/null &&
                                        [ ! -e "$T/state/overlays/$1.qcow2" ] && [ ! -e "$T/run/desktops/$1" ]; }
                                wait_for 30 "desktop $desk of ended session $sid to be erased" erased "$desk"
                        fi
                fi
        done <"$T/left"
        say "after restart: $kept sessions kept, $(($(wc -l <"$T/left") - kept)) ended with a reason"
        # A kept session is reconnectable: its user gets the same desktop and their own colour.
        sid=$(jctl session list | jq -r '.[0].id // empty')
        if [ -n "$sid" ]; then
                user=$(jctl session list | jq -r '.[0].user')
                local d0 i=${user#crash}
                d0=$(jctl session list | jq -r '.[0].desktop')
                rdp --user "$user" --password "pw$i" --wait-frame --expect-pixel "20,20,$(desk_user_rgb "$user")" \
                        >"$T/re" 2>&1 || fail "reconnect of $user after the restart at $point: $(cat "$T/re")"
                [ "$(jctl session list --user "$user" | jq -r '.[0].desktop')" = "$d0" ] ||
                        fail "$user reconnected to another desktop"
        fi
        # Clean slate for the next point: every session ends, the pool refills.
        for sid in $(jctl session list | jq -r '.[].id'); do ctl session end "$sid" >/dev/null; done
        wait_for 600 "the pool to refill to $N idle desktops after $point" idle_again
        qemus_match || fail "QEMU without a desktop after the refill"
        no_orphan_files || fail "files without a desktop after the refill"
}

for run in $(seq 1 "$RUNS"); do
        for point in $POINTS; do
                crash_once "$point" "$run"
        done
done
stop_slated TERM
echo "PASS: crash points ($RUNS run(s) of: $(echo $POINTS))"
