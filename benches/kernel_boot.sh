#!/usr/bin/env bash
# Benchmark of the guest kernel `linux` against Debian's `linux.uml` on the
# same images, in the same run (see BENCHMARKS.md):
#  - boot to halt of a busybox guest whose init only runs `poweroff -f`;
#  - in a guest on a 1 GiB ext3 image holding about 300 MB of real files:
#    `tar cf - /data | wc -c`, `find /data | wc -l`, `ls -lR /data`, cold
#    (host page cache dropped, fresh boot) and warm (second run, same boot),
#    against the same commands on the host tree.
# Run as root (linux.uml needs it here; `linux` runs as an unprivileged
# user through setpriv, as a user would run it).
# Usage: benches/kernel_boot.sh [WORKDIR]   (default: ./bench-data/kernel)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin linux >/dev/null 2>&1
W=${1:-$PWD/bench-data/kernel}
RUNS=${RUNS:-11}
SRC_DIRS=${SRC_DIRS:-"/usr/lib/gcc /usr/lib/python3 /usr/lib/python3.11 /usr/share/perl /usr/share/doc"}
USER_NAME=${USER_NAME:-umlkit-test}
SHIM=${SHIM:-$PWD/../shared/tools/uml-noxstate}
[ -x "$SHIM" ] || SHIM=/work/shared/tools/uml-noxstate
GT=GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX2,-AVX,-ERMS,-FSRM
export PATH=$PATH:/sbin:/usr/sbin
id "$USER_NAME" >/dev/null 2>&1 || useradd -M -s /bin/sh "$USER_NAME"
U=$(id -u "$USER_NAME"); G=$(id -g "$USER_NAME")
mkdir -p "$W"; chmod 755 "$W"
cp target/release/linux "$W/linux"

mktree() { # DIR INIT
    rm -rf "$1"; mkdir -p "$1"/{bin,sbin,etc,proc,sys,dev,tmp,data}
    cp /bin/busybox "$1/bin/"
    for a in $(busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$1/bin/$a"; done
    printf '%s\n' "$2" > "$1/init"; chmod 755 "$1/init"
}
JOBS_INIT='#!/bin/sh
mount -t proc proc /proc 2>/dev/null
for j in $(echo "$JOBS" | tr , " "); do
  case $j in
    tar) time sh -c "tar cf - /data | wc -c" ;;
    find) time sh -c "find /data | wc -l" ;;
    ls) time sh -c "ls -lR /data | wc -l" ;;
  esac
done 2>&1
poweroff -f'
if [ ! -f "$W/boot_fs" ]; then
    mktree "$W/boot" '#!/bin/sh
poweroff -f'
    mke2fs -q -F -t ext3 -d "$W/boot" "$W/boot_fs" 64M
fi
if [ ! -f "$W/data_fs" ]; then
    mktree "$W/data" "$JOBS_INIT"
    for d in $SRC_DIRS; do [ -d "$d" ] && cp -a "$d" "$W/data/data/$(echo "$d" | tr / _)"; done
    mke2fs -q -F -t ext3 -d "$W/data" "$W/data_fs" 1G
fi
chown -R "$U:$G" "$W"

ours() { # IMAGE COW ARGS...: run linux as the unprivileged user
    local img=$1 cow=$2; shift 2
    (cd "$W" && HOME=$W setpriv --reuid="$U" --regid="$G" --clear-groups -- \
        ./linux "ubd0=$cow,$img" root=/dev/ubda init=/init con=null con0=fd:0,fd:1 quiet "$@" </dev/null)
}
theirs() { # IMAGE COW ARGS...: run linux.uml as root through the shim
    local img=$1 cow=$2; shift 2
    (cd "$W" && HOME=$W timeout 120 "$SHIM" linux.uml "ubd0=$cow,$img" root=/dev/ubda init=/init \
        mem=256M con=null con0=fd:0,fd:1 quiet "$@" "$GT" </dev/null)
}
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

rm -f "$W"/*.cow
ours boot_fs o.cow >/dev/null; theirs boot_fs t.cow >/dev/null   # create the COWs, warm up
b_ours=$(for i in $(seq "$RUNS"); do secs ours boot_fs o.cow; done | median)
b_theirs=$(for i in $(seq "$RUNS"); do secs theirs boot_fs t.cow; done | median)

# busybox `time` prints "real\tXm Y.YYs"; take the seconds of each job.
job_times() { grep -E '^real' | sed -E 's/real[[:space:]]+([0-9]+)m ?([0-9.]+)s/\1 \2/' | awk '{print $1*60+$2}'; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
drop; o_cold=$(ours data_fs d.cow JOBS=tar,find,ls 2>&1 | tr -d '\r' | job_times | paste -sd' ')
o_warm=$(ours data_fs d.cow JOBS=tar,find,ls,tar,find,ls 2>&1 | tr -d '\r' | job_times | tail -3 | paste -sd' ')
drop; t_cold=$(theirs data_fs e.cow JOBS=tar,find,ls 2>&1 | tr -d '\r' | job_times | paste -sd' ')
t_warm=$(theirs data_fs e.cow JOBS=tar,find,ls,tar,find,ls 2>&1 | tr -d '\r' | job_times | tail -3 | paste -sd' ')
# The host runs the same busybox programs as the guests (busybox wc -c
# costs about 2 s of CPU per GB: GNU wc would flatter the host).
host_jobs() {
    echo "$(secs sh -c "busybox tar cf - $W/data/data | busybox wc -c") $(secs sh -c "busybox find $W/data/data | busybox wc -l") $(secs sh -c "busybox ls -lR $W/data/data | busybox wc -l")"
}
drop; h_cold=$(host_jobs)
h_warm=$(host_jobs)

MB=$(du -sm "$W/data/data" | cut -f1); FILES=$(find "$W/data/data" | wc -l)
echo "boot to halt (median of $RUNS): linux ${b_ours}s  linux.uml ${b_theirs}s  ratio $(echo "scale=1; $b_theirs / $b_ours" | bc)x"
echo "data: $MB MB, $FILES files; jobs tar find ls (seconds)"
echo "cold: host $h_cold | linux $o_cold | linux.uml $t_cold"
echo "warm: host $h_warm | linux $o_warm | linux.uml $t_warm"
