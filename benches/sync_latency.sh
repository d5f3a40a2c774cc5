#!/usr/bin/env bash
# Guest sync latency and write throughput (see BENCHMARKS.md, "Guest sync
# latency and write throughput"):
#  - latency of sync(2) (and syncfs(2)) inside a busybox guest on a 512 MiB
#    ext3 image, with nothing dirty, after writing 1 MiB and after writing
#    100 MiB (a new file each round, unlinked after), for this tree's
#    `linux`, the `linux` of BASE_REV (before sync was made durable),
#    Debian's `linux.uml`, and sync(2) on the host itself;
#  - write throughput in the guest: 200 MiB in 1 MiB writes then sync, and
#    5,000 files of 1 KiB then sync, for this tree's `linux` against
#    BASE_REV's (and `linux.uml` for reference), fresh COW file each boot.
# The guest runs benches/syncprobe.c (cc -static; CLOCK_MONOTONIC around
# each call, median and p90).
# Run as root (linux.uml needs it here; `linux` runs as an unprivileged
# user through setpriv, as a user would run it).
# Usage: benches/sync_latency.sh [WORKDIR]   (default: ./bench-data/sync)
# Environment: REPS (sync calls per case, default 20), REPS100 (rounds of
# 100 MiB, default 5), RUNS (throughput boots per kernel, default 3),
# BASE_REV (default 5baf86d), BASE_LINUX (an already built `linux` of
# BASE_REV; otherwise BASE_REV is exported with `git archive` into
# WORKDIR/base-src and built there once, with its own target dir).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin linux >/dev/null 2>&1
W=${1:-$PWD/bench-data/sync}
REPS=${REPS:-20}
REPS100=${REPS100:-5}
RUNS=${RUNS:-3}
BASE_REV=${BASE_REV:-5baf86d}
USER_NAME=${USER_NAME:-umlkit-test}
SHIM=${SHIM:-$PWD/../shared/tools/uml-noxstate}
[ -x "$SHIM" ] || SHIM=/work/shared/tools/uml-noxstate
GT=GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX2,-AVX,-ERMS,-FSRM
export PATH=$PATH:/sbin:/usr/sbin
id "$USER_NAME" >/dev/null 2>&1 || useradd -M -s /bin/sh "$USER_NAME"
U=$(id -u "$USER_NAME"); G=$(id -g "$USER_NAME")
mkdir -p "$W"; chmod 755 "$W"

if [ -z "${BASE_LINUX:-}" ]; then
    if [ ! -x "$W/base-src/target/release/linux" ]; then
        rm -rf "$W/base-src"; mkdir -p "$W/base-src"
        git archive "$BASE_REV" | tar -x -C "$W/base-src"
        (cd "$W/base-src" && cargo build --release --bin linux >/dev/null 2>&1)
    fi
    BASE_LINUX=$W/base-src/target/release/linux
fi
cp target/release/linux "$W/linux-new"
cp "$BASE_LINUX" "$W/linux-base"
cc -O2 -static -o "$W/syncprobe" benches/syncprobe.c

INIT='#!/bin/sh
mount -t proc proc /proc 2>/dev/null
for j in $(echo "$JOBS" | tr , " "); do
  case $j in
    idle) /bin/syncprobe lat /data 0 "$REPS" ;;
    1m) /bin/syncprobe lat /data 1048576 "$REPS" ;;
    100m) /bin/syncprobe lat /data 104857600 "$REPS100" ;;
    idlefs) /bin/syncprobe lat /data 0 "$REPS" syncfs ;;
    1mfs) /bin/syncprobe lat /data 1048576 "$REPS" syncfs ;;
    dd) /bin/syncprobe dd /data 200 ;;
    files) /bin/syncprobe files /data 5000 1024 ;;
  esac
