#!/usr/bin/env python3
"""Benchmark: uml_moo merges, umlkit's against Debian's, on the same data in
the same run, with `cp --sparse=always` as the floor and qemu-img on the
equivalent qcow2 overlay as the tool a user would otherwise pick.

Usage: benches/cow_merge.py [--size-mib 1024] [--runs 3] [--source /usr/share] [--data DIR]
Needs: uml-utilities, qemu-utils, e2fsprogs; a release build (cargo build --release).
Data goes to DIR (default bench-data/, git-ignored); the cache is warm.
"""
import argparse, os, random, shutil, statistics, struct, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.environ.get("UMLKIT_UML_MOO", os.path.join(ROOT, "target", "release", "uml_moo"))
MTIME = 1_700_000_000


def sh(*args, **kw):
    return subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def make_backing(path, size_mib, source):
    if os.path.exists(path) and os.path.getsize(path) == size_mib << 20:
        return
    print(f"building {size_mib} MiB ext3 image from {source} ...", file=sys.stderr)
    sh("mke2fs", "-q", "-F", "-t", "ext3", "-d", source, path, f"{size_mib}M")
    os.utime(path, (MTIME, MTIME))


def make_cow(cow, backing, writes, seed):
    """A v3 COW (via Debian's uml_mkcow) with `writes` = [(offset, length)]
    of random data, bitmap bits set, as the kernel leaves it."""
    os.utime(backing, (MTIME, MTIME))
    if os.path.exists(cow):
        os.unlink(cow)
    sh("uml_mkcow", cow, backing)
    size = os.path.getsize(backing)
    sectors = size // 512
    bitmap_off = 8192
    data_off = (bitmap_off + (sectors + 7) // 8 + 4095) // 4096 * 4096
    bitmap = bytearray((sectors + 7) // 8)
    rnd = random.Random(seed)
    with open(cow, "r+b") as f:
        for off, length in writes:
            f.seek(data_off + off)
            block = rnd.randbytes(min(length, 1 << 20))
            for at in range(0, length, len(block)):
                f.write(block[: min(len(block), length - at)])
            for s in range(off // 512, (off + length) // 512):
                bitmap[s >> 3] |= 1 << (s & 7)
        f.seek(bitmap_off)
        f.write(bitmap)


def dirty_patterns(size):
    rnd = random.Random(1)
    blocks = size // 4096
    one = sorted(rnd.sample(range(blocks), blocks // 100))
    ten = sorted(rnd.sample(range(size >> 20), (size >> 20) // 10))
    return {
        "1% (scattered 4 KiB)": [(b * 4096, 4096) for b in one],
        "10% (1 MiB runs)": [(m << 20, 1 << 20) for m in ten],
        "100%": [(0, size)] if size <= 1 << 30 else [(o, 1 << 30) for o in range(0, size, 1 << 30)],
    }


def timed(cmd, prepare=None, runs=3):
    times = []
    for _ in range(runs):
        if prepare:
            prepare()
        # Start every run with no dirty pages left by the previous one, so
        # that no run pays for another's writeback.
        os.sync()
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, shell=isinstance(cmd, str))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--source", default="/usr/share", help="tree copied into the image")
    ap.add_argument("--data", default=os.path.join(ROOT, "bench-data"))
    a = ap.parse_args()
    os.makedirs(a.data, exist_ok=True)
    d = lambda n: os.path.join(a.data, n)
    backing, pristine = d("root_fs"), d("root_fs.pristine")
    make_backing(pristine, a.size_mib, a.source)
    size = os.path.getsize(pristine)

    def restore():
        sh("cp", "--sparse=always", pristine, backing)
        os.utime(backing, (MTIME, MTIME))

    restore()
    out = d("out.img")
    rows = []
    cp_time = timed(["cp", "--sparse=always", backing, out], runs=a.runs)
    cp_sync = timed(f"cp --sparse=always {backing} {out} && sync {out}", runs=a.runs)
    print(f"cp --sparse=always: {cp_time:.3f} s   (+ sync: {cp_sync:.3f} s)")
    for name, writes in dirty_patterns(size).items():
        cow = d("a.cow")
        restore()
        make_cow(cow, backing, writes, 7)
        # The equivalent qcow2 overlay: the clusters that differ from the backing.
        merged = d("merged.raw")
        sh(OURS, "-q", "--no-sync", cow, merged)
        qcow = d("a.qcow2")
        sh("qemu-img", "convert", "-O", "qcow2", "-B", backing, "-F", "raw", merged, qcow)
        os.utime(backing, (MTIME, MTIME))
        new_ours = timed([OURS, "-q", "--no-sync", cow, out], runs=a.runs)
        new_ours_sync = timed([OURS, "-q", cow, out], runs=a.runs)
        new_deb = timed(["uml_moo", cow, out], runs=a.runs)
        new_qemu = timed(["qemu-img", "convert", "-O", "raw", qcow, out], runs=a.runs)
        in_ours = timed([OURS, "-q", "--no-sync", "-d", cow], prepare=restore, runs=a.runs)
        in_deb = timed(["uml_moo", "-d", cow], prepare=restore, runs=a.runs)

        def qemu_commit_prepare():
            restore()
            sh("qemu-img", "convert", "-O", "qcow2", "-B", backing, "-F", "raw", merged, qcow)

        in_qemu = timed(["qemu-img", "commit", "-q", qcow], prepare=qemu_commit_prepare, runs=a.runs)
        rows.append((name, new_ours, new_ours_sync, new_deb, new_qemu, in_ours, in_deb, in_qemu))
        restore()

    print(f"\nimage {size >> 20} MiB, median of {a.runs} warm runs, seconds\n")
    print("| dirty | ours new | ours new+fsync | Debian new | qemu-img convert | ours/cp | Debian/ours | ours -d | Debian -d | qemu-img commit | Debian -d/ours -d |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, no, nos, nd, nq, io, id_, iq in rows:
        print(f"| {name} | {no:.3f} | {nos:.3f} | {nd:.3f} | {nq:.3f} | {no / cp_time:.2f}x | {nd / no:.1f}x | {io:.3f} | {id_:.3f} | {iq:.3f} | {id_ / io:.1f}x |")


if __name__ == "__main__":
    main()
