#!/usr/bin/env bash
# Test fixture for the app capture engine (imaging/capture.c): a minimal Debian 12 golden image
# with apt and dpkg, plus the .deb of GNU hello, built once from the host's Debian apt sources
# and cached. Never touches the host's own system: everything happens under OUTDIR and CACHEDIR.
#
# usage: build-debian-min.sh OUTDIR [CACHEDIR]
#   OUTDIR    gets disk.qcow2 (ext4 on the whole disk, inspectable by libguestfs), debs/hello_*.deb
#   CACHEDIR  keeps the bootstrapped root tree (default OUTDIR/../cache)
# Exit 0 when OUTDIR is complete (built now or before), 1 otherwise (no network and no cache...).
#
# The image keeps its apt package lists (mmdebstrap --skip=cleanup/apt/lists) and hello's .deb
# is downloaded against those same lists: a capture offered debs/ then needs no mirror at all
# (capture.c skips apt-get update when it is given debs and the image has lists), so the test
# runs offline after the first build.
set -euo pipefail

[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '5,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd)
cache=$(mkdir -p "${2:-$out/../cache}" && cd "${2:-$out/../cache}" && pwd)
suite=bookworm
# The package the test captures: an executable, no dependencies beyond libc6.
extra=hello

die() { echo "build-debian-min.sh: $*" >&2; exit 1; }
key=$( (echo "$suite" "$extra"; sha256sum <"$0") | sha256sum | cut -c1-64)
if [ "$(cat "$out/.stamp" 2>/dev/null)" = "$key" ] && [ -s "$out/disk.qcow2" ] && compgen -G "$out/debs/${extra}_*.deb" >/dev/null; then
        exit 0
fi
command -v mmdebstrap >/dev/null || die "mmdebstrap not installed (apt-get install mmdebstrap)"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 not installed (apt-get install e2fsprogs)"
command -v qemu-img >/dev/null || die "qemu-img not installed (apt-get install qemu-utils)"
[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap --mode=root, mkfs.ext4 -d with owners kept)"

# The host's Debian mirror (one-line or deb822 sources), main only: the same network as apt's.
mirror=$( { sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/\{0,1\} *$/\1/p; s/^deb \(\[[^]]*\] \)\{0,1\}\(http[^ ]*\/debian\)\/\{0,1\} .*/\2/p' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
        head -1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

tree_tar=$cache/debian-min-$key.tar
log=$cache/build.log
if [ ! -s "$tree_tar" ]; then
        rm -f "$cache"/debian-min-*.tar "$tree_tar.tmp" "$cache/$extra"_*.deb
        echo "build-debian-min.sh: mmdebstrap --variant=minbase $suite from $mirror (log: $log)" >&2
        # The .deb comes out through the hook; it is not installed in the image.
        mmdebstrap --mode=root --variant=minbase --format=tar \
                --aptopt='Acquire::Languages "none"' --skip=cleanup/apt/lists \
                --customize-hook="chroot \"\$1\" sh -c 'cd /tmp && apt-get download -q $extra' && cp \"\$1\"/tmp/${extra}_*.deb $cache/ && rm -f \"\$1\"/tmp/*.deb" \
                "$suite" "$tree_tar.tmp" "deb $mirror $suite main" >"$log" 2>&1 ||
                { tail -n 20 "$log" >&2; rm -f "$tree_tar.tmp"; die "mmdebstrap failed (whole log: $log)"; }
        mv "$tree_tar.tmp" "$tree_tar"
fi

work=$out/tree
rm -rf "$work" "$out/disk.raw"
mkdir -p "$work"
trap 'rm -rf "$work" "$out/disk.raw"' EXIT
tar -C "$work" --numeric-owner -xpf "$tree_tar"
# What libguestfs inspection looks for (besides os-release, which base-files ships).
printf '/dev/vda / ext4 rw,noatime 0 1\n' >"$work/etc/fstab"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tslate-capture-test\n' >"$work/etc/hosts"
echo slate-capture-test >"$work/etc/hostname"
used_mb=$(du -sm --apparent-size "$work" | cut -f1)
size_mb=$(( (used_mb * 12 / 10 + 512 + 255) / 256 * 256 ))
mkfs.ext4 -q -F -L capture-root -d "$work" "$out/disk.raw" "${size_mb}M"
qemu-img convert -c -O qcow2 "$out/disk.raw" "$out/disk.qcow2.tmp"
mv "$out/disk.qcow2.tmp" "$out/disk.qcow2"
chmod 0444 "$out/disk.qcow2"
rm -rf "$out/debs"
mkdir -p "$out/debs"
cp "$cache/$extra"_*.deb "$out/debs/"
echo "$key" >"$out/.stamp"
echo "build-debian-min.sh: $out/disk.qcow2 (${used_mb} MiB of files in ${size_mb} MiB), $(ls "$out/debs")" >&2
