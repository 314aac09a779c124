#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, then
# checks formatting and lints, builds everything (benches included, so they
# cannot rot; they are not run), runs every test, and gives each fuzz target
# a short run. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "installing what is missing"
bash scripts/install-deps.sh

step "format"
cargo fmt --all --check

step "shape (import cycles, file and function lengths: scripts/shape.py)"
python3 scripts/shape.py

step "build (all targets, benches included)"
cargo build --workspace --all-targets --locked

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cluster services (PostgreSQL and Redis on loopback ports of their own: scripts/services.sh)"
services_dir=$(mktemp -d)
trap 'bash scripts/services.sh stop "$services_dir"; rm -rf "$services_dir"' EXIT
# Exports CONFAB_TEST_PG and CONFAB_TEST_BUS: the cluster tests run on them
# (and fail under CI=true without them, rather than skip).
eval "$(bash scripts/services.sh start "$services_dir")"

step "tests"
cargo test --workspace --locked

step "browser tests (the page in web/static, in headless chromium: tests/browser)"
CONFAB_BIN_DIR="${CARGO_TARGET_DIR:-target}/debug" python3 -m pytest tests/browser -q -s -p no:cacheprovider

step "fuzz smoke run (${FUZZ_SECONDS:=15} s per target)"
(
  cd fuzz
  export RUSTC_BOOTSTRAP=1
  for target in decode_frame roundtrip session web_entry irc_line; do
    # Runs on a copy of the committed seeds, so the tree stays clean.
    corpus=$(mktemp -d)
    cp corpus/"$target"/seed-* "$corpus"/
    log=$(mktemp)
    if ! cargo fuzz run "$target" "$corpus" -- -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 >"$log" 2>&1; then
      tail -n 60 "$log"
      echo "fuzz target $target failed" >&2
      exit 1
    fi
    echo "$target: $(grep -E 'stat::average_exec_per_sec' "$log" | tr -s ' ')"
    rm -rf "$corpus" "$log"
  done
)

step "all tests passed"
