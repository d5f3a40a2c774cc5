#!/usr/bin/env python3
"""Many busybox guests at once (issue 12), see BENCHMARKS.md.

For each N: start N guests together, each on its own COW file over one
shared 64 MiB ext3 busybox image, with `con=null con0=fd:0,fd:1`; time
until every guest's init has printed its marker ("all up"); let them idle;
measure host memory per idle guest two ways: the sum of PSS (from
/proc/PID/smaps_rollup) of every monitor and all its descendants (the
guest's processes, UML's helpers), and the drop of MemAvailable from just
before the start; count their threads and the host ptys in use
(/proc/sys/kernel/pty/nr); then SIGTERM every guest (SIGKILL of its
process group after a grace time).

`linux` (umlkit) runs as an unprivileged user through setpriv, as a user
would run it; `linux.uml` (Debian) runs as root with the seccomp filter of
tests/common/uml.rs installed before exec (and GLIBC_TUNABLES on its
command line): see /work/shared/specs/real-uml-on-modern-hosts.md.

Run as root:  benches/kernel_many.py [--counts 1,10,50,200,1000]
              [--uml-max 50] [--idle 3] [--workdir DIR]
"""
import argparse
import ctypes
import os
import pwd
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time

USER = "umlkit-test"
GLIBC_TUNABLES = ("GLIBC_TUNABLES=glibc.cpu.hwcaps="
                  "-AVX512F,-AVX512VL,-AVX512BW,-AVX2,-AVX,-ERMS,-FSRM")
MARKER = "GUEST-IS-UP"
INIT = f"""#!/bin/sh
mount -t proc proc /proc
echo {MARKER}
while :; do sleep 3600; done
"""


def seccomp_noxstate():
    """The filter of tests/common/uml.rs: ptrace(GETREGSET|SETREGSET, _,
    NT_X86_XSTATE) fails with EIO. Runs in the child before exec."""
    libc = ctypes.CDLL(None, use_errno=True)

    def stmt(code, k):
        return struct.pack("<HBBI", code, 0, 0, k)

    def jump(k, jt, jf):
        return struct.pack("<HBBI", 0x15, jt, jf, k)

    prog = b"".join([
        stmt(0x20, 4), jump(0xc000003e, 0, 7),
        stmt(0x20, 0), jump(101, 0, 5),
        stmt(0x20, 16), jump(0x4204, 1, 0), jump(0x4205, 0, 2),
        stmt(0x20, 32), jump(0x202, 1, 0),
        stmt(0x06, 0x7fff0000), stmt(0x06, 0x00050000 | 5),
    ])
    buf = ctypes.create_string_buffer(prog)

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fp = Fprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(22, 2, ctypes.byref(fp), 0, 0) != 0:  # PR_SET_SECCOMP
        os._exit(127)
    os.setpgid(0, 0)


def sh(*args, **kw):
    subprocess.run(args, check=True, **kw)


def prepare(work):
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)
    try:
        pwd.getpwnam(USER)
    except KeyError:
        sh("useradd", "-M", "-s", "/bin/sh", USER)
    for f in ("/etc/subuid", "/etc/subgid"):
        text = open(f).read() if os.path.exists(f) else ""
        if not any(l.startswith(USER + ":") for l in text.splitlines()):
            with open(f, "a") as out:
                out.write(f"{USER}:300000:65536\n")
    img = os.path.join(work, "root_fs")
    if not os.path.exists(img):
        tree = os.path.join(work, "tree")
        shutil.rmtree(tree, ignore_errors=True)
        for d in ("bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root"):
            os.makedirs(os.path.join(tree, d))
        bb = shutil.which("busybox")
        shutil.copy(bb, os.path.join(tree, "bin/busybox"))
        applets = subprocess.run([bb, "--list"], capture_output=True,
                                 text=True, check=True).stdout.split()
        for a in applets:
            link = os.path.join(tree, "bin", a)
            if a != "busybox" and not os.path.lexists(link):
                os.symlink("busybox", link)
        with open(os.path.join(tree, "init"), "w") as f:
            f.write(INIT)
        os.chmod(os.path.join(tree, "init"), 0o755)
        sh("mke2fs", "-q", "-F", "-t", "ext3", "-d", tree, img, "64M")
        shutil.rmtree(tree)
    shutil.copy("target/release/linux", os.path.join(work, "linux"))
    pw = pwd.getpwnam(USER)
    sh("chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", work)
    return pw


def command(kernel, i, pw):
    common = [f"ubd0=c{i}.cow,root_fs", "root=/dev/ubda", "rw", "init=/init",
              f"umid=g{i}", "con=null", "con0=fd:0,fd:1", "mem=64M"]
    if kernel == "linux":
        return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                "--clear-groups", "--", "./linux"] + common
    return ["linux.uml"] + common + [GLIBC_TUNABLES]


def meminfo(key):
    for line in open("/proc/meminfo"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def descendants(roots):
    children = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            stat = open(f"/proc/{e}/stat").read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(e))
    seen, todo = [], list(roots)
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(children.get(p, []))
    return seen


def kernel_kib():
    """Kernel memory that processes pin: stacks, page tables, unreclaimable
    slab (namespaces, mounts, FUSE, ptys)."""
    return sum(meminfo(k) for k in ("KernelStack", "PageTables", "SUnreclaim"))


