#!/usr/bin/env bash
# What uml_lab's capture relays cost the switches: our uml_switch as
# uml_lab starts it (-pcap - into a pipe read by `uml_lab capture-relay`,
# no capture client) against the same switch without -pcap (uml_lab start
# --no-capture), in one run, alternating, with the load generator of
# tests/net_switch_bench.rs. Needs root (a private network namespace).
#
#   benches/lab_capture.sh
#   BENCH_SECS=5 BENCH_ROUNDS=5 BENCH_CASES=2x64,32x1500 benches/lab_capture.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin uml_switch --bin uml_lab
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/switch-with-relay" <<WRAP
#!/bin/bash
d=\$(mktemp -d "$work/sw.XXXXXX")
mkfifo "\$d/p"
"$root/target/release/uml_lab" capture-relay "\$d/x.cap" < "\$d/p" &
exec "$root/target/release/uml_switch" "\$@" -pcap - > "\$d/p"
WRAP
chmod +x "$work/switch-with-relay"
export BENCH_SECS="${BENCH_SECS:-3}" BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
export BENCH_CASES="${BENCH_CASES:-2x64,32x64}"
export BENCH_PROGRAMS="with-relay=$work/switch-with-relay,no-capture=$root/target/release/uml_switch"
cargo test --release --test net_switch_bench -- --ignored --nocapture \
    switch_throughput_ours_vs_debian 2>&1 | grep -E '^\||^ratio|^net\.'