done 2>&1
poweroff -f'
rm -rf "$W/tree"; mkdir -p "$W/tree"/{bin,sbin,etc,proc,sys,dev,tmp,data}
cp /bin/busybox "$W/syncprobe" "$W/tree/bin/"
for a in $(busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$W/tree/bin/$a"; done
printf '%s\n' "$INIT" > "$W/tree/init"; chmod 755 "$W/tree/init"
rm -f "$W/fs"; mke2fs -q -F -t ext3 -d "$W/tree" "$W/fs" 512M
chown -R "$U:$G" "$W"

ours() { # BINARY COW ARGS...: run linux as the unprivileged user
    local bin=$1 cow=$2; shift 2
    (cd "$W" && HOME=$W timeout 900 setpriv --reuid="$U" --regid="$G" --clear-groups -- \
        "./$bin" "ubd0=$cow,fs" root=/dev/ubda rw init=/init con=null con0=fd:0,fd:1 quiet \
        "REPS=$REPS" "REPS100=$REPS100" "$@" </dev/null)
}
theirs() { # COW ARGS...: run linux.uml as root through the shim
    local cow=$1; shift
    (cd "$W" && HOME=$W timeout 900 "$SHIM" linux.uml "ubd0=$cow,fs" root=/dev/ubda rw init=/init \
        mem=256M con=null con0=fd:0,fd:1 quiet "REPS=$REPS" "REPS100=$REPS100" "$@" "$GT" </dev/null)
}
boot() { # KERNEL COW ARGS...: KERNEL is new, base or uml; a fresh COW file
    local k=$1 cow=$2; shift 2
    rm -f "$W/$cow"
    case $k in
        new) ours linux-new "$cow" "$@" ;;
        base) ours linux-base "$cow" "$@" ;;
        uml) theirs "$cow" "$@" ;;
    esac 2>&1 | tr -d '\r' | grep -E '^(lat|dd|files) |syncprobe:' || true
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
ms() { awk '{printf "%.1f", $1 / 1000}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

rm -f "$W"/tp-*.out "$W"/lat-*.out
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Sync latency: one boot per kernel, all cases in it.
for k in new base uml; do
    boot "$k" "lat-$k.cow" JOBS=idle,1m,100m,idlefs,1mfs > "$W/lat-$k.out"
done
mkdir -p "$W/host"
"$W/syncprobe" lat "$W/host" 0 "$REPS" > "$W/lat-host.out"
"$W/syncprobe" lat "$W/host" 1048576 "$REPS" >> "$W/lat-host.out"
"$W/syncprobe" lat "$W/host" 104857600 "$REPS100" >> "$W/lat-host.out"
"$W/syncprobe" lat "$W/host" 0 "$REPS" syncfs >> "$W/lat-host.out"
"$W/syncprobe" lat "$W/host" 1048576 "$REPS" syncfs >> "$W/lat-host.out"
echo "load after latency: $(cut -d' ' -f1-3 /proc/loadavg)"

# Write throughput: RUNS boots per kernel, taking turns (the order rotates
# each round), fresh COW each.
order=(new base uml)
for i in $(seq "$RUNS"); do
    for j in 0 1 2; do
        k=${order[(i + j) % 3]}
        boot "$k" "tp-$k.cow" JOBS=dd,files >> "$W/tp-$k.out"
    done
done
echo "load after throughput: $(cut -d' ' -f1-3 /proc/loadavg)"

cat "$W"/lat-*.out "$W"/tp-*.out | grep syncprobe: && echo "a probe failed (above)" >&2
cell() { # FILE OP BYTES: "median / p90" in ms
    local l; l=$(grep "^lat op=$2 bytes=$3 " "$W/$1" || true)
    [ -n "$l" ] || { echo "-"; return; }
    echo "$(echo "$l" | field median_us | ms) / $(echo "$l" | field p90_us | ms)"
}
wcell() { local l; l=$(grep "^lat op=$2 bytes=$3 " "$W/$1" || true); echo "$l" | field write_ms; }
echo
echo "sync latency, ms, median / p90 (REPS=$REPS, 100 MiB: REPS100=$REPS100); write = median ms of the writes before it"
echo "| call, dirty | host | linux (this tree) | linux ($BASE_REV) | linux.uml |"
echo "|---|---|---|---|---|"
for c in "sync 0" "sync 1048576" "sync 104857600" "syncfs 0" "syncfs 1048576"; do
    set -- $c
    name="$1 $(case $2 in 0) echo 0 ;; 1048576) echo 1 MiB ;; *) echo 100 MiB ;; esac)"
    echo "| $name | $(cell lat-host.out "$1" "$2") | $(cell lat-new.out "$1" "$2") | $(cell lat-base.out "$1" "$2") | $(cell lat-uml.out "$1" "$2") |"
    [ "$2" = 0 ] || echo "| (write) | $(wcell lat-host.out "$1" "$2") | $(wcell lat-new.out "$1" "$2") | $(wcell lat-base.out "$1" "$2") | $(wcell lat-uml.out "$1" "$2") |"
done
echo
med() { grep "^$2 " "$W/$1" | field "$3" | median; }
span() { grep "^$2 " "$W/$1" | field "$3" | sort -n | awk '{a[NR]=$1} END {printf "%s-%s", a[1], a[NR]}'; }
echo "write throughput, ms, median of $RUNS boots (min-max below)"
echo "| job | linux (this tree) | linux ($BASE_REV) | this / base | linux.uml |"
echo "|---|---|---|---|---|"
for r in "dd write_ms 200 MiB written" "dd sync_ms then sync" "dd total_ms write + sync" \
         "files create_ms 5000 x 1 KiB created" "files sync_ms then sync" "files total_ms create + sync"; do
    set -- $r; kind=$1 f=$2; shift 2
    n=$(med tp-new.out "$kind" "$f"); b=$(med tp-base.out "$kind" "$f"); u=$(med tp-uml.out "$kind" "$f")
    ratio=$(awk -v n="$n" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", n / b; else print "-" }')
    echo "| $kind: $* | $n | $b | $ratio | $u |"
    echo "| (min-max) | $(span tp-new.out "$kind" "$f") | $(span tp-base.out "$kind" "$f") | | $(span tp-uml.out "$kind" "$f") |"
done
