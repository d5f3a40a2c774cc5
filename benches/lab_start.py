#!/usr/bin/env python3
"""Lab start-up time and memory: `uml_lab` against `linux.uml` started the
way Netkit starts a lab.

For each kernel, image and size N: a lab of N machines, 5 per collision
domain, each machine's startup script giving eth0 an address and then
marking itself done. Measured:

- up: from the start of the lab until every machine has run its startup
  script. For `uml_lab` that is `uml_lab start` returning (it returns once
  every machine reported its startup scripts done). For `linux.uml` it is
  from spawning the first process until the last startup script wrote its
  mark into the lab directory (seen through hostfs at /hostlab).
- memory per idle machine, once the machines' process count has not
  changed for 3 s: the PSS summed over every process
  of the guest (the monitor or linux.uml process and all its descendants,
  which holds every process of the guest's pid namespace for `linux`, and
  every address-space process for `linux.uml`), from smaps_rollup; the
  same for the collision domains' switches, per machine; and the growth of
  the host kernel's own memory (SUnreclaim + PageTables + KernelStack in
  /proc/meminfo) from before the start, per machine (other jobs move it).

The Netkit way (Netkit's vstart/lstart): one `linux.uml` per machine,
`ubd0=COW,IMAGE`, `ethN=daemon,,unix,SOCK` on one Debian `uml_switch -unix
SOCK` per domain, `name=M hostlab=LABDIR` on the command line, the startup
script run by the image's init (the Debian image from `uml_lab image build`
runs it from an inittab entry after runlevel 2; the busybox image's init is
a script that does the same). `linux.uml` runs under the seccomp shim
/work/shared/tools/uml-noxstate (or $UML_NOXSTATE) with the GLIBC_TUNABLES=
word tests/common/uml.rs gives it: without them Debian's linux.uml 6.1 dies
at init on CPUs with AVX-512 state.

Run as root from the repository after `cargo build --release`; labs run as
the test user umlkit-test, as the tests do.

Usage: benches/lab_start.py [--kernel ours|uml]... [--image busybox|debian]...
                            [--debian IMAGE] [--mem MIB] [N ...]
"""
import argparse, json, os, pwd, shutil, signal, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER = "umlkit-test"
GLIBC = "GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX2,-AVX,-ERMS,-FSRM"
PER_DOMAIN = 5

BUSYBOX_INIT = """#!/bin/sh
# The image's own init: for a kernel started the Netkit way (hostlab= and
# name= on its command line) mount the lab and run the startup script, as
# Netkit's images do; then idle.
mount -t proc proc /proc 2>/dev/null
name= hostlab=
for w in $(cat /proc/cmdline); do
  case "$w" in name=*) name=${w#name=} ;; hostlab=*) hostlab=${w#hostlab=} ;; esac
done
if [ -n "$hostlab" ]; then
  hostname "$name"
  mkdir -p /hostlab && mount -t hostfs -o "$hostlab" none /hostlab
  [ -f "/hostlab/$name.startup" ] && sh "/hostlab/$name.startup"
fi
while true; do sleep 1000; done
"""


def ids():
    pw = pwd.getpwnam(USER)
    return pw.pw_uid, pw.pw_gid


def run_as(args, cwd, **kw):
    uid, gid = ids()
    return subprocess.run(args, cwd=cwd, user=uid, group=gid, extra_groups=[],
                          capture_output=True, text=True, **kw)


