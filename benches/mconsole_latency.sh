#!/bin/bash
# Round-trip cost of uml_mconsole, ours against Debian's, on one idle guest.
# The guest is linux.uml waiting for a root device that never comes
# (root=/dev/ubdc rootwait): the kernel and its mconsole run, no user space.
# Usage: benches/mconsole_latency.sh [path/to/our/uml_mconsole]
set -euo pipefail
OURS=${1:-target/release/uml_mconsole}
DEBIAN=/usr/bin/uml_mconsole
N_ONESHOT=${N_ONESHOT:-300}
N_LINES=${N_LINES:-5000}
N_BIG=${N_BIG:-2000}
dir=$(mktemp -d)
trap 'uml_mconsole "$dir/bench/mconsole" halt >/dev/null 2>&1 || true; sleep 0.5; kill -9 -- -$pg 2>/dev/null || true; rm -rf "$dir"' EXIT
setsid linux.uml umid=bench uml_dir="$dir" root=/dev/ubdc rootwait mem=64M con=null con0=null >"$dir/boot.log" 2>&1 &
pg=$!
for _ in $(seq 100); do [ -S "$dir/bench/mconsole" ] && break; sleep 0.05; done
sock="$dir/bench/mconsole"
sleep 2   # let the boot settle
"$DEBIAN" "$sock" version >/dev/null 2>&1

# Seconds taken by "$@"; fails unless every reply was an OK.
t() {
    local s e ok
    s=$(date +%s.%N)
    ok=$("$@" 2>/dev/null | grep -c '^OK' || true)
    e=$(date +%s.%N)
    [ "$ok" -ge "$want" ] || { echo "only $ok OK replies from $*" >&2; exit 1; }
    echo "$e - $s" | bc
}
oneshot() { for _ in $(seq "$N_ONESHOT"); do "$1" "$sock" version; done; }
lines() { yes version | head -n "$N_LINES" | "$1" "$sock"; }
big() { yes "proc vmstat" | head -n "$N_BIG" | "$1" "$sock"; }
size=$("$OURS" "$sock" proc vmstat | wc -c)

printf '%-34s %10s %10s %7s\n' "case" "ours (s)" "debian (s)" "ratio"
for case in oneshot lines big; do
    case $case in oneshot) want=$N_ONESHOT ;; lines) want=$N_LINES ;; big) want=$N_BIG ;; esac
    # Best of three, alternating, to damp the noise of a shared machine.
    o=999; d=999
    for _ in 1 2 3; do
        o=$(echo "x=$(t $case "$OURS"); if (x < $o) x else $o" | bc)
        d=$(echo "x=$(t $case "$DEBIAN"); if (x < $d) x else $d" | bc)
    done
    printf '%-34s %10.3f %10.3f %7.2f\n' "$case" "$o" "$d" "$(echo "$o / $d" | bc -l)"
done
echo "oneshot: $N_ONESHOT processes each sending 'version'; lines: $N_LINES 'version' lines on one"
echo "interactive process; big: $N_BIG 'proc vmstat' lines on one process ($size bytes, several datagrams, per reply)"
