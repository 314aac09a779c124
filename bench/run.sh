#!/bin/sh
# Builds confab-server and confab-bench (release) and runs the benchmark
# suite: for each scenario and run, a fresh server on 127.0.0.1:0 with a
# temp data dir, the scenario against it, then the server is killed; each
# scenario runs 3 times and the medians are printed (human table on
# stderr, JSON lines on stdout). Loopback only; every wait is bounded.
#
#   bench/run.sh                         # everything (about 5 minutes)
#   bench/run.sh --only fanout-a,latency # some scenarios
#   bench/run.sh --runs 1 --dry-run      # just print the commands
#
# Measurements are noisy while other builds run on this machine: check
# `uptime` first (each run records the load average it started with).
set -eu
cd "$(dirname "$0")/.."
cargo build --release -p confab-net -p confab-bench
# 19,000 connections need about as many descriptors in each process.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec target/release/confab-bench suite --server target/release/confab-server "$@"
