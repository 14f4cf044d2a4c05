#!/usr/bin/env bash
# Section: what app layers and a profile disk add to a logon (issue: per-user applications and
# profile disks). A private slated, the tiny test guest, the headless rdp-client; warm logons of
# five users side by side, interleaved round by round: one with neither (a pool with profiles off:
# the logon as it was before layers existed), one with a profile only, one with a 10 MB layer, one
# with a 500 MB layer, one with five 10 MB layers (each with a profile). From each session's
# timeline: the apps, profile and agent steps (the agent step now includes the guest's mounts,
# which the agent times itself in its STARTED detail; the test guest's session hook, which runs the
# layers' programs, is in the agent step too);
# "added" is apps + profile + agent minus the plain logon's agent step. Also: the first logon's
# profile disk creation, and the time to add each layer (mkfs.ext4 -d + hash).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
BENCH_NAME=layers
. "${SLATE_SRCDIR:?set by bench/run}/bench/lib.sh"
bench_require qemu-system-x86_64 qemu-img jq mkfs.ext4
N=${BENCH_N:-30}
[ "$N" -le 8 ] || N=8   # every logon costs a guest boot (the refill) under TCG
busy_start=$(busy_now)
bench_slated_start base:pw p0:pw l1s:pw l1b:pw l5:pw
accel=$(jctl status | jq -r .accel)
bench_publish_tiny

# ---- layers: a program and a data file of the given size each ----
layer_tree() { # NAME MiB
        local d="$T/trees/$1"
        mkdir -p "$d/usr/bin" "$d/usr/lib/$1"
        printf '#!/bin/sh\necho %s\n' "$1" >"$d/usr/bin/slate-app-$1"
        chmod 755 "$d/usr/bin/slate-app-$1"
        head -c "$(($2 << 20))" /dev/urandom >"$d/usr/lib/$1/data"
        echo "$d"
}
: >"$T/add.times"
add_layer() { # NAME MiB
        local d t0
        d=$(layer_tree "$1" "$2")
        t0=$(now_ms)
        ctl app add "$1" "$d" --image tiny >/dev/null || fail "app add $1"
        echo "$1 $2 $(($(now_ms) - t0))" >>"$T/add.times"
}
add_layer big 500
for i in 0 1 2 3 4; do add_layer "small$i" 10; done
ctl app entitle big user:l1b >/dev/null
ctl app entitle small0 user:l1s >/dev/null
for i in 0 1 2 3 4; do ctl app entitle "small$i" user:l5 >/dev/null; done

ctl pool create plain --image tiny --warm 1 --max 3 --memory 256M --disconnect-timeout 600 --profiles off >/dev/null
ctl pool entitle plain user:base >/dev/null
ctl pool create prof --image tiny --warm 2 --max 4 --memory 256M --disconnect-timeout 600 >/dev/null
for u in p0 l1s l1b l5; do ctl pool entitle prof "user:$u" >/dev/null; done
ready() { jctl desktop list --pool "$1" | jq -e --argjson w "$2" '[.[] | select(.state == "ready")] | length >= $w' >/dev/null; }
no_sessions() { [ "$(jctl session list | jq length)" -eq 0 ]; }

# logon USER POOL: one warm logon; appends "apps profile agent logon_ms" to $T/USER.
logon() {
        wait_for 300 "a ready desktop in $2" ready "$2" 1
        "$RDPC" --host 127.0.0.1 --port "$RDP_PORT" --timeout 120 --user "$1" --password pw --wait-desktop \
                >"$T/out" 2>&1 || fail "$1 logon: $(tail -3 "$T/out")"
        local id
        id=$(jctl session list --user "$1" | jq -r '.[0].id')
        jctl session show "$id" | jq -r '[.timeline[0].steps[] | {(.step): .ms}] | add |
                "\(.apps) \(.profile) \(.agent)"' | tr '\n' ' ' >>"$T/$1"
        jctl session show "$id" | jq -r '.logon_ms // "–"' | tr '\n' ' ' >>"$T/$1"
        # The agent's own account of the disks (its STARTED detail, audited): all, and the wait for
        # the slot disks to be found in the guest.
        jctl audit --kind session.started | jq -r --arg s "$id" '[.[] | select(.detail | contains($s))][0].detail' |
                sed -n 's/.*; disks \([0-9]*\) ms (\([0-9]*\) waiting.*/\1 \2/p;t;s/.*/0 0/p' | tr '\n' ' ' >>"$T/$1"
        # The test guest's session hook (run by its test desktop inside the agent step): how long
        # it ran. It is the test's work (it runs every layer program, writes and syncs canaries).
        jctl audit --kind session.started | jq -r --arg s "$id" '[.[] | select(.detail | contains($s))][0].detail' |
                sed -n 's/.*; hook \([0-9]*\) ms:.*/\1/p;t;s/.*/0/p' >>"$T/$1"
        ctl session end "$id" >/dev/null
        wait_for 120 "$1's session ended" no_sessions
}

