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
# Prints a Markdown table: frames/s delivered (median of the rounds), frames
# per second of the switch's own CPU time (independent of what else runs on
# the machine), loss and misdelivered frames.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_SECS="${BENCH_SECS:-3}" BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
cargo build --release --bin uml_switch
cargo test --release --test net_switch_bench -- --ignored --nocapture \
    switch_throughput_ours_vs_debian 2>&1 | grep -E '^\||^ratio|^net\.'
