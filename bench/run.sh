#!/bin/sh
# Builds confab-server and confab-bench (release) and runs the benchmark
# suite: for each scenario and run, a fresh server on 127.0.0.1:0 with a
# temp data dir, the scenario against it, then the server is killed; each
# scenario runs 3 times and the medians are printed (human table on
# stderr, JSON lines on stdout). Loopback only; every wait is bounded.
#
#   bench/run.sh                         # everything (about 25 minutes)
#   bench/run.sh --only fanout-a,latency # some scenarios
#   bench/run.sh --runs 1 --dry-run      # just print the commands
#
# Measurements are noisy while other builds run on this machine: each run
# waits (up to --quiet-wait 60 s) for the machine to be 90% idle, records
# how much CPU other processes used meanwhile (others_cpu_s), and is done
# again (up to --retries 2) if they used more than --max-noise 5% of it.
set -eu
cd "$(dirname "$0")/.."
cargo build --release -p confab-net -p confab-bench
# 19,000 connections need about as many descriptors in each process.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec target/release/confab-bench suite --server target/release/confab-server "$@"
