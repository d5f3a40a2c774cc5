#!/usr/bin/env python3
"""Boot of the stock Debian guest to `login:`, log-in and halt: our `linux`
against Debian's `linux.uml` on the same image, in the same run (issue 13).

The image is the one the test suite builds and caches (debootstrap
bookworm minbase with sysvinit; run `cargo test --release --test
kernel_debian` once first). Each boot gets a fresh COW file, runs on a
pty as a person would, and is timed from start to `login:`, then root
logs in and types `halt`, and the time to the kernel's exit is taken.

Run as root (linux.uml needs the seccomp shim here; our `linux` runs as
the unprivileged user through setpriv):

    benches/debian_boot.py [--runs 5] [--image PATH]
"""
import argparse
import glob
import os
import pty
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIM = os.environ.get("SHIM", "/work/shared/tools/uml-noxstate")
GT = "GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX2,-AVX,-ERMS,-FSRM"
USER = os.environ.get("USER_NAME", "umlkit-test")


def boot(argv, cwd, limit=300.0):
    """Runs argv on a pty; returns (seconds to login:, seconds to exit)."""
    master, slave = pty.openpty()
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True, env=dict(os.environ, HOME=cwd, TERM="vt100"))
    os.close(slave)
    seen = b""
    t_login = None
    state = "login"

    def send(text):
        os.write(master, text.encode())

    while time.monotonic() - start < limit:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                chunk = b""
            seen += chunk
        if state == "login" and b"login:" in seen:
            t_login = time.monotonic() - start
            send("root\r")
            state = "shell"
        elif state == "shell" and b"~# " in seen[-200:]:
            send("halt\r")
            state = "halt"
        if proc.poll() is not None:
            break
    else:
        os.killpg(proc.pid, 9)
    proc.wait()
    os.close(master)
    if t_login is None or state != "halt":
        sys.stderr.write(seen.decode(errors="replace")[-2000:])
        raise SystemExit(f"{argv[0]}: no login within {limit}s")
    return t_login, time.monotonic() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--image")
    a = ap.parse_args()
    image = a.image or next(iter(sorted(glob.glob("/var/cache/umlkit-tests/debian-*/root_fs"))), None)
    if not image:
        raise SystemExit("no cached Debian image: run cargo test --release --test kernel_debian first")
    subprocess.run(["cargo", "build", "--release", "--bin", "linux"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = tempfile.mkdtemp(prefix="debian-boot-")
    os.chmod(work, 0o755)
    linux = os.path.join(work, "linux")
    shutil.copy(os.path.join(ROOT, "target/release/linux"), linux)
    uid = int(subprocess.check_output(["id", "-u", USER]))
    gid = int(subprocess.check_output(["id", "-g", USER]))
    os.chown(work, uid, gid)
    os.chown(linux, uid, gid)
    ours, theirs = [], []
    for i in range(a.runs):
        for who in ("ours", "theirs") if i % 2 == 0 else ("theirs", "ours"):
            cow = os.path.join(work, f"{who}.cow")
            if os.path.exists(cow):
                os.unlink(cow)
            if who == "ours":
                argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--",
                        linux, f"ubd0={cow},{image}", "root=/dev/ubda"]
                ours.append(boot(argv, work))
            else:
                argv = [SHIM, "linux.uml", f"ubd0={cow},{image}", "root=/dev/ubda", "mem=256M", GT]
                theirs.append(boot(argv, work))
            print(f"run {i + 1} {who}: login {ours[-1][0] if who == 'ours' else theirs[-1][0]:.2f} s",
                  file=sys.stderr)
    med = lambda xs, k: statistics.median(x[k] for x in xs)
    print(f"| | linux | linux.uml | ratio |")
    print(f"|---|---|---|---|")
    for k, name in ((0, "start to `login:`"), (1, "start to exit after `halt`")):
        o, t = med(ours, k), med(theirs, k)
        print(f"| {name} (median of {a.runs}) | {o:.2f} s | {t:.2f} s | {t / o:.1f}x |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