# The first logon of each profile user creates the disk: timed apart.
: >"$T/create"
for u in p0 l1s l1b l5; do
        logon "$u" prof
        cut -d' ' -f2 "$T/$u" >>"$T/create"
        : >"$T/$u"
done
logon base plain
: >"$T/base"

for _ in $(seq 1 "$N"); do
        logon base plain
        for u in p0 l1s l1b l5; do logon "$u" prof; done
done

col() { cut -d' ' -f"$2" "$T/$1"; }
cell() { local s; s=$(stats); echo "${s% *} / ${s#* }"; }
base_agent=$(col base 3 | stats | cut -d' ' -f1)
base_slate=$(awk '{ print $3 - $7 }' "$T/base" | stats | cut -d' ' -f1)
added() { awk -v b="$base_agent" '{ a = ($1 == "null" ? 0 : $1) + ($2 == "null" ? 0 : $2) + $3 - b; print a }' "$T/$1"; }
# What Slate adds: the same, with the session hook's own time taken out of each agent step.
slate_added() { awk -v b="$base_slate" '{ a = ($1 == "null" ? 0 : $1) + ($2 == "null" ? 0 : $2) + $3 - $7 - b; print a }' "$T/$1"; }

cat <<MD
## App layers and profile disks at logon

$N warm logons per row on the tiny test guest ($accel), interleaved round by round; times in ms from
each session's timeline, p50 / p90. *added* = apps + profile + agent − the plain logon's agent step
(p50 $base_agent ms). The agent step includes the test guest's session hook (*hook*: it runs every
layer program it finds and writes and syncs canaries; the test's work, timed by the test desktop);
*Slate adds* = apps + profile + (agent − hook), less the same for the plain logon (p50 $base_slate ms).
Goal: Slate adds under 150 ms, independent of layer size. At start: $busy_start.

| logon | apps | profile | agent (mounts + session) | of which disks in the guest (device wait) | hook | added | Slate adds | first frame (accept → frame) |
|---|---|---|---|---|---|---|---|---|
MD
for row in "base|no layer, no profile (profiles off)" "p0|profile only" "l1s|1 layer of 10 MB + profile" \
        "l1b|1 layer of 500 MB + profile" "l5|5 layers of 10 MB + profile"; do
        u=${row%%|*}
        echo "| ${row#*|} | $(col "$u" 1 | grep -v null | cell) | $(col "$u" 2 | grep -v null | cell) | $(col "$u" 3 | cell) | $(col "$u" 5 | cell) ($(col "$u" 6 | cell)) | $(col "$u" 7 | cell) | $(added "$u" | cell) | $(slate_added "$u" | cell) | $(col "$u" 4 | cell) |"
done
cat <<MD

First logon of a user: the profile step, which takes a spare disk (profile-spares = 2, made in the
background) or creates the encrypted 1 GiB disk (mkfs.ext4 on a sparse file, qemu-img convert to a
LUKS qcow2): $(cell <"$T/create") ms (p50 / p90 of 4). slated's own account of each (audit
profile.create): $(jctl audit --kind profile.create | jq -r '[.[] | "\(.subject): \(.detail)"] | join("; ")').
Making a disk (a spare, in the background), ms: $(sed -n 's/.*a spare [0-9]* MiB disk made in \([0-9]*\) ms.*/\1/p' "$T/slated.log" | stats | sed 's/ / \/ /') (p50 / p90).

Adding a layer from a tree (\`slatectl app add\`: walk, mkfs.ext4 -d, sha256), ms:
$(awk '{ printf "%s (%s MiB) %s; ", $1, $2, $3 }' "$T/add.times")

At end: $(busy_now).
MD
