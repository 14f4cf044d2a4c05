#!/usr/bin/env bash
# Section: the block store for profile disks (streaming/store.c) beside restic, borgbackup and
# casync from Debian, on the same 1 GiB ext4 images in the same run: initial backup, the
# small-edit incremental, replication of each repository to a second location (all of it, and the
# update the incremental adds), a separately built file system of the same files, restore; then 20
# users sharing most of their files (Slate only). One run of each (the issue asks for one run).
# Everything lives in one temp dir under BENCH_DISK_DIR, removed on exit; no mount, no loop device.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail

B=${SLATE_BUILDDIR:?set by bench/run}
BS=$B/bench/bench_store
USERS=20

skip() { echo "$*" >&2; exit 77; }
[ -x "$BS" ] || skip "bench_store not built (make bench builds it)"
for t in mkfs.ext4 debugfs e2fsck; do
        command -v $t >/dev/null || skip "$t not installed (apt-get install e2fsprogs)"
done
for t in restic:restic borg:borgbackup casync:casync rsync:rsync jq:jq; do
        command -v "${t%%:*}" >/dev/null || skip "${t%%:*} not installed (apt-get install ${t#*:}; ./bootstrap deps)"
done

T=$(mktemp -d "${BENCH_DISK_DIR:-/var/tmp}/slate-bench-store.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
fail() {
        echo "50-store: $*" >&2
        exit 1
}
busy() { echo "load $(cut -d' ' -f1-3 /proc/loadavg)"; }
busy_start=$(busy)

export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$T/cache/restic
export BORG_PASSPHRASE=bench BORG_BASE_DIR=$T/cache/borg BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
# As profile_disk_create makes a profile disk (streaming/profile.c), filled from a directory.
make_image() { # IMAGE TREE ROOT_OWNER
        rm -f "$1"
        truncate -s 1G "$1"
        mkfs.ext4 -q -F -t ext4 -b 4096 -m 0 -E "lazy_itable_init=0,lazy_journal_init=0,root_owner=$3" \
                -L slate-home -d "$2" "$1" || fail "mkfs.ext4 -d $2 failed"
}
bytes() { du -sb "$1" | cut -f1; }
kv() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p"; } # FILE KEY: a value from key=value output

# timed ROW STEP DIR COMMAND...: syncs, then runs COMMAND under `bench_store time` (wall, CPU =
# user + sys, peak RSS of the process), and the growth of DIR (du -sb, the repository or store), into
# $T/r/ROW.STEP as "wall_ms cpu_ms rss_kib added_bytes"; its stdout into $T/r/ROW.STEP.out.
mkdir -p "$T/r"
timed() {
        local row=$1 step=$2 dir=$3 before=0
        shift 3
        [ -z "$dir" ] || [ ! -e "$dir" ] || before=$(bytes "$dir")
        sync # the last run's (or copy's) writeback is not this one's to pay (an fsync would wait for it)
        "$BS" time -o "$T/r/t" -- "$@" >"$T/r/$row.$step.out" 2>"$T/r/$row.$step.err" ||
                fail "$row $step: $* failed: $(tail -3 "$T/r/$row.$step.err")"
        local added=0
        [ -z "$dir" ] || added=$(($(bytes "$dir") - before))
        read -r w c m _ <"$T/r/t"
        echo "$w $c $m $added" >"$T/r/$row.$step"
}
field() { cut -d' ' -f"$3" "$T/r/$1.$2"; } # ROW STEP N (1 wall 2 cpu 3 rss 4 added)

# ---- the workload: ~590 MB of files, half compressible (bench_store files: 4 bits a byte) ----
tree=$T/tree
mkdir -p "$tree/Documents" "$tree/Videos" "$tree/Pictures" "$tree/AppData" "$tree/Files"
"$BS" file "$tree/Documents/mail.pst" 1 24M text
"$BS" file "$tree/Videos/a.mp4" 2 64M random
"$BS" file "$tree/Videos/b.mp4" 3 64M random
for i in 1 2 3; do "$BS" file "$tree/Pictures/p$i.zip" "1$i" 32M random; done
for i in 1 2 3 4; do "$BS" file "$tree/AppData/cache$i.db" "2$i" 16M text; done
"$BS" file "$tree/AppData/app.log" 30 8K text
"$BS" files "$tree/Files/medium" 40 100 256K 2M
"$BS" files "$tree/Files/small" 41 8000 1K 100K
tree_bytes=$(bytes "$tree")
tree_files=$(find "$tree" -type f | wc -l)

img=$T/img
mkdir -p "$img"
make_image "$img/before.img" "$tree" 0:0

# The edit, written into a copy as a guest would leave it (no mount here: debugfs and dd on the
# image): 4 KiB overwritten in place in the middle of the 24 MB file (its block found with
# debugfs bmap, written with dd) and its mtime set; 100 KB appended to the 8 KiB app.log (debugfs
# rm + write of the longer file: its first 8 KiB are rewritten too); a 1 MB file added.
cp --sparse=always "$img/before.img" "$img/after.img"
blk=$(debugfs -R "bmap /Documents/mail.pst 3000" "$img/after.img" 2>/dev/null)
[ "${blk:-0}" -gt 0 ] || fail "debugfs bmap found no block in mail.pst"
"$BS" file "$T/edit.bin" 100 4096 text
dd if="$T/edit.bin" of="$img/after.img" bs=4096 seek="$blk" conv=notrunc status=none
debugfs -R "dump /AppData/app.log $T/log.old" "$img/after.img" 2>/dev/null
"$BS" file "$T/log.add" 101 100K text
cat "$T/log.old" "$T/log.add" >"$T/log.new"
"$BS" file "$T/new.bin" 102 1M text
cat >"$T/edit.cmds" <<CMDS
set_inode_field /Documents/mail.pst mtime 20261207120000
cd /AppData
rm app.log
write $T/log.new app.log
cd /Documents
write $T/new.bin report-new.bin
CMDS
debugfs -w -f "$T/edit.cmds" "$img/after.img" >"$T/edit.log" 2>&1 || fail "debugfs edit: $(tail -3 "$T/edit.log")"
e2fsck -fn "$img/after.img" >"$T/fsck.log" 2>&1 || fail "the edited image does not check: $(tail -3 "$T/fsck.log")"

# Separately built: the same files plus 5 MB of others that come first, another root owner.
tree2=$T/tree2
mkdir -p "$tree2"
"$BS" files "$tree2/0-extra" 50 40 16K 512K
cp -al "$tree"/* "$tree2/"
make_image "$img/second.img" "$tree2" 1000:1000

# The ideal: blocks that differ at the same offset (incremental: what a dirty bitmap reports), or
# blocks no earlier image had (initial, separately built); each zstd -1 compressed on its own.
"$BS" diff "$img/before.img" "$img/after.img" --extents "$T/dirty.txt" --granularity 64K >"$T/diff.out"
"$BS" ideal --seen "$T/seen" "$img/before.img" >"$T/ideal.initial"
"$BS" ideal --seen "$T/seen" "$img/after.img" >"$T/ideal.after"
"$BS" ideal --seen "$T/seen" "$img/second.img" >"$T/ideal.second"
"$BS" diff "$img/before.img" "$img/second.img" >"$T/diff.second"
ideal_initial=$(kv "$T/ideal.initial" ideal_bytes)
ideal_inc=$(kv "$T/diff.out" ideal_bytes)
ideal_second=$(kv "$T/ideal.second" ideal_bytes)

# ---- the runs: each step for every tool in turn, on the same file ----
maps=(1024 256)
rows=()
for m in "${maps[@]}"; do rows+=("slate$m"); done
rows+=(restic borg casync)
work=$T/work
mkdir -p "$work" "$T/casync/store"
restic -q -r "$T/restic" init --repository-version 2 >"$T/restic.init" 2>&1 || fail "restic init: $(tail -2 "$T/restic.init")"
borg init -e repokey-blake2 "$T/borg" >"$T/borg.init" 2>&1 || fail "borg init: $(tail -2 "$T/borg.init")"
step() { # STEP IMAGE_IN_WORK SLATE_NAME SLATE_ARGS...
        local s=$1 f=$2 name=$3 m
        shift 3
        for m in "${maps[@]}"; do
                timed "slate$m" "$s" "$T/slate$m" "$BS" backup "$T/slate$m" "$name" "$f" --map-blocks "$m" "$@"
        done
        timed restic "$s" "$T/restic" restic -q -r "$T/restic" backup "$f"
        timed borg "$s" "$T/borg" borg create --compression zstd,1 "$T/borg::$s" "$f"
        timed casync "$s" "$T/casync" casync make --store="$T/casync/store" "$T/casync/$s.caibx" "$f"
}
# Replication to a second location (another directory on the same disk), each tool as its users
# would: Slate `bench_store replicate` (store_replicate: the packs the replica lacks, whole, then the
# version files); restic `copy` into a repository made with `init --copy-chunker-params` (not
# timed); borg and casync: rsync of the repository or store directory (casync: with its .caibx
# indexes). Every one writes its files durably (restic and Slate fsync; rsync --fsync).
export RESTIC_FROM_PASSWORD=bench
replicate() { # STEP DEST
        local s=$1 d=$T/$2 m
        mkdir -p "$d"
        for m in "${maps[@]}"; do
                timed "slate$m" "$s" "$d/slate$m" "$BS" replicate "$T/slate$m" "$d/slate$m"
        done
        if [ ! -e "$d/restic" ]; then
                restic -q -r "$d/restic" init --repository-version 2 --copy-chunker-params --from-repo "$T/restic" \
                        >"$T/restic.init2" 2>&1 || fail "restic init --copy-chunker-params: $(tail -2 "$T/restic.init2")"
        fi
        timed restic "$s" "$d/restic" restic -q -r "$d/restic" copy --from-repo "$T/restic"
        timed borg "$s" "$d/borg" rsync -a --delete --fsync --stats "$T/borg/" "$d/borg/"
        timed casync "$s" "$d/casync" rsync -a --delete --fsync --stats "$T/casync/" "$d/casync/"
}
# The image is read from the page cache by every tool (copied just before).
cp --sparse=always "$img/before.img" "$work/profile.img"
step initial "$work/profile.img" u
replicate rep-initial upd
cp --sparse=always "$img/after.img" "$work/profile.img"
step incremental "$work/profile.img" u --parent 1 --dirty "$T/dirty.txt"
# The update (the second location already had the initial backup) first, then all of it to a new one.
replicate rep-update upd
replicate rep-first first
# The replicas hold what was sent: the updated one restores (Slate) or lists both backups.
for m in "${maps[@]}"; do
        "$BS" restore "$T/upd/slate$m" u 2 "$T/upd/p.img" >/dev/null 2>"$T/rep.err" ||
                fail "slate$m: the replica does not restore: $(tail -2 "$T/rep.err")"
        cmp -s "$T/upd/p.img" "$img/after.img" || fail "slate$m: the replica restores another image"
        rm -f "$T/upd/p.img"
done
n=$(restic -q -r "$T/upd/restic" snapshots --json 2>"$T/rep.err" | jq length) || fail "restic replica: $(tail -2 "$T/rep.err")"
[ "$n" = 2 ] || fail "restic replica: $n snapshots, not 2"
n=$(borg list --short "$T/upd/borg" 2>"$T/rep.err" | wc -l)
[ "$n" = 2 ] || fail "borg replica: $n archives, not 2: $(tail -2 "$T/rep.err")"
[ -s "$T/upd/casync/incremental.caibx" ] || fail "casync replica: no incremental.caibx"
rm -rf "$T/upd" "$T/first"
cp --sparse=always "$img/second.img" "$work/second.img"
step second "$work/second.img" u2

# Restore of the incremental version, synced, checked against the image; the disk's speed is
# dd of the same image (sparse: the same blocks written; and all of it).
out=$T/restore
restored() { # ROW FILE
        cmp -s "$2" "$img/after.img" || fail "$1: the restored image differs from the edited one"
        rm -rf "$out"
}
# Three rounds, every tool once a round (so each meets the same state of the page cache and of
# this shared VM), and the run with the median wall time kept: one run of a restore on this VM
# varied by 1.5x (a first write into fresh memory is slow here).
restores() { # ROUND
        local k=$1 m
        for m in "${maps[@]}"; do
                mkdir -p "$out"
                timed "slate$m" "restore$k" "" "$BS" restore "$T/slate$m" u 2 "$out/p.img"
                restored "slate$m" "$out/p.img"
        done
        mkdir -p "$out"
        timed restic "restore$k" "" sh -c 'restic -q -r "$0" restore latest --path "$1" --target "$2" && sync "$2$1"' \
                "$T/restic" "$work/profile.img" "$out"
        restored restic "$out$work/profile.img"
        mkdir -p "$out"
        timed borg "restore$k" "" sh -c 'cd "$1" && borg extract --sparse "$0::incremental" && sync "$1$2"' \
                "$T/borg" "$out" "$work/profile.img"
        restored borg "$out$work/profile.img"
        mkdir -p "$out"
        timed casync "restore$k" "" sh -c 'casync extract --store="$0/store" "$0/incremental.caibx" "$1" && sync "$1"' \
                "$T/casync" "$out/p.img"
        restored casync "$out/p.img"
        mkdir -p "$out"
        timed dd-sparse "restore$k" "" dd if="$img/after.img" of="$out/p.img" bs=4M conv=sparse,fsync status=none
        rm -rf "$out" && mkdir -p "$out"
        timed dd-all "restore$k" "" dd if="$img/after.img" of="$out/p.img" bs=4M conv=fsync status=none
        rm -rf "$out"
}
for k in 1 2 3; do restores "$k"; done
for r in "${maps[@]/#/slate}" restic borg casync dd-sparse dd-all; do
        sort -n "$T/r/$r.restore1" "$T/r/$r.restore2" "$T/r/$r.restore3" | sed -n 2p >"$T/r/$r.restore"
        w=$(cut -d' ' -f1 "$T/r/$r.restore")
        for k in 1 2 3; do        # the median run's output too (open_ms)
                [ "$(cut -d' ' -f1 "$T/r/$r.restore$k")" = "$w" ] && cp "$T/r/$r.restore$k.out" "$T/r/$r.restore.out" && break
        done
done

# ---- a logout as slated backs it up: the profile an encrypted qcow2 with its dirty bitmap ----
# bench_store profile does what broker/backup.c does (qemu-nbd serves the closed disk, the bitmap
# names the changed blocks, store_backup with the store already open, qemu-img clears the bitmap),
# each part timed. The edit (the 290 changed blocks) is written with qemu-io as QEMU would: the
# bitmap records it. Five logouts, each writing the same blocks again.
LOGOUTS=5
logout_ok=
if command -v qemu-io >/dev/null && command -v qemu-nbd >/dev/null; then
        key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
        printf '%s' "$key" >"$T/pass"
        sec="secret,id=sec0,file=$T/pass,format=raw"
        opts="driver=qcow2,file.driver=file,file.filename=$T/profile.qcow2,encrypt.key-secret=sec0"
        # Retried: qemu-img's LUKS benchmark fails now and then under load (see imaging/qemu_img.c).
        for i in $(seq 40); do
                qemu-img convert -O qcow2 --object "$sec" -o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 \
                        "$img/before.img" "$T/profile.qcow2" 2>/dev/null && break
                [ "$i" -lt 40 ] || fail "qemu-img convert to an encrypted qcow2"
                sleep 0.05
        done
        qemu-img bitmap --object "$sec" --image-opts "$opts" --add slate-backup -g 4096 || fail "qemu-img bitmap --add"
        "$BS" profile "$T/logout" u "$T/profile.qcow2" "$key" >"$T/r/logout.0" || fail "bench_store profile (full)"
        "$BS" diff "$img/before.img" "$img/after.img" --extents "$T/ext4k" --granularity 4K >/dev/null
        edit=()
        i=0
        while read -r off len; do
                dd if="$img/after.img" of="$T/e$i" bs=4096 skip=$((off / 4096)) count=$((len / 4096)) status=none
                edit+=(-c "write -s $T/e$i $off $len")
                i=$((i + 1))
        done <"$T/ext4k"
        for k in $(seq 1 $LOGOUTS); do
                qemu-io --object "$sec" --image-opts "$opts" "${edit[@]}" >/dev/null || fail "qemu-io edit"
                sync
                "$BS" profile "$T/logout" u "$T/profile.qcow2" "$key" --parent "$k" >"$T/r/logout.$k" ||
                        fail "bench_store profile (logout $k)"
        done
        rm -f "$T/restore.img"
        "$BS" restore "$T/logout" u $((LOGOUTS + 1)) "$T/restore.img" >/dev/null || fail "the logout store does not restore"
        cmp -s "$T/restore.img" "$img/after.img" || fail "the last logout's version is not the edited image"
        rm -rf "$T/restore.img" "$T/profile.qcow2" "$T"/e[0-9]*
        logout_ok=1
        logout_med() { for k in $(seq 1 $LOGOUTS); do kv "$T/r/logout.$k" "$1"; done | sort -n |
                awk '{ v[NR] = $1 } END { printf "%.0f", v[int((NR + 1) / 2)] }'; }
fi

# ---- 20 users: the same ~330 MB of files (Documents, AppData, Files) and ~4 MB of their own ----
users_maps=(1024 256)
for i in $(seq 1 $USERS); do
        u=$T/user
        rm -rf "$u"
        mkdir -p "$u"
        cp -al "$tree/Documents" "$tree/AppData" "$tree/Files" "$u/"
        "$BS" files "$u/Desktop" $((2000 + i)) 30 16K 512K
        make_image "$img/user.img" "$u" "$((1000 + i)):$((1000 + i))"
        "$BS" ideal --seen "$T/users.seen" "$img/user.img" >"$T/r/user$i.ideal"
        for m in "${users_maps[@]}"; do
                timed "users$m" "$i" "$T/users$m" "$BS" backup "$T/users$m" "user$i" "$img/user.img" --map-blocks "$m"
        done
done
rm -f "$img/user.img"

# ---- the tables ----
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
kb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1e3 }'; }
s() { awk -v m="$1" 'BEGIN { printf (m < 1000 ? "%.2f" : "%.1f"), m / 1000 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
x() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }
rate() { awk -v m="$1" 'BEGIN { printf "%.0f", 1024 / (m / 1000) }'; } # MiB/s of the 1 GiB disk
label() {
        case $1 in
        slate*) echo "Slate, map ${1#slate}" ;;
        restic) echo "restic $(restic version | cut -d' ' -f2)" ;;
        borg) echo "borg $(borg --version | cut -d' ' -f2)" ;;
        casync) echo "casync $(casync --version | sed -n 's/^casync //p' | head -1)" ;;
        esac
}
wc_() { echo "$(s "$(field "$1" "$2" 1)") / $(s "$(field "$1" "$2" 2)")"; }
row() {
        local r=$1
        echo "| $(label "$r") | $(wc_ "$r" initial) | $(mib "$(field "$r" initial 3)") | $(mb "$(field "$r" initial 4)") |" \
                "$(x "$(field "$r" initial 4)" "$ideal_initial") |" \
                "$(wc_ "$r" incremental) | $(mib "$(field "$r" incremental 3)") | $(kb "$(field "$r" incremental 4)") |" \
                "$(x "$(field "$r" incremental 4)" "$ideal_inc") |" \
                "$(wc_ "$r" second) | $(mb "$(field "$r" second 4)") | $(x "$(field "$r" second 4)" "$ideal_second") |" \
                "$(wc_ "$r" restore) | $(rate "$(field "$r" restore 1)") |"
}
changed=$(kv "$T/diff.out" changed_blocks)
moved=$(kv "$T/diff.second" changed_blocks)
cat <<MD
## Block store: profile-disk backups beside restic, borg and casync

Workload: a 1 GiB ext4 image made as Slate makes a profile disk (\`mkfs.ext4 -b 4096 -m 0 -E
lazy_itable_init=0,lazy_journal_init=0\` on a sparse file), filled with \`mkfs.ext4 -d\` from $tree_files
files, $(mb "$tree_bytes") MB: a 24 MB mail file, 2 × 64 MB + 3 × 32 MB incompressible, 4 × 16 MB + 8
KiB compressible, 100 files of 256 KiB–2 MiB and 8,000 of 1–100 KiB (log-uniform sizes; half of the
files compressible: zstd -1 keeps ~52 %, half not); deterministic content (\`bench_store files\`).
**Incremental**: the edit written into the image without mounting it: 4 KiB overwritten in the middle
of the 24 MB file (its block from \`debugfs bmap\`, written with dd) and its mtime set; 100 KB
appended to an 8 KiB log (debugfs \`rm\` + \`write\` of the longer file, so its first 8 KiB are
written again); a 1 MB file added (debugfs \`write\`). **$changed blocks** differ from the first
image (data, bitmaps, inode and directory blocks, group descriptors, superblock and its backups,
which debugfs rewrites; no journal blocks, which a kernel would also write). Slate is handed them
as dirty extents rounded out to 64 KiB (QEMU's default dirty-bitmap granularity) and the first
version as parent; the other tools read the whole image again (they have no dirty bitmap).
**Separately built**: the same files plus 5.3 MB of others, \`mkfs.ext4 -d\` again with another root
owner: $moved of its blocks differ from the first image at the same offset; backed up after the
others into the same repository, no parent (Slate: a full read, dedup by block).
**Ideal**: the blocks no earlier version had (initial, separately built; distinct, zeros free), or
those that differ (incremental), each compressed alone with zstd -1; bytes added = growth of the
repository or store directory (\`du -sb\`: chunks, indexes, version files, snapshots).
Tools: restic repository v2 (encrypted, zstd \`auto\`), \`borg create --compression zstd,1\`
(\`repokey-blake2\`), casync blob mode (\`casync make\`, zstd chunks, **not encrypted**), Slate
\`store_backup\` (zstd -1 + AES-256-GCM per 4 KiB block) through \`bench/bench_store\`, one process
per backup (its time includes opening the store). Wall and CPU (user + sys) in s, peak RSS of the
process (MiB), all from wait4 around the process (\`bench_store time\`). The images are read from
the page cache (copied just before). Restore = the incremental version to a new file in
${BENCH_DISK_DIR:-/var/tmp}, synced (\`sync FILE\`; Slate fsyncs), checked with cmp against the edited
image; MiB/s of the 1 GiB disk; three rounds of every tool, the median run shown. One run of each
backup (BENCH_N not used). At start: $busy_start.

| tool | initial: wall / CPU s | peak RSS MiB | added MB | × ideal | incremental: wall / CPU s | peak RSS MiB | added KB | × ideal | separately built: wall / CPU s | added MB | × ideal | restore: wall / CPU s | MiB/s |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| ideal | | | $(mb "$ideal_initial") | 1.00× | | | $(kb "$ideal_inc") | 1.00× | | $(mb "$ideal_second") | 1.00× | | |
MD
for r in "${rows[@]}"; do row "$r"; done
echo "| dd bs=4M conv=sparse,fsync (the disk's speed, same blocks written) |$(printf ' |%.0s' $(seq 12)) $(wc_ dd-sparse restore) | $(rate "$(field dd-sparse restore 1)") |"
echo "| dd bs=4M conv=fsync (all 1 GiB written) |$(printf ' |%.0s' $(seq 12)) $(wc_ dd-all restore) | $(rate "$(field dd-all restore 1)") |"

cat <<MD

Slate's blocks per map (\`store_set_map_blocks\`; 1024 is the default): a map describes that many
blocks as runs of (blocks, pack number, first entry), 12 bytes a run: blocks consecutive on the disk
held by consecutive entries of one pack (pack 0: zeros). The runs are zstd-compressed and sealed
as a chunk, like a data block. A changed block is stored in the backup's new pack and splits the run
it falls in, so its map is written again (a few runs, not a list of ids); the maps of untouched
regions are the parent's. The version file names every map by its 32-byte id (256 maps at 1024
blocks, 1024 at 256), with a header and an HMAC. In-call = \`store_backup\` alone; open = \`store_open\`
(it reads every pack's index); restore open = the same for the restore's process.

| map | version file | incremental: added (chunks only) | maps rewritten | in-call ms | open ms | blocks read | separately built: chunks added | of which maps | restore: open ms |
|---|---|---|---|---|---|---|---|---|---|
MD
data_chunks() { echo $(($(kv "$1" blocks_read) - $(kv "$1" zero_blocks) - $(kv "$1" dup_blocks))); }
for m in "${maps[@]}"; do
        o=$T/r/slate$m.incremental.out
        o2=$T/r/slate$m.second.out
        echo "| $m | $(kv "$o" version_bytes) B | $(kb "$(kv "$o" new_bytes)") KB |" \
                "$((262144 / m - $(kv "$o" maps_reused))) of $((262144 / m)) | $(kv "$o" backup_ms) | $(kv "$o" open_ms) |" \
                "$(kv "$o" blocks_read) | $(kv "$o2" new_chunks) | $(($(kv "$o2" new_chunks) - $(data_chunks "$o2"))) |" \
                "$(kv "$T/r/slate$m.restore.out" open_ms) |"
done

# Replication
sent() { # ROW STEP: the bytes the tool sent (Slate: bytes_sent, the packs; rsync: Total bytes sent),
        # or the growth of the destination where the tool does not say (restic)
        local o=$T/r/$1.$2.out
        case $1 in
        slate*) kv "$o" bytes_sent ;;
        borg | casync) sed -n 's/^Total bytes sent: //p' "$o" | tr -d , ;;
        *) field "$1" "$2" 4 ;;
        esac
}
cat <<MD

### Replication to a second location

After the initial backup and the incremental, each repository is copied to a new directory on
the same disk (**first replication**: everything). **Update**: a second location that got the
initial backup (replicated right after it) is brought up to date after the incremental; only that
second replication is measured. Slate: \`bench_store replicate\` (\`store_replicate\`: the packs the
replica lacks, whole, each fsync'd, then the version files; sent = its \`bytes_sent\`, the packs
alone); restic: \`restic copy\` into a repository made with \`restic init --copy-chunker-params\`
(the init not counted; restic decrypts and encrypts again, and prints no byte count: sent = the
destination's growth); borg and casync: \`rsync -a --delete --fsync --stats\` of the repository (casync:
its store and .caibx indexes; sent = rsync's "Total bytes sent", a local copy sends whole files).
Destination = its growth (\`du -sb\`). Wall = the process (Slate's includes opening the store). The
replicas are checked: the updated Slate replica restores the edited image (cmp), the restic and
borg replicas list both backups.

| tool | first replication: sent MB | destination MB | wall s | update after the small edit: sent KB | destination grew KB | wall s | update sent ÷ incremental added |
|---|---|---|---|---|---|---|---|
MD
for r in "${rows[@]}"; do
        echo "| $(label "$r") | $(mb "$(sent "$r" rep-first)") | $(mb "$(field "$r" rep-first 4)") | $(s "$(field "$r" rep-first 1)") |" \
                "$(kb "$(sent "$r" rep-update)") | $(kb "$(field "$r" rep-update 4)") | $(s "$(field "$r" rep-update 1)") |" \
                "$(x "$(sent "$r" rep-update)" "$(field "$r" incremental 4)") |"
done

# 20 users
echo
if [ -n "$logout_ok" ]; then
        cat <<MD
### A logout's backup as slated runs it

The same 1 GiB image as an encrypted qcow2 (LUKS, as slated makes profile disks) with the dirty
bitmap \`slate-backup\` (4 KiB granularity); the edit's $(kv "$T/diff.out" changed_blocks) changed blocks written with qemu-io, so the bitmap
records them as QEMU would; then \`bench_store profile\`, which runs what slated's logoff step
\`profile-backup\` runs, with the store open (slated keeps it): qemu-nbd started on the closed
disk (the key on a pipe), the bitmap's extents read with libnbd, \`store_backup\` of those blocks
(pack and version fsync'd), qemu-img clearing the bitmap. $LOGOUTS logouts, median ms (each
writes the same blocks again, so each reads $(kv "$T/r/logout.1" blocks_read) blocks). The full first backup of
the qcow2 (no parent: the allocated blocks) took $(s "$(kv "$T/r/logout.0" logout_ms)") s. The last version restores to the edited image, byte for byte.

| qemu-nbd up | bitmap extents | store_backup | bitmap cleared | logout backup, all | opening the store (once, in slated) |
|---|---|---|---|---|---|
| $(logout_med nbd_open_ms) | $(logout_med extents_ms) | $(logout_med backup_ms) | $(logout_med bitmap_ms) | **$(logout_med logout_ms)** | $(kv "$T/r/logout.1" store_open_ms) |

MD
fi
echo "### $USERS users sharing most of their files"
echo
cat <<MD
Each user's 1 GiB image: the same Documents, AppData and Files (~330 MB, hard links to one tree) and
30 files of their own (16–512 KiB, ~4 MB), \`mkfs.ext4 -d\` with their own root owner; backed up one
after another into one store per map size, no parent. Ideal = blocks no earlier user had, zstd -1.

| map | user 1 added MB (ideal) | users 2–$USERS: added per user, median / max MB | ideal per user, median MB | × ideal, median / max | store after $USERS users | the $USERS images' data | backup wall per user, median s |
|---|---|---|---|---|---|---|---|
MD
med() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
mx() { sort -n | tail -1; }
for m in "${users_maps[@]}"; do
        for i in $(seq 2 $USERS); do
                echo "$(field "users$m" "$i" 4) $(kv "$T/r/user$i.ideal" ideal_bytes) $(field "users$m" "$i" 1)"
        done >"$T/r/u$m.rest"
        data=0
        for i in $(seq 1 $USERS); do data=$((data + $(kv "$T/r/user$i.ideal" nonzero_blocks) * 4096)); done
        a_med=$(cut -d' ' -f1 "$T/r/u$m.rest" | med)
        a_max=$(cut -d' ' -f1 "$T/r/u$m.rest" | mx)
        i_med=$(cut -d' ' -f2 "$T/r/u$m.rest" | med)
        r_med=$(awk '{ printf "%.4f\n", $1 / $2 }' "$T/r/u$m.rest" | med)
        r_max=$(awk '{ printf "%.4f\n", $1 / $2 }' "$T/r/u$m.rest" | mx)
        w_med=$(cut -d' ' -f3 "$T/r/u$m.rest" | med)
        echo "| $m | $(mb "$(field "users$m" 1 4)") ($(mb "$(kv "$T/r/user1.ideal" ideal_bytes)")) | $(mb "$a_med") / $(mb "$a_max") | $(mb "$i_med") | $(printf '%.2f× / %.2f×' "$r_med" "$r_max") | $(mb "$(bytes "$T/users$m")") MB | $(mb "$data") MB | $(s "$w_med") |"
done

cat <<MD

MD
# ---- the goals, read off the figures above ----
verdict() { awk -v v="$1" -v lim="$2" 'BEGIN { print (v <= lim ? "met" : "**not met**") }'; }
echo "Goals (the issue's):"
echo
for m in "${maps[@]}"; do
        ri=$(awk -v a="$(field "slate$m" incremental 4)" -v b="$ideal_inc" 'BEGIN { printf "%.2f", a / b }')
        rs=$(awk -v a="$(field "slate$m" second 4)" -v b="$ideal_second" 'BEGIN { printf "%.2f", a / b }')
        echo "- bytes added within 1.1× the ideal, map $m: incremental ${ri}× ($(verdict "$ri" 1.1)), separately built ${rs}× ($(verdict "$rs" 1.1))."
done
for m in "${maps[@]}"; do
        w=$(field "slate$m" incremental 1)
        c=$(kv "$T/r/slate$m.incremental.out" backup_ms)
        echo "- incremental of the 1 GiB profile under 0.2 s, map $m: $(s "$w") s for the process ($(verdict "$w" 200)), of which store_backup $(s "$c") s ($(verdict "$c" 200)) and opening the store $(s "$(kv "$T/r/slate$m.incremental.out" open_ms)") s. slated keeps the store open, so a logout's backup pays the in-call time only."
done
if [ -n "$logout_ok" ]; then
        l=$(logout_med logout_ms)
        echo "- a logout's incremental backup of the 1 GiB profile, as slated runs it (qemu-nbd, the bitmap, store_backup, the bitmap cleared; the store open): $(s "$l") s, median of $LOGOUTS ($(verdict "$l" 200))."
fi
dd=$(field dd-sparse restore 1)
for m in "${maps[@]}"; do
        r=$(field "slate$m" restore 1)
        q=$(awk -v a="$r" -v b="$dd" 'BEGIN { printf "%.2f", a / b }')
        echo "- restore at disk speed (read here: within 1.25× the time of dd writing the same blocks), map $m: $(s "$r") s for the process against $(s "$dd") s, ${q}× ($(verdict "$q" 1.25)); of which opening the store $(s "$(kv "$T/r/slate$m.restore.out" open_ms)") s."
done
for m in "${maps[@]}"; do
        a=$(field "slate$m" incremental 4)
        b=$(sent "slate$m" rep-update)
        q=$(awk -v a="$b" -v b="$a" 'BEGIN { printf "%.2f", a / b }')
        ok=$(awk -v q="$q" 'BEGIN { print (q >= 0.9 && q <= 1.1 ? "met" : "**not met**") }')
        echo "- replication of the update sends what the incremental added (read here: within ±10 %), map $m: $(kb "$b") KB of packs sent for $(kb "$a") KB added, ${q}× ($ok); the replica grew $(kb "$(field "slate$m" rep-update 4)") KB with the version file; in $(s "$(field "slate$m" rep-update 1)") s. Everything: $(mb "$(sent "slate$m" rep-first)") MB in $(s "$(field "slate$m" rep-first 1)") s."
done
echo
echo "At the end of the section: $(busy)."
echo
