#!/usr/bin/env python3
"""Host-side check of the test guest (tests/guest/README.md): talks the agent protocol
(agent/proto.h) on the virtio-serial socket, expects HELLO then READY, round-trips a
HEARTBEAT, and prints the boot id and the canary derived from it.

  agent-check.py SOCKET                 check an already running guest
  agent-check.py --boot OUTDIR [-n N]   boot the guest N times under TCG with the driver's QEMU
                                        line, time spawn→READY, check the canary in the overlay
                                        and the probe mode (slate.probe, serial console)
Exit status 0 when every check passed."""
import argparse, hashlib, os, shutil, socket, statistics, struct, subprocess, sys, tempfile, time

MAGIC, VERSION, HDR = 0x534C, 1, 8
HELLO, READY, HEARTBEAT = 1, 2, 3
FRAME_MAX = 64 * 1024


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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("socket", nargs="?")
    ap.add_argument("--boot", metavar="OUTDIR")
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep each boot's directory (overlay, sockets)")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    if a.boot:
        return 0 if boot(a.boot, a.n, a.keep) else 1
    if not a.socket:
        ap.error("SOCKET or --boot OUTDIR")
    hello, t, rtt = check(a.socket, a.timeout)
    print(f"HELLO {hello} READY after {t:.2f} s, heartbeat rtt {rtt * 1000:.1f} ms")
    print(canary_of(hello["boot_id"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
