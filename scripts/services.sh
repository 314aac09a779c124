#!/usr/bin/env bash
# The cluster tests' services: PostgreSQL (Debian's postgresql 15) and Redis
# (redis-server), each on a loopback port of its own with its own socket
# and data dir under DIR, so nothing of the machine's own services is used
# or touched.
#
#   scripts/services.sh start DIR   starts both; prints the lines to eval:
#                                   CONFAB_TEST_PG (an admin URL: tests
#                                   create a database each) and
#                                   CONFAB_TEST_BUS (a redis:// URL)
#   scripts/services.sh stop DIR    stops both (and leaves DIR)
#   scripts/services.sh pg-stop|pg-start|bus-stop|bus-start DIR
#                                   one of them, restarted on its port
#                                   (the outage tests)
#
# PostgreSQL refuses to run as root: as root, it runs as the `postgres`
# user (runuser), which owns DIR/pg.
set -euo pipefail

cmd=${1:?usage: services.sh start|stop DIR}
dir=${2:?usage: services.sh start|stop DIR}

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pg_bin" ]; then pg_bin=$(dirname "$(command -v pg_ctl)"); fi

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pg_start() {
  as_pg "$pg_bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w -t 30 start \
    -o "-p $(cat "$dir/pg/port") -k $dir/pg -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=32MB" \
    >/dev/null
}

bus_start() {
  local port
  port=$(cat "$dir/redis/port")
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir/redis" --daemonize yes --pidfile "$dir/redis/pid" --logfile "$dir/redis/log"
  for _ in $(seq 200); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "redis-server did not answer on port $port" >&2
  return 1
}

bus_stop() {
  if [ -f "$dir/redis/pid" ]; then
    local pid
    pid=$(cat "$dir/redis/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    rm -f "$dir/redis/pid"
  fi
}

pg_stop() {
  if [ -d "$dir/pg/data" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

case "$cmd" in
  pg-stop) pg_stop ;;
  pg-start) pg_start ;;
  bus-stop) bus_stop ;;
  bus-start) bus_start ;;
  start)
    mkdir -p "$dir/pg" "$dir/redis"
    if [ "$(id -u)" -eq 0 ]; then chmod 755 "$dir"; chown postgres: "$dir/pg"; chmod 700 "$dir/pg"; fi
    free_port >"$dir/pg/port"
    as_pg "$pg_bin/initdb" -D "$dir/pg/data" -A trust -U confab --no-sync >"$dir/pg/initdb.log" 2>&1 \
      || { cat "$dir/pg/initdb.log" >&2; exit 1; }
    pg_start
    free_port >"$dir/redis/port"
    bus_start
    pg_port=$(cat "$dir/pg/port")
    redis_port=$(cat "$dir/redis/port")
    echo "export CONFAB_TEST_PG=postgresql://confab@127.0.0.1:$pg_port/postgres"
    echo "export CONFAB_TEST_BUS=redis://127.0.0.1:$redis_port"
    ;;
  stop)
    bus_stop
    pg_stop
    ;;
  *)
    echo "usage: services.sh start|stop DIR" >&2
    exit 2
    ;;
esac
