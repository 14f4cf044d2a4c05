# Sourced (bash) by tests/e2e/capture.sh and bench/sections/33-capture.sh: publishes `debmin`, a
# Debian desktop image made of the capture fixture's tree (TAR, from build-debian-min.sh) with the
# tiny test guest's kernel, initramfs and init. Its session hook runs the programs in
# /etc/slate-test/programs and reports their first word (tests/guest/session-hook).
# Uses the caller's S, B, GUEST, T, ctl, fail and skip; never touches the fixture's cache.
publish_debmin() { # TAR PROGRAMS
        local tar=$1 root=$T/debroot bb a
        mkdir -p "$root"
        tar -C "$root" --numeric-owner -xpf "$tar"
        printf '/dev/vda / ext4 rw,noatime 0 1\n' >"$root/etc/fstab"
        printf '127.0.0.1\tlocalhost\n127.0.1.1\tslate-debian\n' >"$root/etc/hosts"
        echo slate-debian >"$root/etc/hostname"
        bb=/bin/busybox
        file -b "$bb" 2>/dev/null | grep -q 'statically linked' || bb=$B/tests/guest/cache/busybox-static/bin/busybox
        [ -x "$bb" ] || skip "no static busybox for the Debian desktop's init"
        cp "$bb" "$root/bin/busybox"
        mkdir -p "$root/usr/libexec/slate-test/bin" "$root/etc/slate-test"
        for a in $("$bb" --list); do ln -sf /bin/busybox "$root/usr/libexec/slate-test/bin/$a"; done
        # The tiny guest's init, with busybox's applets first on its PATH (Debian minbase has no poweroff).
        sed 's|^PATH=/usr/sbin:/usr/bin:/sbin:/bin$|PATH=/usr/libexec/slate-test/bin:/usr/sbin:/usr/bin:/sbin:/bin|' \
                "$S/tests/guest/rootinit.sh" >"$root/sbin/init.slate-test"
        chmod 755 "$root/sbin/init.slate-test"
        ln -sf init.slate-test "$root/sbin/init"
        install -m 755 "$S/tests/guest/session-hook" "$root/etc/slate-test/session-hook"
        echo "$2" >"$root/etc/slate-test/programs"
        printf 'SLATE_AGENT_ARGS="--canary --test-desktop"\n' >"$root/etc/default/slate-agent"
        ctl image publish debmin "$root" --kernel "$GUEST/vmlinux" --initrd "$GUEST/initrd.img" \
                --cmdline "$(cat "$GUEST/cmdline")" --current >/dev/null 2>"$T/publish.err" ||
                fail "publishing the Debian image: $(tail -3 "$T/publish.err")"
}
