#!/usr/bin/env python3
"""Reference boot for bench/sections/20-boot.sh: the QEMU command line of a running Slate desktop,
replayed by hand with plain `qemu-img create` + `qemu-system-x86_64`, timed to the agent's READY.
Never touches Slate's own files: every path of the Slate desktop is rewritten into WORKDIR/OVDIR.

  boot-ref.py ARGV_FILE SLATE_RUN_DIR SLATE_OVERLAY GOLDEN MODE WORKDIR OVDIR

ARGV_FILE is /proc/<pid>/cmdline of the Slate QEMU (NUL-separated). Prints one line:
"<overlay create + spawn→READY ms> <qemu-img create ms>"; exit 1 with a reason on stderr."""
import importlib.util, os, secrets, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))


def agent_module():
    """tests/guest/agent-check.py speaks the agent protocol (agent/proto.h); reuse it, not a copy."""
    path = os.path.join(os.environ.get("SLATE_SRCDIR", os.path.join(HERE, "..", "..")), "tests/guest/agent-check.py")
    spec = importlib.util.spec_from_file_location("agent_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    if len(sys.argv) != 8:
        sys.exit(__doc__)
    argv_file, run_dir, slate_ov, golden, mode, work, ovdir = sys.argv[1:]
    ac = agent_module()
    argv = [a for a in open(argv_file, "rb").read().decode().split("\0") if a]
    # Slate may start QEMU through setpriv (root → vm-user); the reference runs QEMU directly.
    start = next(i for i, a in enumerate(argv) if os.path.basename(a).startswith("qemu-system"))
    ov = os.path.join(ovdir, "ref.qcow2")
    key = os.path.join(work, "ref.key")
    fixed = []
    for a in argv[start:]:
        a = a.replace(slate_ov, ov).replace(run_dir, work)
        # Slate hands the LUKS key over a pipe on fd 3; the reference reads it from a file.
        a = a.replace("file=/dev/fd/3", f"file={key}")
        fixed.append(a)
    if any(slate_ov in a or run_dir in a for a in fixed):
        sys.exit("boot-ref: a Slate path survived the rewrite")

    create = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", golden]
    if mode == "encrypted":
        with open(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(secrets.token_hex(32))
        # The options Slate uses (imaging/overlay.c LUKS_CREATE_OPTIONS).
        create += ["-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10",
                   "--object", f"secret,id=sec0,file={key},format=raw"]
    create.append(ov)

    t0 = time.monotonic()
    # qemu-img's LUKS iteration benchmark sometimes fails on a loaded host; Slate retries it too.
    for attempt in range(20):
        r = subprocess.run(create, stdin=subprocess.DEVNULL, capture_output=True)
        if r.returncode == 0:
            break
    else:
        sys.exit(f"boot-ref: qemu-img create: {r.stderr.decode().strip()}")
    t1 = time.monotonic()
    log = open(os.path.join(work, "qemu.log"), "wb")
    q = subprocess.Popen(fixed, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        a = ac.Agent(os.path.join(work, "agent.sock"), t1 + 300)
        typ, _ = a.frame()
        if typ != ac.HELLO:
            sys.exit(f"boot-ref: first agent frame is type {typ}, not HELLO")
        typ, _ = a.frame()
        if typ != ac.READY:
            sys.exit(f"boot-ref: second agent frame is type {typ}, not READY")
        t2 = time.monotonic()
        a.s.close()
    except Exception as e:  # noqa: BLE001 — one line for the section's stderr
        log.flush()
        tail = open(os.path.join(work, "qemu.log"), "rb").read()[-400:].decode(errors="replace")
        sys.exit(f"boot-ref: {type(e).__name__}: {e}; QEMU said: {tail.strip()}")
    finally:
        q.kill()
        q.wait()
        for f in (ov, key):
            if os.path.exists(f):
                os.unlink(f)
    print(f"{(t2 - t0) * 1000:.0f} {(t1 - t0) * 1000:.0f}")


if __name__ == "__main__":
    main()
