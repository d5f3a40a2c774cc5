#!/bin/sh
# Benchmark: one directory of 50,000 names built and searched with uml_fs,
# on an ext4 image with dir_index (the writer keeps the htree index, the
# reader's lookups go through it) and on one made with -O ^dir_index (a
# linear directory: what the writer left of every directory it changed
# before it kept indexes, so this is the "before" side).
#  - create: `uml_fs put IMG TREE /` of a host tree holding /big with
#    N empty files (N creates in one directory);
#  - lookup: `uml_fs cat IMG /big/NAME...` of LOOKUPS of those names
#    (each path resolved: one lookup in /big), in batches through xargs.
# Usage: benches/ext4_htree_bench.sh [WORKDIR]
#   N (default 50000) names, LOOKUPS (default N) lookups; the time per
#   lookup is reported too. Prints the index depth debugfs sees.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin uml_fs
UML_FS=$PWD/target/release/uml_fs
W=${1:-$(mktemp -d)}
N=${N:-50000}
LOOKUPS=${LOOKUPS:-$N}
export PATH=$PATH:/sbin:/usr/sbin
mkdir -p "$W"
now() { date +%s.%N; }
span() { echo "$2 - $1" | bc; }

if [ ! -d "$W/tree/big" ] || [ "$(ls "$W/tree/big" | wc -l)" -ne "$N" ]; then
    rm -rf "$W/tree"; mkdir -p "$W/tree/big"
    (cd "$W/tree/big" && seq -f "file-%06g-with-a-name" 1 "$N" | xargs touch)
fi
seq -f "/big/file-%06g-with-a-name" 1 "$N" | shuf --random-source=/dev/zero > "$W/paths"

run() { # $1=label $2=mke2fs -O value $3=lookups
    I=$W/$1.img
    rm -f "$I"
    mke2fs -q -F -t ext4 -b 4096 -N $((N + 1000)) -O "$2" "$I" 512M
    t0=$(now); "$UML_FS" put "$I" "$W/tree/big" /big; t1=$(now)
    e2fsck -fn "$I" >/dev/null
    head -n "$3" "$W/paths" > "$W/some"
    t2=$(now); xargs "$UML_FS" cat "$I" < "$W/some" >/dev/null; t3=$(now)
    c=$(span "$t0" "$t1"); l=$(span "$t2" "$t3")
    per=$(echo "scale=1; $l * 1000000 / $3" | bc)
    echo "$1: $N creates ${c}s; $3 lookups ${l}s (${per} us each)"
    debugfs -R "htree /big" "$I" 2>/dev/null | grep -m1 "Indirect levels" || echo "  (no index)"
}
run indexed dir_index "$LOOKUPS"
run linear ^dir_index "$LOOKUPS"
