#!/bin/sh
# uml_moo new-file merges of a 1 GiB image at 1 %, 10 % and 100 % dirty,
# on a loop-mounted ext4 and a loop-mounted XFS (mkfs.xfs -m reflink=1),
# against qemu-img convert -O raw of the equivalent qcow2 overlay, cp of
# the backing file (cp --reflink=always on XFS) and Debian's uml_moo.
#
#   cargo build --release && sudo benches/moo_dirty.sh
#
# Needs root (loop mounts), qemu-img, mkfs.xfs, mkfs.ext4, python3 and
# Debian's uml_moo. The backing file is 1 GiB: 768 MiB of random data and
# a 256 MiB hole. The COW files are made by uml_mkcow and filled with
# random data by the script (1 %: 2621 scattered 4 KiB blocks; 10 %: 102
# runs of 1 MiB; 100 %: all of it); the qcow2 overlay timed against is
# `uml_cow convert -O qcow2` of that COW (64 KiB clusters over the same
# backing file, so it holds the same data).
# Every command runs once, on the same files, after a `sync`; the page
# cache is warm (not dropped: the machine is shared) unless DROP_CACHES=1.
# FILESYSTEMS="xfs" runs one of the two.
# Times are wall-clock seconds; every output is compared with ours. Only
# `uml_moo` without --no-sync fsyncs its output: qemu-img convert writes
# with cache=unsafe by default (no flush), cp and Debian's uml_moo do not
# sync either, so the ratios are taken against `uml_moo --no-sync`.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release}
DATA=${DATA:-$ROOT/bench-data/moo}
DEBIAN_MOO=${DEBIAN_MOO:-/usr/bin/uml_moo}
DROP_CACHES=${DROP_CACHES:-0}
FILESYSTEMS=${FILESYSTEMS:-ext4 xfs}

[ "$(id -u)" = 0 ] || { echo "moo_dirty: needs root (loop mounts)" >&2; exit 1; }
for p in qemu-img python3 mkfs.xfs mkfs.ext4 "$DEBIAN_MOO" "$BIN/uml_moo" "$BIN/uml_cow" "$BIN/uml_mkcow"; do
    command -v "$p" >/dev/null || { echo "moo_dirty: $p: not found" >&2; exit 1; }
done

mkdir -p "$DATA"
MNT="$DATA/mnt"
cleanup() {
    cd /
    if mountpoint -q "$MNT"; then umount "$MNT"; fi
    rm -f "$DATA/fs.img"
}
trap cleanup EXIT INT TERM

# The random part of the backing file, made once.
if [ ! -f "$DATA/random-768M" ]; then
    head -c 768M /dev/urandom > "$DATA/random-768M"
fi

now() { date +%s.%N; }
# timed VAR COMMAND...: runs COMMAND after a sync (and a cache drop when
# asked), sets VAR to its wall-clock seconds.
timed() {
    var=$1; shift
    sync
    if [ "$DROP_CACHES" = 1 ]; then echo 3 > /proc/sys/vm/drop_caches; fi
    t0=$(now)
    "$@"
    t1=$(now)
    eval "$var=$(awk "BEGIN { printf \"%.3f\", $t1 - $t0 }")"
}
ratio() { awk "BEGIN { printf \"%.1fx\", $1 / $2 }"; }

# dirty COW PCT: writes random data into the sectors of a fresh COW file,
# as a guest would (data area and bitmap, offsets from uml_cow info).
dirty() {
    python3 - "$1" "$2" "$("$BIN/uml_cow" info --json "$1")" <<'EOF'
import json, os, random, sys
cow, pct, info = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
size, mib, ss = info["size"], 1 << 20, info["sector_size"]
rng = random.Random(18)
if pct == 1:
    spans = [(b * 4096, 4096) for b in sorted(rng.sample(range(size // 4096), size // 4096 // 100))]
elif pct == 10:
    spans = [(m * mib, mib) for m in sorted(rng.sample(range(size // mib), size // mib // 10))]
else:
    spans = [(0, size)]
bitmap = bytearray(size // ss // 8)
with open(cow, "r+b") as f:
    for off, n in spans:
        for at in range(off, off + n, 64 * mib):
            chunk = min(64 * mib, off + n - at)
            f.seek(info["data_offset"] + at)
            f.write(os.urandom(chunk))
        for s in range(off // ss, (off + n) // ss):
            bitmap[s // 8] |= 1 << (s % 8)
    f.seek(info["bitmap_offset"])
    f.write(bitmap)
EOF
}

echo "| fs | dirty | ours (fsync) | ours --no-sync | qemu-img convert | cp of backing | Debian uml_moo | qemu-img / ours --no-sync | Debian / ours --no-sync |"
echo "|---|---|---|---|---|---|---|---|---|"
for fs in $FILESYSTEMS; do
    truncate -s 8G "$DATA/fs.img"
    if [ "$fs" = xfs ]; then
        mkfs.xfs -q -f -m reflink=1 "$DATA/fs.img"
        cp_flags=--reflink=always
    else
        mkfs.ext4 -q -F "$DATA/fs.img"
        cp_flags=--sparse=always
    fi
    mkdir -p "$MNT"
    mount -o loop "$DATA/fs.img" "$MNT"
    cd "$MNT"
    head -c 512M "$DATA/random-768M" > base.img
    truncate -s 768M base.img
    tail -c 256M "$DATA/random-768M" >> base.img
    for pct in 1 10 100; do
        "$BIN/uml_mkcow" d.cow base.img > /dev/null
        dirty d.cow "$pct"
        "$BIN/uml_cow" convert -q -O qcow2 d.cow q.qcow2
        timed ours "$BIN/uml_moo" -q d.cow ours.img
        rm ours.img
        timed nosync "$BIN/uml_moo" -q --no-sync d.cow ours.img
        timed qemu qemu-img convert -O raw q.qcow2 qemu.img
        cmp ours.img qemu.img
        rm qemu.img
        timed cp cp $cp_flags base.img cp.img
        rm cp.img
        timed deb "$DEBIAN_MOO" d.cow deb.img > /dev/null
        cmp ours.img deb.img
        echo "| $fs | $pct % | $ours | $nosync | $qemu | $cp | $deb | $(ratio "$qemu" "$nosync") | $(ratio "$deb" "$nosync") |"
        rm -f ours.img deb.img d.cow q.qcow2
    done
    cd /
    umount "$MNT"
    rm -f "$DATA/fs.img"
done