def host_busy():
    """CPU seconds the whole host has been busy (every process: read over a
    window, it includes other jobs on a shared machine)."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(f) - f[3] - f[4]) / os.sysconf("SC_CLK_TCK")


def usage(pids):
    """PSS (KiB), threads, and CPU seconds (of every thread still alive) of
    `pids`."""
    pss = threads = ns = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
            for line in open(f"/proc/{p}/status"):
                if line.startswith("Threads:"):
                    threads += int(line.split()[1])
            for t in os.listdir(f"/proc/{p}/task"):
                ns += int(open(f"/proc/{p}/task/{t}/schedstat").read().split()[0])
        except OSError:
            pass
    return pss, threads, ns / 1e9


def pty_nr():
    return int(open("/proc/sys/kernel/pty/nr").read())


def run(kernel, n, work, pw, idle, limit):
    for f in os.listdir(work):
        if f.endswith((".cow", ".out")):
            os.remove(os.path.join(work, f))
    shutil.rmtree(os.path.join(work, ".uml"), ignore_errors=True)
    env = dict(os.environ, HOME=work, TMPDIR="/tmp")
    subprocess.run(["sync"])
    time.sleep(1)
    avail0, kern0, ptys0 = meminfo("MemAvailable"), kernel_kib(), pty_nr()
    procs, outs = [], []
    load = float(open("/proc/loadavg").read().split()[0])
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start, busy0 = time.monotonic(), host_busy()
    for i in range(n):
        out = open(os.path.join(work, f"g{i}.out"), "wb")
        kw = dict(cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out,
                  stderr=subprocess.STDOUT)
        if kernel == "linux":
            p = subprocess.Popen(command(kernel, i, pw), process_group=0, **kw)
        else:
            p = subprocess.Popen(command(kernel, i, pw),
                                 preexec_fn=seccomp_noxstate, **kw)
        out.close()
        procs.append(p)
        outs.append(os.path.join(work, f"g{i}.out"))
    spawned = time.monotonic() - start
    up = [False] * n
    failed = []
    while not all(up) and time.monotonic() - start < limit:
        for i in range(n):
            if up[i]:
                continue
            with open(outs[i], "rb") as f:
                if MARKER.encode() in f.read():
                    up[i] = True
                    continue
            if procs[i].poll() is not None:
                up[i] = True
                failed.append(i)
        time.sleep(0.02)
    all_up, busy = time.monotonic() - start, host_busy() - busy0
    time.sleep(idle)
    pids = descendants([p.pid for p in procs])
    pss, threads, cpu = usage(pids)
    avail1, kern1, ptys1 = meminfo("MemAvailable"), kernel_kib(), pty_nr()
    ok = n - len(failed) - up.count(False)
    failed += [i for i in range(n) if not up[i]]
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    time.sleep(5)  # let the kernel finish tearing the namespaces down
    life = ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
    for i in failed[:3]:
        text = open(outs[i], errors="replace").read()[-800:]
        sys.stderr.write(f"--- {kernel} guest {i} did not come up:\n{text}\n")
    return dict(kernel=kernel, n=n, ok=ok, spawned=spawned, all_up=all_up,
                pss_mib=pss / 1024 / n, avail_mib=(avail0 - avail1) / 1024 / n,
                kern_mib=(kern1 - kern0) / 1024 / n, cpu_ms=cpu * 1000 / n,
                busy_ms=busy * 1000 / n, load=load, life_ms=life * 1000 / n,
                threads=threads / n, procs=len(pids) / n,
                ptys=(ptys1 - ptys0) / n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--counts", default="1,10,50,200,1000")
    ap.add_argument("--uml-max", type=int, default=50)
    ap.add_argument("--idle", type=float, default=3.0)
    ap.add_argument("--workdir", default="bench-data/many")
    a = ap.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sh("cargo", "build", "--release", "--bin", "linux", stdout=subprocess.DEVNULL,
       stderr=subprocess.DEVNULL)
    if os.stat("/dev/fuse").st_mode & 0o006 != 0o006:
        sys.exit("kernel_many: /dev/fuse: not mode 0666 (as .ci/run sets it)")
    work = os.path.abspath(a.workdir)
    pw = prepare(work)
    print("| kernel | N | load | up | spawn s | all up s | host busy ms/guest | CPU ms/guest at idle | CPU ms/guest start to exit | PSS MiB/guest "
          "| kernel MiB/guest | MemAvailable drop MiB/guest | threads/guest "
          "| procs/guest | ptys/guest |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in [int(c) for c in a.counts.split(",")]:
        for kernel in ("linux", "linux.uml"):
            if kernel == "linux.uml" and (n > a.uml_max or not shutil.which("linux.uml")):
                continue
            # linux.uml boots take seconds of CPU each: a longer limit.
            limit = 60 + n * 0.5 if kernel == "linux" else 120 + n * 2
            r = run(kernel, n, work, pw, a.idle, limit)
            print(f"| {r['kernel']} | {n} | {r['load']:.1f} | {r['ok']} | {r['spawned']:.2f} | "
                  f"{r['all_up']:.2f} | {r['busy_ms']:.0f} | {r['cpu_ms']:.1f} | {r['life_ms']:.1f} | {r['pss_mib']:.2f} | "
                  f"{r['kern_mib']:.2f} | {r['avail_mib']:.2f} | "
                  f"{r['threads']:.1f} | {r['procs']:.1f} | {r['ptys']:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
