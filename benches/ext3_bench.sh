#!/usr/bin/env bash
# Benchmark of uml_fs against the Debian peers (see BENCHMARKS.md):
#  - extract: `uml_fs extract IMG / DEST` vs `debugfs -R "rdump / DEST" IMG`
#    vs `cp -a` of the source tree, on a 1 GiB ext3 image of real files;
#  - cat: `uml_fs cat IMG /big` vs host `cat` of the same 500 MB file.
# Warm cache; each command runs RUNS times and the best time is kept.
# Usage: benches/ext3_bench.sh [WORKDIR]   (default: ./bench-data/ext3)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin uml_fs >/dev/null 2>&1
UML_FS=$PWD/target/release/uml_fs
W=${1:-$PWD/bench-data/ext3}
RUNS=${RUNS:-3}
SRC_DIRS=${SRC_DIRS:-"/usr/bin /usr/share/doc /usr/share/man /usr/share/perl"}
mkdir -p "$W"
export PATH=$PATH:/sbin:/usr/sbin

# time_of CMD...: wall time in seconds of one run.
time_of() {
    local s e
    s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
    echo "$e - $s" | bc
}
min() { echo "if ($1 < $2) $1 else $2" | bc; }

if [ ! -f "$W/tree.img" ]; then
    rm -rf "$W/src"; mkdir -p "$W/src"
    for d in $SRC_DIRS; do cp -a "$d" "$W/src/$(echo "$d" | tr / _)"; done
    mke2fs -q -F -t ext3 -d "$W/src" "$W/tree.img" 1G
fi
if [ ! -f "$W/big.img" ]; then
    head -c 500M /dev/urandom > "$W/big"
    mkdir -p "$W/bigsrc"; mv "$W/big" "$W/bigsrc/big"
    mke2fs -q -F -t ext3 -d "$W/bigsrc" "$W/big.img" 1G
fi
SRC_MB=$(du -sm "$W/src" | cut -f1)
FILES=$(find "$W/src" | wc -l)
# Warm the caches.
cat "$W/tree.img" "$W/big.img" "$W/bigsrc/big" >/dev/null
find "$W/src" -type f -exec cat {} + >/dev/null

# Destinations on tmpfs by default: on a disk filesystem the host's inode
# allocator dominates and swings 10x between runs (freshly deleted inodes
# of the previous run are skipped one by one); DEST_DIR=... to override.
DEST_DIR=${DEST_DIR:-/dev/shm}
D=$DEST_DIR/umlkit-ext3-bench-dest
rm -rf "$D"; mkdir -p "$D"
# Every run writes a fresh directory and nothing is deleted until the end:
# deleting between runs leaves freshly freed inodes that slow the next
# writer's inode allocation (by up to 10x on ext4), whoever it is.
# The tools take turns; the best of RUNS is kept.
t_cp=999999; t_ours=999999; t_debugfs=999999; t_cat_host=999999; t_cat_ours=999999
run_cp() { sync; sleep 1; t_cp=$(min "$(time_of cp -a "$W/src" "$D/cp$1")" "$t_cp"); }
run_ours() { sync; sleep 1; t_ours=$(min "$(time_of "$UML_FS" extract "$W/tree.img" / "$D/ours$1")" "$t_ours"); }
run_debugfs() {
    mkdir "$D/debugfs$1"; sync; sleep 1
    t_debugfs=$(min "$(time_of debugfs -R "rdump / $D/debugfs$1" "$W/tree.img")" "$t_debugfs")
}
for i in $(seq "$RUNS"); do
    # Each round starts with another tool.
    case $((i % 3)) in
        1) run_cp "$i"; run_ours "$i"; run_debugfs "$i" ;;
        2) run_ours "$i"; run_debugfs "$i"; run_cp "$i" ;;
        0) run_debugfs "$i"; run_cp "$i"; run_ours "$i" ;;
    esac
    t_cat_host=$(min "$(time_of cat "$W/bigsrc/big")" "$t_cat_host")
    t_cat_ours=$(min "$(time_of "$UML_FS" cat "$W/big.img" /big)" "$t_cat_ours")
done
rm -rf "$D"

echo "source tree: $SRC_MB MB, $FILES paths ($SRC_DIRS); image 1 GiB ext3; destination $DEST_DIR; best of $RUNS"
echo "extract: cp -a ${t_cp}s  uml_fs ${t_ours}s  debugfs rdump ${t_debugfs}s"
echo "extract ratios: uml_fs/cp -a = $(echo "scale=3; $t_ours / $t_cp" | bc)  uml_fs/debugfs = $(echo "scale=3; $t_ours / $t_debugfs" | bc)"
echo "cat 500 MB: host cat ${t_cat_host}s ($(echo "scale=0; 500 / $t_cat_host" | bc) MB/s)  uml_fs ${t_cat_ours}s ($(echo "scale=0; 500 / $t_cat_ours" | bc) MB/s)"
echo "cat throughput ratio uml_fs/host: $(echo "scale=3; $t_cat_host / $t_cat_ours" | bc)"
