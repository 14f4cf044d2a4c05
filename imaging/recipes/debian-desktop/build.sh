#!/usr/bin/env bash
# Golden image recipe: Debian 12 with a light Xfce desktop, built with mmdebstrap from the
# host's Debian apt sources only, for direct kernel boot by Slate (README.md in this directory).
# It never touches the host's own system: everything happens in a scratch tree under OUTDIR.
#
# usage: build.sh OUTDIR [CACHEDIR]
#   OUTDIR    gets disk.qcow2, vmlinuz, initrd.img, cmdline, manifest.txt, build.log
#   CACHEDIR  keeps the .deb downloads and the bootstrapped root tree (default OUTDIR/../cache)
# Environment: SLATE_AGENT (static slate-agent to install, default _build/agent/slate-agent),
#   SLATE_SESSION_SCRIPT (default agent/session-script), SLATE_DESKTOP_SUITE (default bookworm).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '5,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd)
cache=$(mkdir -p "${2:-$out/../cache}" && cd "${2:-$out/../cache}" && pwd)
agent=${SLATE_AGENT:-$top/_build/agent/slate-agent}
session=${SLATE_SESSION_SCRIPT:-$top/agent/session-script}
suite=${SLATE_DESKTOP_SUITE:-bookworm}
log=$out/build.log
t_start=$(date +%s)

step() { printf '[%s +%4ss] %s\n' "$(date +%T)" $(($(date +%s) - t_start)) "$*"; }
die() { echo "build.sh: $*" >&2; exit 1; }

# What goes in. No display manager: slate-agent starts the session (agent/session-script).
# xfce4-appfinder: the default panel (xfce4-panel's default.xml) has a launcher for it.
# Browser: netsurf-gtk. It is GTK 3 like Xfce, so it adds about 5 MB and no new toolkit; it
# renders CSS well enough for intranet pages. epiphany-browser pulls WebKitGTK and GStreamer
# (about 150 MB) and firefox-esr is larger still; dillo has no CSS layout worth the name.
packages=(
        systemd systemd-sysv udev dbus dbus-x11 libpam-systemd sudo procps kmod
        linux-image-amd64 initramfs-tools zstd
        xserver-xorg-core xserver-xorg-input-libinput xauth x11-xserver-utils x11-utils xcvt
        xfce4-session xfwm4 xfce4-panel xfdesktop4 xfce4-settings xfconf thunar xfce4-terminal
        xfce4-appfinder mousepad netsurf-gtk
        fonts-dejavu-core adwaita-icon-theme
)
# Kept out of the image: documentation but the copyright files (the image is redistributed),
# translations, man pages, and kernel modules a VM never loads. Removed after installation:
# dpkg's path-exclude fails on some packages here (half-excluded locale directories).
trim='cd "$1" && find usr/share/doc -xdev ! -type d ! -name copyright -delete &&
        rm -rf usr/share/man/* usr/share/info/* usr/share/help/* usr/share/gtk-doc/* usr/share/lintian/* &&
        find usr/share/locale -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} + &&
        md=usr/lib/modules && { [ -L lib ] || md=lib/modules; } &&
        for m in sound drivers/media drivers/net/wireless drivers/infiniband drivers/staging drivers/isdn \
                drivers/bluetooth drivers/gpu/drm/amd drivers/gpu/drm/nouveau drivers/gpu/drm/i915 \
                drivers/gpu/drm/radeon drivers/net/ethernet drivers/scsi drivers/iio net/bluetooth \
                net/wireless net/mac80211; do rm -rf $md/*/kernel/$m; done &&
        for k in $md/*; do chroot "$1" depmod -a "${k##*/}"; done'
# A small initramfs (virtio disk + ext4 only) boots faster under TCG than MODULES=most; it must
# be in place before linux-image's postinst runs update-initramfs.
initramfs_hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"
        printf "MODULES=list\nCOMPRESS=zstd\n" >"$1/etc/initramfs-tools/conf.d/slate.conf"
        printf "%s\n" virtio_pci virtio_blk ext4 crc32c_generic >"$1/usr/share/initramfs-tools/modules.d/slate"'
# The kernel command line: quiet text console on tty1 until Xorg takes vt7 (the session).
cmdline="root=/dev/vda rw rootfstype=ext4 quiet loglevel=3 console=tty0 vt.global_cursor_default=0 panic=-1"

