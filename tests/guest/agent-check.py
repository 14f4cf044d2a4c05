#!/usr/bin/env python3
"""Host-side check of the test guest (tests/guest/README.md): talks the agent protocol
(agent/proto.h) on the virtio-serial socket, expects HELLO then READY, round-trips a
HEARTBEAT, and prints the boot id and the canary derived from it.

  agent-check.py SOCKET                 check an already running guest
  agent-check.py --boot OUTDIR [-n N]   boot the guest N times under TCG with the driver's QEMU
                                        line, time spawn→READY, check the canary in the overlay
                                        and the probe mode (slate.probe, serial console)
  agent-check.py --session OUTDIR [--shots DIR]
                                        boot once and check the test desktop on the screen (QMP
                                        screendump): SESSION_START alice, the user's colour and
                                        name, the key indicator, F12 → LOGOUT, SESSION_STOP →
                                        STOPPED and the ready screen
Exit status 0 when every check passed."""
import argparse, hashlib, json, os, shutil, socket, statistics, struct, subprocess, sys, tempfile, time, zlib

MAGIC, VERSION, HDR = 0x534C, 1, 8
HELLO, READY, HEARTBEAT, SESSION_START, SESSION_STOP, SESSION_STATE = 1, 2, 3, 4, 5, 6
STARTED, STOPPED, LOGOUT, FAILED = 1, 2, 3, 4
STATE_NAMES = {STARTED: "STARTED", STOPPED: "STOPPED", LOGOUT: "LOGOUT", FAILED: "FAILED"}
FRAME_MAX = 64 * 1024

# The test desktop (tests/guest/README.md, tests/guest/desk.h).
READY_BG = (0x20, 0x20, 0x20)
KEYBOX = (20, 100, 100)  # x, y, size
KEYBOX_COLOURS = [(0, 0, 0), (0xff, 0, 0), (0, 0xff, 0), (0, 0, 0xff)]


def user_rgb(user):
    """Background of USER's desktop: FNV-1a 32 of the name, each byte c → 0x40 + (c & 0x7f)."""
    h = 0x811C9DC5
    for b in user.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return tuple(0x40 + (c & 0x7F) for c in (h >> 16 & 0xFF, h >> 8 & 0xFF, h & 0xFF))


def canary_of(boot_id):
    """The canary the guest's /sbin/init writes to /var/canary."""
    return "SLATE-CANARY-" + hashlib.sha256(boot_id.encode()).hexdigest()


class Agent:
    def __init__(self, path, deadline):
        self.buf = b""
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.s.close()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path}: no agent socket")
                time.sleep(0.01)
        self.deadline = deadline

    def frame(self):
        while True:
            if len(self.buf) >= HDR:
                magic, ver, typ, ln = struct.unpack(">HBBI", self.buf[:HDR])
                if magic != MAGIC or ver != VERSION or ln > FRAME_MAX:
                    raise ValueError(f"bad frame header {self.buf[:HDR].hex()}")
                if len(self.buf) >= HDR + ln:
                    payload, self.buf = self.buf[HDR:HDR + ln], self.buf[HDR + ln:]
                    return typ, payload
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("agent: no frame before the deadline")
            self.s.settimeout(left)
            data = self.s.recv(65536)
            if not data:
                raise EOFError("agent socket closed")
            self.buf += data

    def send(self, typ, payload=b""):
        self.s.sendall(struct.pack(">HBBI", MAGIC, VERSION, typ, len(payload)) + payload)


def string(p, off):
    (n,) = struct.unpack_from(">H", p, off)
    return p[off + 2:off + 2 + n].decode(), off + 2 + n


