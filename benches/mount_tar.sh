#!/bin/bash
# uml_fs mount against fuse2fs (and guestmount when installed), with the
# kernel's own ext4 on a loop device as the floor: tar of a ~300 MB tree
# out of a mounted image and into a mounted empty one.
#
#   cargo build --release && sudo benches/mount_tar.sh
#
# The tree is a copy (made once, under bench-data/mount/) of
# /usr/share/doc, /usr/share/man, /usr/share/perl and /usr/lib/python3.11.
# The images are 1 GiB default ext4 (mke2fs -t ext4; -d for the full one).
# "out": `tar -cf - . | cat > /dev/null` in the read-only mount (cat, so
# that tar reads the data: it skips it when writing to /dev/null);
# "into": `tar -C TREE -cf - . | tar -C MNT -xf -` into the empty image
# mounted read-write, plus the unmount, which for all three tools waits
# until the image is written (uml_fs umount and the kernel's umount do;
# for fuse2fs, run with -f, the script waits for its process to end).
# Every command runs once after a `sync`, page cache warm (the machine is
# shared; not dropped unless DROP_CACHES=1); everything runs as root. The
# written images are checked with e2fsck -fn and their file count.
# TOOLS="kernel uml_fs" runs only those.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release}
DATA=${DATA:-$ROOT/bench-data/mount}
DROP_CACHES=${DROP_CACHES:-0}

[ "$(id -u)" = 0 ] || { echo "mount_tar: needs root (loop mounts)" >&2; exit 1; }
if [ -z "${TOOLS:-}" ]; then
    TOOLS="kernel uml_fs"
    if command -v fuse2fs >/dev/null; then TOOLS="$TOOLS fuse2fs"; fi
    if command -v guestmount >/dev/null; then TOOLS="$TOOLS guestmount"; fi
fi

mkdir -p "$DATA"
MNT=$DATA/mnt
mkdir -p "$MNT"
cleanup() {
    cd /
    if mountpoint -q "$MNT"; then umount "$MNT" || umount -l "$MNT"; fi
    rm -f "$DATA/work.img"
}
trap cleanup EXIT INT TERM

if [ ! -d "$DATA/tree" ]; then
    mkdir -p "$DATA/tree"
    cp -a /usr/share/doc /usr/share/man /usr/share/perl /usr/lib/python3.11 "$DATA/tree/"
fi
FILES=$(find "$DATA/tree" | wc -l)
SIZE=$(du -sm "$DATA/tree" | cut -f1)
[ -f "$DATA/full.img" ] || mke2fs -q -t ext4 -d "$DATA/tree" "$DATA/full.img" 1G
[ -f "$DATA/empty.img" ] || mke2fs -q -t ext4 "$DATA/empty.img" 1G

# inodes IMAGE: the used-inode count of e2fsck -fn (which must pass).
inodes() { e2fsck -fn "$1" | sed -n 's/.*: \([0-9]*\)\/[0-9]* files.*/\1/p'; }
WANT=$(inodes "$DATA/full.img")

FUSE_PID=
# mnt TOOL RO|RW: mounts work.img at $MNT.
mnt() {
    local ro=$2
    case $1 in
    kernel) mount -o loop,$(echo "$ro" | tr A-Z a-z) "$DATA/work.img" "$MNT" ;;
    uml_fs) "$BIN/uml_fs" mount -o "$(echo "$ro" | tr A-Z a-z)" "$DATA/work.img" "$MNT" ;;
    fuse2fs)
        local o=
        [ "$ro" = RO ] && o="-o ro"
        fuse2fs "$DATA/work.img" "$MNT" -f $o &
        FUSE_PID=$!
        for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done ;;
    guestmount)
        local o=--rw
        [ "$ro" = RO ] && o=--ro
        guestmount -a "$DATA/work.img" -m /dev/sda $o "$MNT" ;;
    esac
    mountpoint -q "$MNT"
}
# unmnt TOOL: unmounts and waits until the image is written.
unmnt() {
    case $1 in
    kernel) umount "$MNT" ;;
    uml_fs) "$BIN/uml_fs" umount "$MNT" ;;
    fuse2fs) fusermount3 -u "$MNT" || umount "$MNT"; wait "$FUSE_PID" ;;
    guestmount) guestunmount "$MNT" ;;
    esac
}
now() { date +%s.%N; }
before() {
    sync
    if [ "$DROP_CACHES" = 1 ]; then echo 3 > /proc/sys/vm/drop_caches; fi
}
since() { awk "BEGIN { printf \"%.2f\", $(now) - $1 }"; }

echo "tree: $SIZE MB, $FILES paths"
echo "| tool | tar out of the mount | tar into the mount + unmount |"
echo "|---|---|---|"
for tool in $TOOLS; do
    cp --sparse=always "$DATA/full.img" "$DATA/work.img"
    mnt "$tool" RO
    before
    t0=$(now)
    tar -C "$MNT" -cf - . | cat > /dev/null
    out=$(since "$t0")
    unmnt "$tool"

    cp --sparse=always "$DATA/empty.img" "$DATA/work.img"
    mnt "$tool" RW
    before
    t0=$(now)
    tar -C "$DATA/tree" -cf - . | tar -C "$MNT" -xf -
    unmnt "$tool"
    into=$(since "$t0")
    got=$(inodes "$DATA/work.img")
    [ "$got" = "$WANT" ] || { echo "mount_tar: $tool: $got inodes written, mke2fs -d made $WANT" >&2; exit 1; }
    echo "| $tool | $out s | $into s |"
done