command -v mmdebstrap >/dev/null || die "mmdebstrap not installed (apt-get install mmdebstrap)"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 not installed (apt-get install e2fsprogs)"
command -v qemu-img >/dev/null || die "qemu-img not installed (apt-get install qemu-utils)"
[ "$(id -u)" = 0 ] || die "run as root: the disk is made with mkfs.ext4 -d from a tree that must keep its owners"
[ -x "$agent" ] || die "$agent: no slate-agent (build it: make -C _build, or set SLATE_AGENT)"
[ -f "$session" ] || die "$session: no session script (set SLATE_SESSION_SCRIPT)"

# Two cache keys: the root tree depends on what mmdebstrap is told (suite, packages, hooks);
# the disk also on this whole script, the other recipe files and what is injected (agent,
# session script), so a configuration change only repacks the disk.
key_tree=$(printf '%s\n' "$suite" "${packages[@]}" "$trim" "$initramfs_hook" | sha256sum | cut -c1-64)
key_disk=$( (echo "$key_tree"; cd "$here" && find . -type f | LC_ALL=C sort | xargs sha256sum;
        sha256sum <"$agent"; sha256sum <"$session"; sha256sum <"$top/agent/session-ready"; echo "$cmdline") | sha256sum | cut -c1-64)
complete() {
        local f
        for f in disk.qcow2 vmlinuz initrd.img cmdline manifest.txt; do [ -s "$out/$f" ] || return 1; done
}
if [ "$(cat "$out/.stamp" 2>/dev/null)" = "$key_disk" ] && complete; then
        step "up to date: $out (recipe $(cut -c1-12 <<<"$key_disk"))"
        exit 0
fi
rm -f "$out/.stamp"
: >"$log"