def check(path, timeout=30.0):
    """Returns (hello dict, seconds to READY from the call, heartbeat rtt)."""
    t0 = time.monotonic()
    a = Agent(path, t0 + timeout)
    typ, p = a.frame()
    assert typ == HELLO, f"first frame is type {typ}, not HELLO"
    version, off = string(p, 0)
    (caps,) = struct.unpack_from(">I", p, off)
    boot_id, off = string(p, off + 4)
    assert off == len(p), "trailing bytes in HELLO"
    typ, p = a.frame()
    assert typ == READY and not p, f"second frame is type {typ}, not READY"
    t_ready = time.monotonic() - t0
    seq = int(time.time() * 1000) & 0xFFFFFFFF
    t1 = time.monotonic()
    a.send(HEARTBEAT, struct.pack(">QQ", seq, 0))
    typ, p = a.frame()
    rtt = time.monotonic() - t1
    assert typ == HEARTBEAT, f"heartbeat answered with type {typ}"
    rseq, uptime = struct.unpack(">QQ", p)
    assert rseq == seq, f"heartbeat seq {rseq} != {seq}"
    a.s.close()
    return dict(version=version, capabilities=caps, boot_id=boot_id, uptime_ms=uptime), t_ready, rtt


def sstring(v):
    b = v.encode()
    return struct.pack(">H", len(b)) + b


def session_state(a):
    """Next SESSION_STATE from the agent as (state, detail), skipping nothing else silently."""
    typ, p = a.frame()
    assert typ == SESSION_STATE, f"expected SESSION_STATE, got type {typ}"
    detail, off = string(p, 1)
    assert off == len(p), "trailing bytes in SESSION_STATE"
    return p[0], detail


class Qmp:
    def __init__(self, path, deadline):
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.s.close()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path}: no QMP socket")
                time.sleep(0.01)
        self.f = self.s.makefile("rwb")
        json.loads(self.f.readline())
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "event" in r:
                continue
            if "error" in r:
                raise RuntimeError(f"QMP {name}: {r['error']}")
            return r["return"]


class Screen:
    """A QMP screendump (PPM) with pixel access."""

    def __init__(self, qmp, path):
        qmp.cmd("screendump", filename=path)
        data = open(path, "rb").read()
        # Header: "P6" WS width WS height WS maxval, then exactly one whitespace byte: the pixels
        # may start with bytes that look like whitespace (0x20 is the ready screen's grey).
        parts = data.split(maxsplit=4)
        assert parts[0] == b"P6" and parts[3] == b"255", "screendump is not a P6 PPM"
        self.w, self.h = int(parts[1]), int(parts[2])
        self.px = data[len(data) - self.w * self.h * 3:]
        self.path = path

    def at(self, x, y):
        o = (y * self.w + x) * 3
        return tuple(self.px[o:o + 3])

    def count(self, rgb, x0=0, y0=0, x1=None, y1=None):
        x1, y1 = x1 or self.w, y1 or self.h
        return sum(1 for y in range(y0, y1) for x in range(x0, x1) if self.at(x, y) == rgb)

    def png(self, path):
        """Writes the screen as PNG (for a person to look at)."""
        raw = b"".join(b"\0" + self.px[y * self.w * 3:(y + 1) * self.w * 3] for y in range(self.h))
        chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
        with open(path, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0)) +
                    chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def wait_screen(qmp, path, want, timeout=10.0):
    """Takes screendumps until want(screen) holds; returns (screen, seconds waited)."""
    t0 = time.monotonic()
    while True:
        sc = Screen(qmp, path)
        if want(sc) or time.monotonic() - t0 > timeout:
            return sc, time.monotonic() - t0
        time.sleep(0.05)


def qemu_line(out, d, overlay):
    return ["qemu-system-x86_64", "-name", "slate-test", "-accel", "tcg", "-machine", "q35", "-m", "256",
            "-smp", "1", "-nodefaults", "-no-user-config", "-no-reboot",
            "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
            "-kernel", f"{out}/vmlinux", "-initrd", f"{out}/initrd.img"]


