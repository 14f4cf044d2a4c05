#!/bin/busybox sh
# Test guest initramfs /init (tests/guest/README.md): loads the few modules the guest needs,
# answers the accelerator probe (slate.probe) or hands over to the disk's /sbin/init.
# Never waits for anything it can do without: every second here is a second of TCG boot.
PATH=/bin:/sbin
mount -t devtmpfs dev /dev
# The initramfs has no /dev/console node (built unprivileged): take the console now.
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys

cmdline=$(cat /proc/cmdline)
probe=
case " $cmdline " in *" slate.probe "*) probe=1 ;; esac

load() {
        while read -r m; do
                insmod "/lib/modules/$m" || echo "init: insmod $m failed"
        done <"$1"
}
load /lib/modules/core.order
# The probe's console is the serial port: no display or input drivers needed there.
[ -n "$probe" ] || load /lib/modules/display.order

if [ -n "$probe" ]; then
        echo SLATE-PROBE-OK
        poweroff -f
fi

root=/dev/vda
for arg in $cmdline; do
        case "$arg" in root=/dev/*) root=${arg#root=} ;; esac
done
# virtio_blk probes asynchronously: give the disk a moment to show up.
i=0
while [ ! -b "$root" ] && [ $i -lt 100 ]; do
        usleep 20000
        i=$((i + 1))
done
mkdir -p /newroot
if ! mount -t ext4 -o rw "$root" /newroot; then
        echo "init: cannot mount $root; powering off"
        poweroff -f
fi
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /sbin/init
