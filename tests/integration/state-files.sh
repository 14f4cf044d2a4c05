#!/usr/bin/env bash
# Root's files and directories (issue: hardening). slated refuses a ram-dir (or any of its dirs)
# that someone else made first or that is a symlink, instead of chmod'ing it and working inside;
# its database and SQLite's -wal and -shm beside it are 0600 from the start (they were created
# 0644: the -wal and -shm stayed so).
. "$(dirname "$0")/lib.sh"
require_tools
setup tcg
nobody=$(id -u nobody 2>/dev/null) || skip "no user nobody"
[ "$(id -u)" -eq 0 ] || skip "needs root (a directory owned by another user)"

say "a ram-dir another user made first: refused, left alone"
other=$(mktemp -d /dev/shm/slate-other.XXXXXX)
chown "$nobody" "$other"
chmod 0777 "$other"
sed -i "s|^ram-dir = .*|ram-dir = $other|" "$CONF"
# refused: slated exits at once; taken: it would run on, so 20 s of it is a start.
refused() { timeout 20 "$SLATED" --config "$CONF" --foreground >"$T/out" 2>&1; [ $? -ne 124 ]; }
refused || fail "slated started with a ram-dir owned by nobody"
grep -q "owned by uid $nobody" "$T/out" || fail "the refusal does not say why: $(tail -3 "$T/out")"
[ "$(stat -c %a:%u "$other")" = "777:$nobody" ] || fail "slated changed the foreign ram-dir: $(stat -c %a:%u "$other")"
rmdir "$other"

say "a ram-dir that is a symlink: refused"
mkdir -p "$T/elsewhere"
ln -s "$T/elsewhere" "$T/ramlink"
sed -i "s|^ram-dir = .*|ram-dir = $T/ramlink|" "$CONF"
refused || fail "slated started with a symlinked ram-dir"
grep -q "not a directory" "$T/out" || fail "the refusal does not say why: $(tail -3 "$T/out")"

say "the database and its -wal and -shm: 0600"
sed -i "s|^ram-dir = .*|ram-dir = $RAM|" "$CONF"
start_slated
ctl status >/dev/null
for f in "$T"/state/slate.db "$T"/state/slate.db-wal "$T"/state/slate.db-shm; do
        [ -e "$f" ] || continue
        [ "$(stat -c %a "$f")" = 600 ] || fail "$f is mode $(stat -c %a "$f")"
done
ls "$T"/state/slate.db-wal >/dev/null 2>&1 || say "(no -wal file to check)"
stop_slated TERM
echo "PASS: state-files"
