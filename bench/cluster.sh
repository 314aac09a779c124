#!/usr/bin/env bash
# docs/SCALING.md's figures: a single SQLite node, one node on PostgreSQL,
# and three nodes on one PostgreSQL and one Redis (scripts/services.sh),
# all on this machine. Per run: deliveries/s, delivery latency, and the CPU
# seconds each node spent (from /proc) per million deliveries.
#
#   bench/cluster.sh [TARGET_DIR]    (release binaries: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-${CARGO_TARGET_DIR:-target}/release}
work=$(mktemp -d)
chmod 755 "$work" # PostgreSQL runs as its own user below it
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bash scripts/services.sh stop "$work/svc" >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
keep=${KEEP:-}
eval "$(bash scripts/services.sh start "$work/svc")"
db=0
limits=(--max-per-source 100000 --max-pre-auth-per-source 65535 --auth-queue-per-source 4096
  --register-source-burst 65535 --register-server-burst 65535 --hash-memory-kib 64 --hash-passes 1
  --msg-rate 60000 --msg-burst 60000 --byte-rate 100000000 --byte-burst 100000000 --threads 1)

# start_node NAME [--store URL --bus URL]: prints "PID PORT" (it runs in a
# subshell: the caller records the pid for the cleanup).
start_node() {
  local name=$1
  shift
  "$bin/confab-server" --listen 127.0.0.1:0 --data-dir "$work/$name" "${limits[@]}" "$@" \
    2>"$work/$name.log" &
  local pid=$!
  for _ in $(seq 200); do
    port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$work/$name.log" 2>/dev/null | head -n 1 | cut -d: -f2 || true)
    [ -n "$port" ] && break
    sleep 0.05
  done
  echo "$pid $port"
}

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

new_db() {
  psql "$CONFAB_TEST_PG" -qXc "CREATE DATABASE bench$db"
  echo "${CONFAB_TEST_PG%/*}/bench$db"
}

# run LABEL PIDS... -- FANOUT ARGS
run() {
  local label=$1
  shift
  local ps=()
  while [ "$1" != "--" ]; do ps+=("$1"); shift; done
  shift
  local before=()
  for p in "${ps[@]}"; do before+=("$(cpu "$p")"); done
  out=$("$bin/confab-bench" fanout --threads 1 "$@" 2>&1 | tail -n 4 | head -n 3)
  local line="$label:"
  local i=0
  for p in "${ps[@]}"; do
    line="$line node$i $(( $(cpu "$p") - ${before[$i]} )) ticks;"
    i=$((i + 1))
  done
  echo "$line"
  echo "$out"
}

load=(--clients 300 --senders 3 --messages 3000 --timeout 120)
paced=(--clients 60 --senders 2 --messages 400 --rate 400)

read -r p1 port1 < <(start_node single)
pids+=("$p1")
run "single SQLite node, saturated" "$p1" -- --port "$port1" "${load[@]}"
run "single SQLite node, paced" "$p1" -- --port "$port1" "${paced[@]}"
kill "$p1"

db=$((db + 1))
url=$(new_db)
read -r p1 port1 < <(start_node pg1 --store "$url" --bus "$CONFAB_TEST_BUS")
pids+=("$p1")
run "one PostgreSQL node, saturated" "$p1" -- --port "$port1" "${load[@]}"
kill "$p1"

db=$((db + 1))
url=$(new_db)
read -r a pa < <(start_node a --store "$url" --bus "$CONFAB_TEST_BUS")
pids+=("$a")
read -r b pb < <(start_node b --store "$url" --bus "$CONFAB_TEST_BUS")
pids+=("$b")
read -r c pc < <(start_node c --store "$url" --bus "$CONFAB_TEST_BUS")
pids+=("$c")
run "three nodes, receivers on all three, saturated" "$a" "$b" "$c" -- --port "$pa" \
  --receiver-ports "$pa,$pb,$pc" "${load[@]}"
run "three nodes, same node (all on a), paced" "$a" "$b" "$c" -- --port "$pa" "${paced[@]}"
run "three nodes, cross node (senders on a, receivers on b), paced" "$a" "$b" "$c" -- --port "$pa" \
  --receiver-ports "$pb" "${paced[@]}"
