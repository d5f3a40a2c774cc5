#!/usr/bin/env python3
"""Time from `uml_lab start` to every machine having run its startup
script (start returns then), and host memory per idle machine, for labs of
10 and 100 busybox machines (5 per collision domain). Run as root from the
repository after `cargo build --release`; the lab runs as the test user
umlkit-test, as the tests do. Usage: benches/lab_start.py [N ...]"""
import os, pwd, shutil, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER = "umlkit-test"

def run_as(args, cwd):
    pw = pwd.getpwnam(USER)
    return subprocess.run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                           "--clear-groups", "--"] + args, cwd=cwd,
                          capture_output=True, text=True)

def image(dirname):
    tree = os.path.join(dirname, "tree")
    for d in ["bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root"]:
        os.makedirs(os.path.join(tree, d))
    bb = shutil.which("busybox")
    shutil.copy(bb, os.path.join(tree, "bin/busybox"))
    for a in subprocess.run([bb, "--list"], capture_output=True, text=True).stdout.split():
        if a != "busybox" and not os.path.exists(os.path.join(tree, "bin", a)):
            os.symlink("busybox", os.path.join(tree, "bin", a))
    with open(os.path.join(tree, "sbin/init"), "w") as f:
        f.write("#!/bin/sh\nwhile true; do sleep 1000; done\n")
    os.chmod(os.path.join(tree, "sbin/init"), 0o755)
    img = os.path.join(dirname, "root_fs")
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext3", "-d", tree, img, "64M"], check=True)
    return img

def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            kids = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout.split()
        except OSError:
            kids = []
        for k in set(kids) | {str(pid)}:
            try:
                for line in open(f"/proc/{k}/smaps_rollup"):
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
            except OSError:
                pass
    return total

def bench(n, base, img):
    lab = os.path.join(base, f"lab{n}")
    os.makedirs(lab)
    with open(os.path.join(lab, "lab.conf"), "w") as f:
        for i in range(n):
            d = i // 5
            f.write(f"m{i}[0]=D{d}\n")
            with open(os.path.join(lab, f"m{i}.startup"), "w") as s:
                s.write(f"ifconfig eth0 10.{d // 250}.{d % 250}.{i % 5 + 1} netmask 255.255.255.0 up\n")
    subprocess.run(["chown", "-R", USER, base], check=True)
    binary = os.path.join(base, "bin/uml_lab")
    t = time.monotonic()
    r = run_as([binary, "start", "-q", "--image", img], lab)
    up = time.monotonic() - t
    if r.returncode != 0:
        print(r.stderr)
    import json
    st = json.loads(run_as([binary, "status", "--json"], lab).stdout)
    pids = [m["pid"] for m in st["machines"] if m["pid"]]
    time.sleep(2)
    mem = pss_kib(pids) / max(len(pids), 1) / 1024
    t = time.monotonic()
    run_as([binary, "stop"], lab)
    down = time.monotonic() - t
    run_as([binary, "clean"], lab)
    print(f"{n:4d} machines: up (all startup scripts done) {up:6.2f} s, "
          f"{mem:5.2f} MiB PSS per idle machine, stop {down:5.2f} s")

def main():
    sizes = [int(a) for a in sys.argv[1:]] or [10, 100]
    with tempfile.TemporaryDirectory() as base:
        os.chmod(base, 0o755)
        os.makedirs(os.path.join(base, "bin"))
        for b in ["uml_lab", "linux", "uml_switch"]:
            shutil.copy(os.path.join(REPO, "target/release", b), os.path.join(base, "bin"))
        img = image(base)
        for n in sizes:
            bench(n, base, img)

main()
