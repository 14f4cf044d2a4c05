#!/bin/sh
# Builds the tiny test guest (tests/guest/README.md) from Debian packages only, unprivileged:
# no mount, no loop devices, no mknod. Writes OUTDIR/{vmlinux,initrd.img,disk.qcow2,cmdline}.
# usage: build.sh OUTDIR [CACHEDIR]   (env: SLATE_AGENT=path of the test guest's static slate-agent,
#        SLATE_GUEST_KERNEL_PKG=linux-image-… to pin a kernel package)
set -eu

die() { echo "tests/guest/build.sh: $*" >&2; exit 1; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: build.sh OUTDIR [CACHEDIR]"
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
cache=${2:-$out/../cache}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
agent=${SLATE_AGENT:-$out/../slate-agent-testdesk}
[ -x "$agent" ] || die "$agent: no test guest agent (run make first, or set SLATE_AGENT)"
file -b "$agent" 2>/dev/null | grep -q 'statically linked' || [ -z "$(command -v file)" ] ||
        die "$agent: not statically linked"
for tool in apt-get apt-cache dpkg-deb xz cpio gzip mkfs.ext4 qemu-img modprobe depmod; do
        command -v "$tool" >/dev/null 2>&1 ||
                die "$tool not found: install the Debian packages apt, dpkg, xz-utils, cpio, gzip, e2fsprogs, qemu-utils, kmod"
done

# apt-get download writes into its current directory (which must be writable).
fetch() { # package
        deb=$(ls "$cache/$1"_*.deb 2>/dev/null | tail -n 1 || true)
        if [ -z "$deb" ]; then
                echo "guest: downloading $1" >&2
                (cd "$cache" && apt-get download -q "$1" >/dev/null 2>"$cache/apt.err") ||
                        die "apt-get download $1 failed: $(tail -n 1 "$cache/apt.err") (empty package lists? run apt-get update)"
                deb=$(ls "$cache/$1"_*.deb | tail -n 1)
        fi
        echo "$deb"
}

# The kernel: whatever the linux-image-amd64 metapackage points at (the newest 6.1 build).
kpkg=${SLATE_GUEST_KERNEL_PKG:-}
if [ -z "$kpkg" ]; then
        kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
                sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
        if [ -z "$kpkg" ]; then
                # Offline with empty lists: reuse the newest kernel already in the cache.
                kpkg=$(ls "$cache" 2>/dev/null | sed -n 's/^\(linux-image-6\.1\.[0-9.-]*-amd64\)_.*\.deb$/\1/p' |
                        sort -V | tail -n 1)
        fi
        [ -n "$kpkg" ] || die "cannot tell the kernel package: apt-cache knows no linux-image-amd64 (run apt-get update)"
fi
kdeb=$(fetch "$kpkg")
kver=${kpkg#linux-image-}
kroot="$cache/$kpkg"
if [ ! -f "$kroot/.done" ] || [ "$kdeb" -nt "$kroot/.done" ]; then
        echo "guest: extracting $kpkg"
        rm -rf "$kroot"
        dpkg-deb -x "$kdeb" "$kroot"
        depmod -b "$kroot" "$kver"
        touch "$kroot/.done"
fi

# PVH boot of the uncompressed vmlinux is about twice as fast under TCG as the bzImage, which
# would decompress itself in emulation. xz exits 1 on the trailing data after the payload.
vmlinuz="$kroot/boot/vmlinuz-$kver"
if [ ! -s "$out/vmlinux" ] || [ "$vmlinuz" -nt "$out/vmlinux" ]; then
        off=$(LC_ALL=C grep -abo "$(printf '\3757zXZ')" "$vmlinuz" | head -n 1 | cut -d: -f1)
        [ -n "$off" ] || die "$vmlinuz: no xz payload found"
        tail -c +$((off + 1)) "$vmlinuz" | xz -dc >"$out/vmlinux.tmp" 2>/dev/null || true
        LC_ALL=C head -c 4 "$out/vmlinux.tmp" | grep -q 'ELF' || die "$vmlinuz: extracted vmlinux is not ELF"
        mv "$out/vmlinux.tmp" "$out/vmlinux"
fi

busybox=/bin/busybox
if ! { [ -x "$busybox" ] && file -b "$busybox" 2>/dev/null | grep -q 'statically linked'; }; then
        bbdeb=$(fetch busybox-static)
        rm -rf "$cache/busybox-static"
        dpkg-deb -x "$bbdeb" "$cache/busybox-static"
        busybox="$cache/busybox-static/bin/busybox"
fi

tmp=$(mktemp -d "$out/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# busybox and its applet links (made here: the guest never runs busybox --install).
install_busybox() { # root
        mkdir -p "$1/bin" "$1/sbin" "$1/usr/bin" "$1/usr/sbin"
        cp "$busybox" "$1/bin/busybox"
        "$busybox" --list-full | while read -r applet; do
                [ -e "$1/$applet" ] || [ -L "$1/$applet" ] || ln -s /bin/busybox "$1/$applet"
        done
}

# Modules in load order, each once. Built-in ones print "builtin …" and are skipped.
modules() { # list-file module...
        list=$1
        shift
        : >"$list"
        : >"$tmp/deps"
        for m in "$@"; do
                modprobe -C /dev/null -d "$kroot" -S "$kver" --show-depends "$m" >>"$tmp/deps" ||
                        die "module $m not found in $kpkg"
        done
        awk '$1 == "insmod" && !seen[$2]++ { print $2 }' "$tmp/deps" | while read -r ko; do
                name=${ko##*/}
                # crc32c-intel needs SSE4.2, which TCG's default CPU lacks; crc32c_generic serves.
                [ "$name" = crc32c-intel.ko ] && continue
                grep -qx "$name" "$tmp/loaded" 2>/dev/null && continue
                echo "$name" >>"$tmp/loaded"
                cp "$ko" "$tmp/initrd/lib/modules/$name"
                echo "$name" >>"$list"
        done
}

# initramfs: busybox, modules, /init.
mkdir -p "$tmp/initrd/dev" "$tmp/initrd/proc" "$tmp/initrd/sys" "$tmp/initrd/newroot" "$tmp/initrd/lib/modules"
install_busybox "$tmp/initrd"
cp "$here/init.sh" "$tmp/initrd/init"
chmod 755 "$tmp/initrd/init"
# overlay: the agent merges app layers over /usr, /opt and /etc; loop: it mounts each session disk
# through a loop device over its extent of a slot disk (agent/disks.c). Debian has both as modules.
modules "$tmp/initrd/lib/modules/core.order" virtio_pci virtio_blk virtio_console ext4 overlay loop
modules "$tmp/initrd/lib/modules/display.order" bochs virtio_input evdev
(cd "$tmp/initrd" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$tmp/initrd.img"

# Disk: ext4 root with busybox, slate-agent and /sbin/init; 64 MiB, as qcow2. /etc/os-release and
# /etc/fstab make libguestfs' inspection recognise it as a Linux root (image publishing needs that).
r="$tmp/root"
mkdir -p "$r/dev" "$r/proc" "$r/sys" "$r/tmp" "$r/var/log" "$r/etc/default" "$r/root" "$r/usr/libexec/slate"
install_busybox "$r"
rm -f "$r/sbin/init"
cp "$here/rootinit.sh" "$r/sbin/init"
chmod 755 "$r/sbin/init"
echo slate-test >"$r/etc/hostname"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\n' >"$r/etc/group"
printf 'ID=slate-test\nNAME="Slate test guest"\nVERSION_ID=1\nPRETTY_NAME="Slate test guest 1"\n' >"$r/etc/os-release"
printf '/dev/vda / ext4 rw 0 1\n' >"$r/etc/fstab"
printf '127.0.0.1 localhost slate-test\n' >"$r/etc/hosts"
# The session hook the test desktop runs at each session start (README "Session hook").
mkdir -p "$r/etc/slate-test" "$r/var/tmp"
cp "$here/session-hook" "$r/etc/slate-test/session-hook"
chmod 755 "$r/etc/slate-test/session-hook"
# The agent's flags for this guest; /etc/init.d/slate-agent (installed by image publishing) reads it.
printf 'SLATE_AGENT_ARGS="--canary --test-desktop"\n' >"$r/etc/default/slate-agent"
# disk-noagent.qcow2: the same root without the agent, so a test can prove publishing installs it.
mkfs.ext4 -q -F -L slate-test -E root_owner=0:0 -d "$r" "$tmp/disk-noagent.img" 64M >/dev/null ||
        die "mkfs.ext4 -d failed"
cp "$agent" "$r/usr/libexec/slate/slate-agent"
strip "$r/usr/libexec/slate/slate-agent" 2>/dev/null || true
mkfs.ext4 -q -F -L slate-test -E root_owner=0:0 -d "$r" "$tmp/disk.img" 64M >/dev/null ||
        die "mkfs.ext4 -d failed"
qemu-img convert -q -f raw -O qcow2 "$tmp/disk.img" "$tmp/disk.qcow2"
qemu-img convert -q -f raw -O qcow2 "$tmp/disk-noagent.img" "$tmp/disk-noagent.qcow2"

# libguestfs needs a kernel for its appliance and the host may have none in /boot: the same
# Debian kernel serves (slate.conf: guestfs-kernel, guestfs-modules).
chmod 644 "$kroot/boot/vmlinuz-$kver"
{
        echo "SLATE_GUESTFS_KERNEL=$kroot/boot/vmlinuz-$kver"
        echo "SLATE_GUESTFS_MODULES=$kroot/lib/modules/$kver"
} >"$tmp/guestfs-kernel.env"

echo "console=tty0 root=/dev/vda rw quiet panic=-1 cryptomgr.notests" >"$tmp/cmdline"
mv "$tmp/initrd.img" "$out/initrd.img"
mv "$tmp/disk.qcow2" "$out/disk.qcow2"
mv "$tmp/disk-noagent.qcow2" "$out/disk-noagent.qcow2"
mv "$tmp/guestfs-kernel.env" "$out/guestfs-kernel.env"
mv "$tmp/cmdline" "$out/cmdline"
echo "guest: $out ($kpkg, initrd $(du -k "$out/initrd.img" | cut -f1) KiB)"
