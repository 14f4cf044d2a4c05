#!/bin/sh
# Test guest /sbin/init on the disk (tests/guest/README.md): brings the system up, writes the
# boot-id canary for the erasure test, then keeps slate-agent running until poweroff.
# PID 1: it must never exit, so every failure is reported and survived.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

# The initramfs hands /dev over already mounted (busybox here has no mountpoint applet).
[ -e /proc/self ] || mount -t proc proc /proc
[ -d /sys/class ] || mount -t sysfs sys /sys
[ -e /dev/null ] || mount -t devtmpfs dev /dev
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmp /tmp
mount -o remount,rw /

hostname -F /etc/hostname

# No udev: the agent's port gets its by-name link from sysfs (slate-agent would do it too).
mkdir -p /dev/virtio-ports
for p in /sys/class/virtio-ports/*; do
        [ -e "$p/name" ] && ln -sf "/dev/${p##*/}" "/dev/virtio-ports/$(cat "$p/name")"
done

banner="Slate test guest $(hostname) ($(uname -r))"
echo "$banner"
# The VGA screen shows the banner even when the kernel console is the serial port.
case " $(cat /proc/cmdline) " in *" console=tty0 "*) ;; *) echo "$banner" >/dev/tty0 2>/dev/null ;; esac

# CANARY (README): derived from the boot id that the agent reports in HELLO, so the host can
# recompute it and look for it in the overlay. Repeated so it spans several 4 KiB blocks.
boot_id=$(cat /proc/sys/kernel/random/boot_id)
canary="SLATE-CANARY-$(printf %s "$boot_id" | sha256sum | cut -d' ' -f1)"
i=0
while [ $i -lt 100 ]; do
        echo "$canary"
        i=$((i + 1))
done >/var/canary
sync

# Image publishing installs /etc/init.d/slate-agent (respawning, flags from
# /etc/default/slate-agent): use it when present, so a published disk runs the agent it got.
# A disk used as built (agent-check.py) runs the agent here in the same respawn loop.
agent_loop=
if [ -x /etc/init.d/slate-agent ]; then
        /etc/init.d/slate-agent start
elif [ -x /usr/libexec/slate/slate-agent ]; then
        (
                while :; do
                        /usr/libexec/slate/slate-agent --canary --test-desktop
                        echo "init: slate-agent exited ($?), restarting"
                        sleep 1
                done
        ) &
        agent_loop=$!
else
        echo "init: no slate-agent on this disk"
fi

down() {
        echo "init: $1"
        [ -n "$agent_loop" ] && kill $agent_loop 2>/dev/null
        [ -x /etc/init.d/slate-agent ] && /etc/init.d/slate-agent stop
        sync
        umount -a -r 2>/dev/null
        poweroff -f
}
# busybox poweroff/halt signal PID 1 with USR2/USR1; reboot with TERM.
trap 'down "powering off"' USR1 USR2 TERM INT

# Reap orphans for ever; wait returns early when a signal runs a trap.
while :; do
        wait
        sleep 1
done
