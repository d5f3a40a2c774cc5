#!/bin/sh
# Benchmark (issue 15): `uml_fs put` of a tree into an empty DEFAULT ext4 image
# (mke2fs -t ext4: metadata_csum, 64bit, flex_bg, extents, huge_file, dir_nlink,
# extra_isize) against `mke2fs -t ext4 -d` (format and copy in one) and
# `debugfs -w` with write commands. Ours = `mke2fs -t ext4` + `uml_fs put`, so the
# format is counted on both sides.
#
# Usage: benches/ext4_put_bench.sh [WORKDIR]
#   ROUNDS=3            rounds per tree (the tool order rotates each round)
#   TREES="small big"   small: 10,000 files of 1 KiB in 10 directories;
#                       big: 300 MB, 10 directories x 20 files of 1.5 MiB
#   UML_FS_BEFORE=PATH  also time another uml_fs build ("before") in the same run
#   SIZE=1G             image size
# Needs e2fsprogs and bc; builds uml_fs in release mode. Every image is checked
# with `e2fsck -fn`. Prints each timing (wall clock, and the CPU time, user+sys,
# of the step's processes: steadier than wall time on a loaded machine), then the
# medians and their ratios to mke2fs -d.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin uml_fs
UML_FS=$PWD/target/release/uml_fs
W=${1:-$(mktemp -d)}
ROUNDS=${ROUNDS:-3}
TREES=${TREES:-small big}
SIZE=${SIZE:-1G} # 1G: 4 KiB blocks, mke2fs's "default" usage type (below 512M: "small", 1 KiB)
mkdir -p "$W"
now() { date +%s.%N; }
span() { echo "$2 - $1" | bc; }
median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

make_tree() { # $1=dir $2=kind
    [ -e "$1/.done" ] && return 0
    rm -rf "$1"; mkdir -p "$1"
    for d in 0 1 2 3 4 5 6 7 8 9; do
        mkdir -p "$1/d$d"
        if [ "$2" = big ]; then
            for f in $(seq 0 19); do head -c 1572864 /dev/urandom > "$1/d$d/f$f"; done
        else
            for f in $(seq 0 999); do head -c 1024 /dev/urandom > "$1/d$d/f$f"; done
        fi
    done
    touch "$1/.done"
}

debugfs_cmds() { # $1=tree
    (cd "$1" && find . -mindepth 1 -type d | sed 's|^\./|mkdir /|'
     cd "$1" && find . -type f ! -name .done | sed 's|^\./||' | while read -r f; do echo "write $1/$f /$f"; done)
}

one() { # $1=tool $2=tree $3=image; prints "wall cpu" (cpu: user+sys of the step)
    rm -f "$3" # (mke2fs says "Creating regular file" even with -q)
    case $1 in
    mke2fs) step="mke2fs -q -F -t ext4 -d '$2' '$3' $SIZE" ;;
    ours) step="mke2fs -q -F -t ext4 '$3' $SIZE && '$UML_FS' put --owner 0:0 '$3' '$2' /t" ;;
    before) step="mke2fs -q -F -t ext4 '$3' $SIZE && '$UML_FS_BEFORE' put --owner 0:0 '$3' '$2' /t" ;;
    debugfs) step="mke2fs -q -F -t ext4 '$3' $SIZE && debugfs -w -f '$W/cmds' '$3' >/dev/null 2>&1" ;;
    esac
    t0=$(now)
    cpu=$(/usr/bin/time -f '%U %S' sh -c "$step >/dev/null; sync" 2>&1 | tail -1 | awk '{print $1 + $2}')
    t1=$(now)
    e2fsck -fn "$3" >/dev/null 2>&1 || echo "$1: e2fsck -fn NOT clean" >&2
    echo "$(span "$t0" "$t1") $cpu"
}

run() { # $1=kind
    T=$W/tree-$1; I=$W/img-$1
    make_tree "$T" "$1"
    debugfs_cmds "$T" > "$W/cmds"
    echo "tree $1: $(du -sh --exclude=.done "$T" | cut -f1), $(find "$T" -type f ! -name .done | wc -l) files"
    tools="mke2fs ours debugfs"
    [ -n "${UML_FS_BEFORE:-}" ] && tools="mke2fs before ours debugfs"
    sync
    for tool in $tools; do : > "$W/wall-$1-$tool"; : > "$W/cpu-$1-$tool"; done
    round=1
    while [ "$round" -le "$ROUNDS" ]; do
        for tool in $tools; do
            r=$(one "$tool" "$T" "$I")
            echo "$r" | cut -d' ' -f1 >> "$W/wall-$1-$tool"
            echo "$r" | cut -d' ' -f2 >> "$W/cpu-$1-$tool"
            echo "$1 round $round $tool: wall $(echo "$r" | cut -d' ' -f1) s, cpu $(echo "$r" | cut -d' ' -f2) s (load $(cut -d' ' -f1-3 /proc/loadavg))"
        done
        # Rotate the order so no tool always runs with a warmer cache.
        tools="$(echo "$tools" | cut -d' ' -f2-) $(echo "$tools" | cut -d' ' -f1)"
        round=$((round + 1))
    done
    mw=$(median < "$W/wall-$1-mke2fs"); mc=$(median < "$W/cpu-$1-mke2fs")
    for tool in $tools; do
        w=$(median < "$W/wall-$1-$tool"); c=$(median < "$W/cpu-$1-$tool")
        echo "$1 median $tool: wall $w s ($(echo "scale=2; $w / $mw" | bc)x mke2fs -d), cpu $c s ($(echo "scale=2; $c / $mc" | bc)x)"
    done
}

echo "load before: $(cat /proc/loadavg); $(mke2fs -V 2>&1 | head -1)"
for t in $TREES; do run "$t"; done
echo "load after: $(cat /proc/loadavg)"
