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

case "$cmd" in
  start)
    mkdir -p "$dir/pg" "$dir/redis"
    if [ "$(id -u)" -eq 0 ]; then chmod 755 "$dir"; chown postgres: "$dir/pg"; chmod 700 "$dir/pg"; fi
    pg_port=$(free_port)
    as_pg "$pg_bin/initdb" -D "$dir/pg/data" -A trust -U confab --no-sync >"$dir/pg/initdb.log" 2>&1 \
      || { cat "$dir/pg/initdb.log" >&2; exit 1; }
    as_pg "$pg_bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w -t 30 start \
      -o "-p $pg_port -k $dir/pg -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=32MB" \
      >/dev/null
    redis_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
      --dir "$dir/redis" --daemonize yes --pidfile "$dir/redis/pid" --logfile "$dir/redis/log"
    for _ in $(seq 100); do
      redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
      sleep 0.05
    done
    echo "export CONFAB_TEST_PG=postgresql://confab@127.0.0.1:$pg_port/postgres"
    echo "export CONFAB_TEST_BUS=redis://127.0.0.1:$redis_port"
    ;;
  stop)
    if [ -d "$dir/pg/data" ]; then
      as_pg "$pg_bin/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if [ -f "$dir/redis/pid" ]; then kill "$(cat "$dir/redis/pid")" 2>/dev/null || true; fi
    ;;
  *)
    echo "usage: services.sh start|stop DIR" >&2
    exit 2
    ;;
esac