# The host's Debian sources (deb822 or one-line), as one-line entries: no other network.
host_sources() {
        local f
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                [ -f "$f" ] && grep -E '^[[:space:]]*deb[[:space:]]' "$f" || true
        done
        for f in /etc/apt/sources.list.d/*.sources; do
                [ -f "$f" ] || continue
                awk 'BEGIN { RS = ""; FS = "\n" }
                {
                        t = u = s = c = k = ""
                        for (i = 1; i <= NF; i++) {
                                if ($i ~ /^Types:/) t = substr($i, 7)
                                if ($i ~ /^URIs:/) u = substr($i, 6)
                                if ($i ~ /^Suites:/) s = substr($i, 8)
                                if ($i ~ /^Components:/) c = substr($i, 12)
                                if ($i ~ /^Signed-By:/) { k = substr($i, 11); gsub(/^ +| +$/, "", k) }
                                if ($i ~ /^Enabled: *no/) t = ""
                        }
                        if (t !~ /(^| )deb( |$)/) next
                        n = split(u, us, " "); m = split(s, ss, " ")
                        for (a = 1; a <= n; a++) for (b = 1; b <= m; b++)
                                printf "deb %s %s %s %s\n", (k ~ /^\// ? "[signed-by=" k "]" : ""), us[a], ss[b], c
                }' "$f"
        done
}
sources=$cache/sources.list
host_sources | grep -E "[[:space:]]$suite(-updates|-security|/updates)?[[:space:]]" | sed 's/  */ /g' >"$sources" || true
[ -s "$sources" ] || die "no Debian $suite entry in the host's apt sources (/etc/apt/sources.list*)"

tree_tar=$cache/rootfs-$key_tree.tar
if [ -s "$tree_tar" ]; then
        step "root tree cached ($(basename "$tree_tar"))"
else
        step "mmdebstrap $suite: ${#packages[@]} packages and their dependencies from $(grep -o 'https\?://[^ ]*' "$sources" | sort -u | paste -sd' ') (log: $log)"
        mkdir -p "$cache/debs"
        rm -f "$cache"/rootfs-*.tar "$cache"/rootfs-*.tar.tmp
        mmdebstrap --mode=root --variant=minbase --format=tar \
                --include="$(IFS=,; echo "${packages[*]}")" \
                --aptopt='Acquire::Languages "none"' \
                --skip=essential/unlink \
                --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
                --setup-hook="sync-in $cache/debs /var/cache/apt/archives/" \
                --essential-hook="$initramfs_hook" \
                --customize-hook="sync-out /var/cache/apt/archives $cache/debs" \
                --customize-hook="$trim" \
                "$suite" "$tree_tar.tmp" "$sources" >>"$log" 2>&1 ||
                { tail -n 20 "$log" >&2; die "mmdebstrap failed (whole log: $log)"; }
        mv "$tree_tar.tmp" "$tree_tar"
        step "root tree: $(du -h "$tree_tar" | cut -f1) tar; $(ls "$cache/debs"/*.deb | wc -l) .debs cached in $cache/debs"
fi

work=$out/tree
rm -rf "$work" "$out/disk.raw"
mkdir -p "$work"
trap 'rm -rf "$work" "$out/disk.raw"' EXIT
step "unpacking the root tree"
tar -C "$work" --numeric-owner --xattrs --xattrs-include='*' -xpf "$tree_tar"

step "configuring: agent, session script, unit, Xorg, Xfce defaults"
install -D -m 0755 "$agent" "$work/usr/libexec/slate/slate-agent"
install -D -m 0755 "$session" "$work/usr/libexec/slate/session"
# The ready hook and the Xfce autostart entry that runs it: the agent then says USABLE.
install -D -m 0755 "$top/agent/session-ready" "$work/usr/libexec/slate/session-ready"
install -D -m 0644 "$here/slate-session-ready.desktop" "$work/etc/xdg/autostart/slate-session-ready.desktop"
install -D -m 0644 "$here/slate-agent.service" "$work/etc/systemd/system/slate-agent.service"
mkdir -p "$work/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/slate-agent.service "$work/etc/systemd/system/multi-user.target.wants/slate-agent.service"
install -D -m 0644 "$here/slate-session-prepare.service" "$work/etc/systemd/system/slate-session-prepare.service"
ln -sf /etc/systemd/system/slate-session-prepare.service \
        "$work/etc/systemd/system/multi-user.target.wants/slate-session-prepare.service"
install -D -m 0644 "$here/xorg-slate.conf" "$work/etc/X11/xorg.conf.d/10-slate.conf"
echo "slate-desktop" >"$work/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tslate-desktop\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$work/etc/hosts"
# The overlay is thrown away at logout: no fsck, no journal flushing to disk worth keeping.
printf '/dev/vda / ext4 rw,noatime,errors=remount-ro 0 0\n' >"$work/etc/fstab"
echo 'LANG=C.UTF-8' >"$work/etc/default/locale"
# Each boot is a first boot; the publish pipeline seals machine-id again, harmlessly.
: >"$work/etc/machine-id"
mkdir -p "$work/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' >"$work/etc/systemd/journald.conf.d/slate.conf"
# Nothing but the agent may log anyone in: no getty on the console the user sees over VNC.
ln -sf /dev/null "$work/etc/systemd/system/getty@tty1.service"
ln -sf /dev/null "$work/etc/systemd/system/autovt@.service"
ln -sf multi-user.target "$work/etc/systemd/system/default.target" 2>/dev/null ||
        ln -sf /lib/systemd/system/multi-user.target "$work/etc/systemd/system/default.target"
# Services a VDI desktop without network does not need; they only slow the boot under TCG.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
        systemd-timesyncd.service man-db.timer dpkg-db-backup.timer; do
        ln -sf /dev/null "$work/etc/systemd/system/$u"
done
# Xfce defaults for every new user: the default panel without the first-run question, no
# compositor (software compositing is slow without GPU), an icon theme that is installed.
xdg=$work/etc/xdg/xfce4
if [ -f "$xdg/panel/default.xml" ]; then
        install -D -m 0644 "$xdg/panel/default.xml" "$xdg/xfconf/xfce-perchannel-xml/xfce4-panel.xml"
fi
install -D -m 0644 /dev/stdin "$xdg/xfconf/xfce-perchannel-xml/xfwm4.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<channel name="xfwm4" version="1.0">
  <property name="general" type="empty">
    <property name="use_compositing" type="bool" value="false"/>
  </property>
</channel>
EOF
if [ -f "$xdg/xfconf/xfce-perchannel-xml/xsettings.xml" ]; then
        sed -i 's|\(name="IconThemeName" type="string" value="\)[^"]*|\1Adwaita|' "$xdg/xfconf/xfce-perchannel-xml/xsettings.xml"
fi
# Saving the session is pointless (the overlay is erased at logout) and shut down / restart are
# the broker's business: the logout dialog offers neither.
if [ -f "$xdg/xfconf/xfce-perchannel-xml/xfce4-session.xml" ]; then
        sed -i 's|^\(    <property name="LockCommand" type="string" value=""/>\)$|\1\n    <property name="SaveOnExit" type="bool" value="false"/>\n    <property name="PromptOnLogout" type="bool" value="true"/>|' \
                "$xdg/xfconf/xfce-perchannel-xml/xfce4-session.xml"
        sed -i 's|^</channel>$|  <property name="shutdown" type="empty">\n    <property name="ShowSuspend" type="bool" value="false"/>\n    <property name="ShowHibernate" type="bool" value="false"/>\n    <property name="ShowHybridSleep" type="bool" value="false"/>\n    <property name="ShowSwitchUser" type="bool" value="false"/>\n  </property>\n</channel>|' \
                "$xdg/xfconf/xfce-perchannel-xml/xfce4-session.xml"
fi
# xscreensaver has nothing to guard (a client that leaves is disconnected, an idle session is
# ended by the broker) and costs CPU while the session starts: its autostart entry goes.
rm -f "$work/etc/xdg/autostart/xscreensaver.desktop"
# The preferred applications behind the panel's launchers (exo-open --launch ...). This file
# replaces xfce4-helpers' own, so it names every helper the panel uses: one left out opens an
# empty "Choose Preferred Application" dialog instead of the program.
mkdir -p "$work/etc/xdg/xfce4"
printf 'WebBrowser=custom-WebBrowser\nTerminalEmulator=xfce4-terminal\nFileManager=thunar\n' \
        >"$work/etc/xdg/xfce4/helpers.rc"
install -D -m 0644 /dev/stdin "$work/usr/share/xfce4/helpers/custom-WebBrowser.desktop" <<'EOF'
[Desktop Entry]
NoDisplay=true
Version=1.0
Encoding=UTF-8
Type=X-XFCE-Helper
X-XFCE-Category=WebBrowser
X-XFCE-CommandsWithParameter=netsurf-gtk "%s"
Icon=netsurf
Name=NetSurf
X-XFCE-Commands=netsurf-gtk
EOF

step "kernel and initramfs"
kver=$(ls "$work/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -1)
[ -n "$kver" ] || die "no kernel in the tree's /boot"
cp "$work/boot/vmlinuz-$kver" "$out/vmlinuz.tmp" && mv "$out/vmlinuz.tmp" "$out/vmlinuz"
cp "$work/boot/initrd.img-$kver" "$out/initrd.img.tmp" && mv "$out/initrd.img.tmp" "$out/initrd.img"
# The disk needs neither: the host boots the kernel directly.
rm -f "$work/boot/initrd.img-$kver"
echo "$cmdline" >"$out/cmdline"
dpkg-query --admindir="$work/var/lib/dpkg" -W -f='${Package} ${Version}\n' | sort >"$out/manifest.txt"
{ echo "# kernel $kver"; echo "# agent $(sha256sum <"$agent" | cut -c1-64)"; } >>"$out/manifest.txt"
rm -rf "$work/var/cache/apt/archives"/*.deb "$work/var/lib/apt/lists"/* "$work/tmp"/* "$work/var/log"/*.log

# Size: what the tree holds plus 1 GiB for the session's writes, in 256 MiB steps (the overlay
# only stores what is written, so free space costs nothing until used).
used_mb=$(du -sm --apparent-size "$work" | cut -f1)
size_mb=$(( (used_mb * 11 / 10 + 1024 + 255) / 256 * 256 ))
step "mkfs.ext4 -d: ${used_mb} MiB of files in a ${size_mb} MiB file system"
mkfs.ext4 -q -F -L slate-root -m 1 -E lazy_itable_init=0,lazy_journal_init=0 -d "$work" "$out/disk.raw" "${size_mb}M" >>"$log" 2>&1 ||
        { tail -n 20 "$log" >&2; die "mkfs.ext4 failed"; }
rm -rf "$work"
step "qemu-img convert -c (zstd)"
qemu-img convert -c -O qcow2 -o compression_type=zstd "$out/disk.raw" "$out/disk.qcow2.tmp"
mv "$out/disk.qcow2.tmp" "$out/disk.qcow2"
rm -f "$out/disk.raw"
echo "$key_disk" >"$out/.stamp"
step "done: $out/disk.qcow2 $(qemu-img info --output=json "$out/disk.qcow2" | \
        sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p' | awk '{printf "%.2f GiB virtual", $1/1073741824}'), \
$(du -h "$out/disk.qcow2" | cut -f1) actual; kernel $kver"
