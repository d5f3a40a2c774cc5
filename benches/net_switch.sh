#!/usr/bin/env bash
# Throughput of our uml_switch against Debian's /usr/bin/uml_switch, in one
# run, alternating. Needs root (a private network namespace is created for
# the run) and the uml-utilities package.
#
#   benches/net_switch.sh                 # 3 rounds of 3 s per case
#   BENCH_SECS=5 BENCH_ROUNDS=5 benches/net_switch.sh
#   BENCH_CASES=2x64,32x64 benches/net_switch.sh
#   BENCH_PROGRAMS=a=/tmp/sw_a,debian=/usr/bin/uml_switch benches/net_switch.sh
#
# The load generator keeps 8 frames in flight per client (each client's
# own socket queue holds net.unix.max_dgram_qlen = 10 of them). Two
# configurations are measured:
#  1. the default net.unix.max_dgram_qlen (10);
#  2. net.unix.max_dgram_qlen=512 in the benchmark's own namespace, with
#     64 frames in flight per client (room for batches).
# Each prints a Markdown table: frames/s delivered (median of the rounds),
# frames per second of the switch's own CPU time, frames per context switch
# of the switch, loss and misdelivered frames; and a row for the generator
# alone, its clients sending straight to each other: the most that any
# switch can show on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_SECS="${BENCH_SECS:-3}" BENCH_ROUNDS="${BENCH_ROUNDS:-3}" BENCH_CEILING="${BENCH_CEILING:-1}"
cargo build --release --bin uml_switch
run() {
    cargo test --release --test net_switch_bench -- --ignored --nocapture \
        switch_throughput_ours_vs_debian 2>&1 | grep -E '^\||^ratio|^net\.'
}
echo "## default queue length"
BENCH_WINDOW=8 run
echo
echo "## net.unix.max_dgram_qlen=512 (benchmark namespace only)"
BENCH_QLEN=512 BENCH_WINDOW=64 run