def busybox_image(dirname):
    tree = os.path.join(dirname, "tree")
    for d in ["bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "hostlab"]:
        os.makedirs(os.path.join(tree, d))
    bb = shutil.which("busybox")
    shutil.copy(bb, os.path.join(tree, "bin/busybox"))
    for a in subprocess.run([bb, "--list"], capture_output=True, text=True).stdout.split():
        if a != "busybox" and not os.path.exists(os.path.join(tree, "bin", a)):
            os.symlink("busybox", os.path.join(tree, "bin", a))
    with open(os.path.join(tree, "sbin/init"), "w") as f:
        f.write(BUSYBOX_INIT)
    os.chmod(os.path.join(tree, "sbin/init"), 0o755)
    img = os.path.join(dirname, "root_fs")
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext3", "-d", tree, img, "64M"], check=True)
    shutil.rmtree(tree)
    os.chmod(img, 0o644)
    return img


def processes():
    """{pid: ppid} of every process."""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
            out[int(p)] = int(s.rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return out


def trees(roots):
    """Each root pid with every descendant: {root: [pids]}."""
    parent = processes()
    children = {}
    for pid, pp in parent.items():
        children.setdefault(pp, []).append(pid)
    out = {}
    for r in roots:
        seen, todo = [], [r]
        while todo:
            p = todo.pop()
            if p in parent:
                seen.append(p)
                todo.extend(children.get(p, []))
        out[r] = seen
    return out


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def pid_namespaces():
    """{pid namespace: [pids]} of every process."""
    out = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                out.setdefault(os.readlink(f"/proc/{p}/ns/pid"), []).append(int(p))
            except OSError:
                pass
    return out


def guest(tree, spaces):
    """A machine's processes: its tree, and every process of any pid
    namespace other than the host's that a process of the tree is in
    (for `linux`, the guest's; the tree already holds them all, this makes
    sure)."""
    host = os.readlink("/proc/self/ns/pid")
    pids = set(tree)
    for p in tree:
        try:
            ns = os.readlink(f"/proc/{p}/ns/pid")
        except OSError:
            continue
        if ns != host:
            pids.update(spaces.get(ns, []))
    return pids


def kernel_kib():
    """Unreclaimable slab + page tables + kernel stacks, from /proc/meminfo."""
    f = dict(l.split(":", 1) for l in open("/proc/meminfo"))
    return sum(int(f[k].split()[0]) for k in ["SUnreclaim", "PageTables", "KernelStack"])


def memory(machine_pids, switch_pids):
    """(PSS MiB per machine, processes per machine, switch PSS MiB per machine)."""
    t = trees(machine_pids + switch_pids)
    spaces = pid_namespaces()
    guests = [guest(t[p], spaces) for p in machine_pids]
    m = [pss_kib(g) for g in guests]
    procs = sum(len(g) for g in guests)
    sw = sum(pss_kib(t[p]) for p in switch_pids)
    n = max(len(machine_pids), 1)
    return sum(m) / n / 1024, procs / n, sw / n / 1024


def settle(machine_pids, limit=180):
    """Waits until the machines are idle: their process count unchanged for
    3 s (a Debian image's boot scripts still run after the startup scripts
    under uml_lab, whose wrapper runs them first)."""
    last, same, t = None, 0, time.monotonic()
    while same < 3 and time.monotonic() - t < limit:
        tr = trees(machine_pids)
        count = sum(len(v) for v in tr.values())
        same = same + 1 if count == last else 0
        last = count
        time.sleep(1)


def make_lab(base, n, tag):
    lab = os.path.join(base, f"lab-{tag}-{n}")
    os.makedirs(os.path.join(lab, "ready"))
    with open(os.path.join(lab, "lab.conf"), "w") as f:
        for i in range(n):
            d = i // PER_DOMAIN
            f.write(f"m{i}[0]=D{d}\n")
            with open(os.path.join(lab, f"m{i}.startup"), "w") as s:
                s.write(f"ifconfig eth0 10.{d // 250}.{d % 250}.{i % PER_DOMAIN + 1} "
                        "netmask 255.255.255.0 up\n"
                        f"[ -d /hostlab/ready ] && : > /hostlab/ready/m{i}\n")
    subprocess.run(["chown", "-R", USER, lab], check=True)
    return lab


def bench_ours(base, n, img, tag):
    lab = make_lab(base, n, tag)
    binary = os.path.join(base, "bin/uml_lab")
    k0 = kernel_kib()
    t = time.monotonic()
    r = run_as([binary, "start", "-q", "--timeout", "600", "--image", img], lab)
    up = time.monotonic() - t
    try:
        if r.returncode != 0:
            return f"start failed: {r.stderr.strip()[-300:]}"
        st = json.loads(run_as([binary, "status", "--json"], lab).stdout)
        pids = [m["pid"] for m in st["machines"] if m["pid"]]
        sws = [d["pid"] for d in st["domains"] if d["pid"]]
        settle(pids)
        mem, procs, sw = memory(pids, sws)
        kern = (kernel_kib() - k0) / max(len(pids), 1) / 1024
        return (up, mem, procs, sw, kern)
    finally:
        t = time.monotonic()
        run_as([binary, "stop", "--timeout", "30"], lab)
        down = time.monotonic() - t
        run_as([binary, "clean"], lab)
        print(f"    (stop {down:.2f} s)", flush=True)


def noxstate():
    for p in [os.environ.get("UML_NOXSTATE"), "/work/shared/tools/uml-noxstate"]:
        if p and os.access(p, os.X_OK):
            return p
    sys.exit("lab_start.py: no seccomp shim: set UML_NOXSTATE to uml-noxstate "
             "(see tests/common/uml.rs)")


def bench_uml(base, n, img, tag, mem_mib, limit):
    lab = make_lab(base, n, tag)
    run = os.path.join(base, f"uml-{tag}-{n}")
    os.makedirs(run)
    subprocess.run(["chown", USER, run], check=True)
    uid, gid = ids()
    kids = []
    ready = os.path.join(lab, "ready")
    shim = noxstate()
    def spawn(args, log):
        return subprocess.Popen(args, cwd=run, user=uid, group=gid, extra_groups=[],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                process_group=0)
    try:
        k0 = kernel_kib()
        t = time.monotonic()
        domains = (n + PER_DOMAIN - 1) // PER_DOMAIN
        switches = []
        for d in range(domains):
            log = open(os.path.join(run, f"D{d}.log"), "w")
            p = spawn(["/usr/bin/uml_switch", "-unix", os.path.join(run, f"D{d}.ctl")], log)
            kids.append(p)
            switches.append(p.pid)
        while not all(os.path.exists(os.path.join(run, f"D{d}.ctl")) for d in range(domains)):
            time.sleep(0.01)
        machines = []
        for i in range(n):
            log = open(os.path.join(run, f"m{i}.log"), "w")
            args = [shim, "/usr/bin/linux.uml",
                    f"ubd0={run}/m{i}.cow,{img}", "root=/dev/ubda", f"mem={mem_mib}M",
                    f"umid=m{i}", f"uml_dir={run}", f"name=m{i}", f"hostlab={lab}",
                    "con=null", "ssl=null", "con0=null,fd:1",
                    f"eth0=daemon,,unix,{run}/D{i // PER_DOMAIN}.ctl", GLIBC]
            p = spawn(args, log)
            kids.append(p)
            machines.append(p.pid)
        while len(os.listdir(ready)) < n:
            if time.monotonic() - t > limit:
                return f"only {len(os.listdir(ready))} of {n} ran their startup script in {limit} s"
            dead = [p for p in kids if p.poll() is not None]
            if dead:
                return f"{len(dead)} process(es) ended early (see {run})"
            time.sleep(0.2)
        up = time.monotonic() - t
        settle(machines)
        mem, procs, sw = memory(machines, switches)
        kern = (kernel_kib() - k0) / n / 1024
        return (up, mem, procs, sw, kern)
    finally:
        for p in kids:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kernel", action="append", choices=["ours", "uml"])
    ap.add_argument("--image", action="append", choices=["busybox", "debian"])
    ap.add_argument("--debian", help="the Debian lab image (uml_lab image build)")
    ap.add_argument("--mem", type=int, default=64, help="linux.uml mem= in MiB (64)")
    ap.add_argument("--limit", type=int, default=900, help="seconds a linux.uml lab may take")
    ap.add_argument("sizes", nargs="*", type=int)
    a = ap.parse_args()
    kernels = a.kernel or ["ours", "uml"]
    images = a.image or ["busybox"]
    sizes = a.sizes or [10, 100]
    if "debian" in images and not a.debian:
        sys.exit("lab_start.py: --image debian needs --debian IMAGE (uml_lab image build IMAGE)")
    with tempfile.TemporaryDirectory(dir="/var/tmp") as base:
        os.chmod(base, 0o755)
        os.makedirs(os.path.join(base, "bin"))
        for b in ["uml_lab", "linux", "uml_switch"]:
            shutil.copy(os.path.join(REPO, "target/release", b), os.path.join(base, "bin"))
        imgs = {"busybox": busybox_image(base), "debian": a.debian}
        print(f"load {os.getloadavg()[0]:.1f}; {os.cpu_count()} CPUs", flush=True)
        for image in images:
            for kernel in kernels:
                for n in sizes:
                    tag = f"{kernel}-{image}"
                    load = os.getloadavg()[0]
                    if kernel == "ours":
                        r = bench_ours(base, n, imgs[image], tag)
                    else:
                        r = bench_uml(base, n, imgs[image], tag, a.mem, a.limit)
                    if isinstance(r, str):
                        print(f"{tag:14s} {n:4d}: {r} (load {load:.1f})", flush=True)
                        continue
                    up, mem, procs, sw, kern = r
                    print(f"{tag:14s} {n:4d} machines: up {up:7.2f} s, "
                          f"{mem:6.2f} MiB PSS per idle machine ({procs:.1f} processes), "
                          f"switches {sw:5.2f} MiB, kernel {kern:5.2f} MiB per machine "
                          f"(load {load:.1f})", flush=True)


main()
