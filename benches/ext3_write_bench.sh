#!/bin/sh
# Benchmark: `uml_fs put` of a tree into an empty ext3 image against
# `mke2fs -d` building the same image and `debugfs -w` with write commands.
# Usage: benches/ext3_write_bench.sh [WORKDIR]   (needs e2fsprogs; builds release)
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin uml_fs
UML_FS=$PWD/target/release/uml_fs
W=${1:-$(mktemp -d)}
mkdir -p "$W"
now() { date +%s.%N; }
span() { echo "$2 - $1" | bc; }

make_tree() { # $1=dir $2=kind
    rm -rf "$1"; mkdir -p "$1"
    if [ "$2" = big ]; then
        for d in 0 1 2 3 4 5 6 7 8 9; do
            mkdir -p "$1/d$d"
            for f in $(seq 0 19); do
                head -c 1572864 /dev/urandom > "$1/d$d/f$f"
            done
        done
    else
        for d in $(seq 0 9); do
            mkdir -p "$1/d$d"
            for f in $(seq 0 999); do
                head -c 1024 /dev/urandom > "$1/d$d/f$f"
            done
        done
    fi
}

debugfs_cmds() { # $1=tree
    (cd "$1" && find . -mindepth 1 -type d | sed 's|^\./|mkdir /|'
     cd "$1" && find . -type f | sed 's|^\./||' | while read -r f; do echo "write $1/$f /$f"; done)
}

run() { # $1=kind $2=size
    T=$W/tree-$1; I=$W/img-$1
    make_tree "$T" "$1"
    du -sh "$T" | sed "s/^/tree: /"
    sync
    for round in 1 2 3; do
        # Order rotates so no tool always runs with a warmer cache.
        for tool in mke2fs ours debugfs; do
            rm -f "$I"
            case $tool in
            mke2fs)
                t0=$(now); mke2fs -q -F -t ext3 -d "$T" "$I" "$2"; sync; t1=$(now) ;;
            ours)
                t0=$(now); mke2fs -q -F -t ext3 "$I" "$2"; "$UML_FS" put --owner 0:0 "$I" "$T" /t; sync; t1=$(now) ;;
            debugfs)
                debugfs_cmds "$T" > "$W/cmds"
                t0=$(now); mke2fs -q -F -t ext3 "$I" "$2"; debugfs -w -f "$W/cmds" "$I" >/dev/null 2>&1; sync; t1=$(now) ;;
            esac
            e2fsck -fn "$I" >/dev/null 2>&1 || echo "$tool: e2fsck -fn NOT clean"
            echo "$1 round $round $tool: $(span "$t0" "$t1") s"
        done
    done
}

run big 1G
run small 256M
