#!/usr/bin/env bash
# Benchmark of uml_fs against the Debian peers (see BENCHMARKS-ext3.md):
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

best() { # best wall time in seconds of "$@" over RUNS runs; $CLEAN is run before each
    local best=999999 t s e
    for _ in $(seq "$RUNS"); do
        eval "$CLEAN"
        s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
        t=$(echo "$e - $s" | bc)
        best=$(echo "if ($t < $best) $t else $best" | bc)
    done
    printf '%.3f' "$best"
}

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

D=$W/dest
CLEAN="rm -rf $D; sync"
t_cp=$(best cp -a "$W/src" "$D")
t_ours=$(best "$UML_FS" extract "$W/tree.img" / "$D")
# rdump needs DEST to exist.
CLEAN="rm -rf $D; mkdir -p $D; sync"
t_debugfs=$(best debugfs -R "rdump / $D" "$W/tree.img")
rm -rf "$D"

CLEAN=":"
t_cat_host=$(best cat "$W/bigsrc/big")
t_cat_ours=$(best "$UML_FS" cat "$W/big.img" /big)

echo "source tree: $SRC_MB MB, $FILES paths ($SRC_DIRS); image 1 GiB ext3"
echo "extract: cp -a ${t_cp}s  uml_fs ${t_ours}s  debugfs rdump ${t_debugfs}s"
echo "extract ratios: uml_fs/cp -a = $(echo "scale=3; $t_ours / $t_cp" | bc)  uml_fs/debugfs = $(echo "scale=3; $t_ours / $t_debugfs" | bc)"
echo "cat 500 MB: host cat ${t_cat_host}s ($(echo "scale=0; 500 / $t_cat_host" | bc) MB/s)  uml_fs ${t_cat_ours}s ($(echo "scale=0; 500 / $t_cat_ours" | bc) MB/s)"
echo "cat throughput ratio uml_fs/host: $(echo "scale=3; $t_cat_host / $t_cat_ours" | bc)"