def boot(out, n, keep):
    cmdline = open(f"{out}/cmdline").read().strip()
    times, ok = [], True
    for i in range(n):
        d = tempfile.mkdtemp(prefix="slate-guest-")
        ov = f"{d}/ov.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                        os.path.abspath(f"{out}/disk.qcow2"), ov], check=True)
        argv = qemu_line(out, d, ov) + [
            "-append", cmdline,
            "-blockdev", f"driver=file,filename={ov},node-name=f0",
            "-blockdev", "driver=qcow2,file=f0,node-name=d0", "-device", "virtio-blk-pci,drive=d0",
            "-device", "VGA", "-vnc", f"unix:{d}/vnc.sock",
            "-device", "virtio-keyboard-pci", "-device", "virtio-tablet-pci",
            "-chardev", f"socket,id=agent,path={d}/agent.sock,server=on,wait=off",
            "-device", "virtio-serial-pci", "-device", "virtserialport,chardev=agent,name=org.slate.agent.0",
            "-qmp", f"unix:{d}/qmp.sock,server=on,wait=off", "-display", "none"]
        t0 = time.monotonic()
        q = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        try:
            hello, _, rtt = check(f"{d}/agent.sock", 60)
            t = time.monotonic() - t0
            times.append(t)
            want = canary_of(hello["boot_id"])
            data = open(ov, "rb").read()
            hits = data.count(want.encode())
            any_hits = data.count(b"SLATE-CANARY")
            good = hits > 0 and hits == any_hits
            ok &= good
            print(f"boot {i + 1}: READY after {t:.2f} s (guest uptime {hello['uptime_ms']} ms), "
                  f"heartbeat rtt {rtt * 1000:.1f} ms, agent {hello['version']} caps {hello['capabilities']:#x}, "
                  f"boot_id {hello['boot_id']}, canary {want[:29]}… in overlay {hits}x "
                  f"({'OK' if good else 'MISMATCH'})")
        except Exception as e:  # noqa: BLE001 — report and go on with the next boot
            ok = False
            print(f"boot {i + 1}: FAILED: {e}")
        finally:
            q.kill()
            q.wait()
            if keep:
                print(f"  kept {d}")
            else:
                shutil.rmtree(d, ignore_errors=True)
    if times:
        print(f"spawn→READY over {len(times)} boots: median {statistics.median(times):.2f} s, "
              f"min {min(times):.2f} s, max {max(times):.2f} s")

    # Probe mode: serial console, no disk needed, QEMU must exit by itself.
    t0 = time.monotonic()
    try:
        r = subprocess.run(qemu_line(out, None, None) + ["-append", "console=ttyS0 slate.probe", "-serial", "stdio",
                                                         "-display", "none"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        t = time.monotonic() - t0
        probe_ok = b"SLATE-PROBE-OK" in r.stdout and r.returncode == 0
        print(f"probe: {'OK' if probe_ok else 'FAILED'}: QEMU exited {r.returncode} after {t:.2f} s, "
              f"SLATE-PROBE-OK {'seen' if b'SLATE-PROBE-OK' in r.stdout else 'missing'}")
    except subprocess.TimeoutExpired:
        probe_ok = False
        print("probe: FAILED: QEMU still running after 60 s")
    return ok and probe_ok and len(times) == n


def session(out, shots, user):
    """Boots once and checks the test desktop end to end; True when all passed."""
    cmdline = open(f"{out}/cmdline").read().strip()
    d = tempfile.mkdtemp(prefix="slate-guest-")
    shots = shots or d
    os.makedirs(shots, exist_ok=True)
    ov = f"{d}/ov.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    os.path.abspath(f"{out}/disk.qcow2"), ov], check=True)
    argv = qemu_line(out, d, ov) + [
        "-append", cmdline,
        "-blockdev", f"driver=file,filename={ov},node-name=f0",
        "-blockdev", "driver=qcow2,file=f0,node-name=d0", "-device", "virtio-blk-pci,drive=d0",
        "-device", "VGA", "-vnc", f"unix:{d}/vnc.sock",
        "-device", "virtio-keyboard-pci", "-device", "virtio-tablet-pci",
        "-chardev", f"socket,id=agent,path={d}/agent.sock,server=on,wait=off",
        "-device", "virtio-serial-pci", "-device", "virtserialport,chardev=agent,name=org.slate.agent.0",
        "-qmp", f"unix:{d}/qmp.sock,server=on,wait=off", "-display", "none"]
    ok = True

    def verdict(what, good, more=""):
        nonlocal ok
        ok &= bool(good)
        print(f"{'OK  ' if good else 'FAIL'} {what}{': ' + more if more else ''}")

    t0 = time.monotonic()
    q = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        deadline = t0 + 120
        a = Agent(f"{d}/agent.sock", deadline)
        typ, _ = a.frame()
        assert typ == HELLO, f"first frame is type {typ}"
        typ, _ = a.frame()
        assert typ == READY, f"second frame is type {typ}"
        print(f"READY after {time.monotonic() - t0:.2f} s")
        qmp = Qmp(f"{d}/qmp.sock", deadline)
        bg = user_rgb(user)

        sc, _ = wait_screen(qmp, f"{d}/ready0.ppm", lambda s: s.at(20, 20) == READY_BG)
        sc.png(f"{shots}/0-ready.png")
        verdict("ready screen before the session", sc.at(20, 20) == READY_BG,
                f"{sc.w}x{sc.h}, pixel (20,20) {sc.at(20, 20)}, white pixels {sc.count((255, 255, 255))}")

        # A name the agent must refuse, then the real one.
        a.send(SESSION_START, sstring("Bad;name") + struct.pack(">IHH", 1000, 1280, 800))
        st, detail = session_state(a)
        verdict("bad user name refused", st == FAILED, f"{STATE_NAMES.get(st, st)} {detail!r}")

        t1 = time.monotonic()
        a.send(SESSION_START, sstring(user) + struct.pack(">IHH", 1000, 1280, 800))
        st, detail = session_state(a)
        t_state = time.monotonic() - t1
        sc, _ = wait_screen(qmp, f"{d}/s1.ppm", lambda s: s.at(20, 20) == bg)
        t_drawn = time.monotonic() - t1
        sc.png(f"{shots}/1-session-{user}.png")
        verdict(f"SESSION_START {user}", st == STARTED, f"{STATE_NAMES.get(st, st)} {detail!r} after "
                f"{t_state * 1000:.0f} ms; on screen after {t_drawn * 1000:.0f} ms")
        verdict(f"background of {user} is #{bytes(bg).hex()}", sc.at(20, 20) == bg and sc.at(sc.w - 1, sc.h - 1) == bg,
                f"pixel (20,20) {sc.at(20, 20)}")
        # The name: white pixels in the middle band of the screen.
        white = sc.count((255, 255, 255), 0, sc.h // 2 - 40, sc.w, sc.h // 2 + 40)
        verdict("user name drawn in white near the centre", white > 500, f"{white} white pixels")
        kx, ky, ks = KEYBOX
        box0 = sc.at(kx + ks // 2, ky + ks // 2)
        verdict("key indicator starts black", box0 == KEYBOX_COLOURS[0], f"{box0}")

        t1 = time.monotonic()
        qmp.cmd("send-key", keys=[{"type": "qcode", "data": "a"}])
        sc, t_key = wait_screen(qmp, f"{d}/s2.ppm", lambda s: s.at(kx + ks // 2, ky + ks // 2) != box0)
        sc.png(f"{shots}/2-after-key.png")
        box1 = sc.at(kx + ks // 2, ky + ks // 2)
        verdict("key press changes the indicator", box1 == KEYBOX_COLOURS[1],
                f"{box0} → {box1} after {t_key * 1000:.0f} ms; corners {sc.at(kx, ky)} {sc.at(kx + ks - 1, ky + ks - 1)}, "
                f"outside {sc.at(kx + ks, ky + ks)}")
        qmp.cmd("send-key", keys=[{"type": "qcode", "data": "b"}])
        sc, _ = wait_screen(qmp, f"{d}/s3.ppm", lambda s: s.at(kx + ks // 2, ky + ks // 2) == KEYBOX_COLOURS[2])
        verdict("second key press: next colour", sc.at(kx + ks // 2, ky + ks // 2) == KEYBOX_COLOURS[2],
                f"{sc.at(kx + ks // 2, ky + ks // 2)}")

        t1 = time.monotonic()
        qmp.cmd("send-key", keys=[{"type": "qcode", "data": "f12"}])
        st, detail = session_state(a)
        t_logout = time.monotonic() - t1
        verdict("F12 → SESSION_STATE LOGOUT", st == LOGOUT, f"{STATE_NAMES.get(st, st)} {detail!r} after "
                f"{t_logout * 1000:.0f} ms")
        sc, _ = wait_screen(qmp, f"{d}/s4.ppm", lambda s: s.at(20, 20) == READY_BG)
        sc.png(f"{shots}/3-after-logout.png")
        verdict("ready screen after logout", sc.at(20, 20) == READY_BG, f"{sc.at(20, 20)}")

        # A second session, ended by the host.
        a.send(SESSION_START, sstring(user) + struct.pack(">IHH", 1000, 0, 0))
        st, detail = session_state(a)
        verdict("second SESSION_START", st == STARTED, f"{detail!r}")
        sc, _ = wait_screen(qmp, f"{d}/s5.ppm", lambda s: s.at(20, 20) == bg)
        t1 = time.monotonic()
        a.send(SESSION_STOP, sstring("test"))
        st, detail = session_state(a)
        t_stop = time.monotonic() - t1
        verdict("SESSION_STOP → STOPPED", st == STOPPED, f"{detail!r} after {t_stop * 1000:.0f} ms")
        sc, t_ready = wait_screen(qmp, f"{d}/s6.ppm", lambda s: s.at(20, 20) == READY_BG)
        sc.png(f"{shots}/4-after-stop.png")
        verdict("ready screen after SESSION_STOP", sc.at(20, 20) == READY_BG, f"after {t_ready * 1000:.0f} ms")
        a.send(SESSION_STOP, sstring("again"))
        st, detail = session_state(a)
        verdict("SESSION_STOP without a session → STOPPED", st == STOPPED, f"{detail!r}")
        a.send(HEARTBEAT, struct.pack(">QQ", 7, 0))
        typ, p = a.frame()
        verdict("agent still answers heartbeats", typ == HEARTBEAT and struct.unpack(">QQ", p)[0] == 7)

        # F12 while no host is connected: the next host hears LOGOUT right after HELLO, READY.
        a.send(SESSION_START, sstring(user) + struct.pack(">IHH", 1000, 1280, 800))
        st, _ = session_state(a)
        wait_screen(qmp, f"{d}/s7.ppm", lambda s: s.at(20, 20) == bg)
        a.s.close()
        time.sleep(0.5)
        qmp.cmd("send-key", keys=[{"type": "qcode", "data": "f12"}])
        sc, _ = wait_screen(qmp, f"{d}/s8.ppm", lambda s: s.at(20, 20) == READY_BG)
        a = Agent(f"{d}/agent.sock", time.monotonic() + 30)
        types = [a.frame()[0], a.frame()[0]]
        st, detail = session_state(a)
        verdict("LOGOUT while disconnected is told to the next host", st == LOGOUT and types == [HELLO, READY] and
                sc.at(20, 20) == READY_BG, f"{types} then {STATE_NAMES.get(st, st)} {detail!r}")
        print(f"screenshots in {shots}")
    except Exception as e:  # noqa: BLE001 — one line, not a traceback
        ok = False
        print(f"FAIL {type(e).__name__}: {e}")
    finally:
        q.kill()
        q.wait()
        shutil.rmtree(d, ignore_errors=True)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("socket", nargs="?")
    ap.add_argument("--boot", metavar="OUTDIR")
    ap.add_argument("--session", metavar="OUTDIR", help="check the test desktop (one boot)")
    ap.add_argument("--shots", metavar="DIR", help="with --session: keep the screenshots (PNG) here")
    ap.add_argument("--user", default="alice", help="with --session: the user to log on (default alice)")
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep each boot's directory (overlay, sockets)")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    if a.boot:
        return 0 if boot(a.boot, a.n, a.keep) else 1
    if a.session:
        return 0 if session(a.session, a.shots, a.user) else 1
    if not a.socket:
        ap.error("SOCKET or --boot OUTDIR")
    hello, t, rtt = check(a.socket, a.timeout)
    print(f"HELLO {hello} READY after {t:.2f} s, heartbeat rtt {rtt * 1000:.1f} ms")
    print(canary_of(hello["boot_id"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
