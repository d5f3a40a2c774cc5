#!/usr/bin/env bash
# Throughput of our `uml_switch -vde DIR` against VDE's `vde_switch -s DIR`
# with the same VDE clients (a load generator speaking vdeplug4's vde://
# protocol), alternating, in a private network namespace. Needs root and
# the vde2 package.
#
#   benches/vde_switch.sh                       # 3 rounds of 3 s, 64 bytes
#   BENCH_CASES=2x64,32x64,2x1500,32x1500 benches/vde_switch.sh
#   BENCH_SECS=5 BENCH_ROUNDS=5 BENCH_WINDOW=8 benches/vde_switch.sh
#   BENCH_OLD=/tmp/uml_switch.old benches/vde_switch.sh   # and another build
#   BENCH_WRAP='chrt -f 10' benches/vde_switch.sh          # uncontended
#   BENCH_WRAP='taskset -c 0 chrt -f 10' benches/vde_switch.sh  # one CPU
#
# BENCH_WRAP runs the measurement (the generator and the switches it
# starts, never the build) under a command: on a machine shared with other
# jobs, SCHED_FIFO gives both switches and the generator the CPUs as an
# idle machine would (the other jobs wait meanwhile; keep runs short).
#
# Prints a Markdown table (frames/s delivered, median of the rounds;
# frames per second of the switch's own CPU time; loss; misdelivered),
# with a "no switch" row per case (the generator's clients connected
# straight to each other: its own ceiling), and the ratios per case.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_SECS="${BENCH_SECS:-3}" BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
export BENCH_CASES="${BENCH_CASES:-2x64,32x64}"
cargo build --release --bin uml_switch
exe=$(cargo test --release --test net_vde_bench --no-run 2>&1 |
    sed -n 's/.*Executable .*(\(.*\))$/\1/p')
# shellcheck disable=SC2086 # BENCH_WRAP is a command line
${BENCH_WRAP:-} "$exe" --ignored --nocapture \
    vde_throughput_ours_vs_vde_switch 2>&1 | grep -E '^\||^ratio'
