#!/usr/bin/env bash
# Throughput across a VXLAN tunnel: two `uml_switch -vde DIR -vxlan 42`
# in two network namespaces joined by a veth pair, against two Linux
# bridges joined by kernel vxlan devices (id 42, dstport 4789) in the same
# setting, with one load generator (VDE clients on our switches, TAP
# devices on the bridges; clients paired across the tunnel). Needs root
# and iproute2.
#
#   benches/vxlan_pair.sh                         # 3 rounds of 3 s, 2x64,32x64
#   BENCH_CASES=2x64,32x64,2x1500,32x1500 benches/vxlan_pair.sh
#   BENCH_SECS=5 BENCH_ROUNDS=5 BENCH_WINDOW=8 benches/vxlan_pair.sh
#
# Prints a Markdown table (frames/s delivered, median of the rounds;
# frames per second of both switches' CPU time, ours only: the bridges'
# work is done in the kernel, in the generator's system calls and
# softirqs; loss; misdelivered) and the ratio per case.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_SECS="${BENCH_SECS:-3}" BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
export BENCH_CASES="${BENCH_CASES:-2x64,32x64}"
cargo build --release --bin uml_switch
cargo test --release --test net_vxlan_bench -- --ignored --nocapture \
    vxlan_pair_throughput_ours_vs_linux_bridges 2>&1 | grep -E '^\||^ratio'
