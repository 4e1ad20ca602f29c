#!/usr/bin/env bash
# Starts (or stops) a throw-away PostgreSQL server for the tests in a temporary folder, on loopback.
# Usage: scripts/postgres.sh start DIR PORT   -> prints the SQLAlchemy URL
#        scripts/postgres.sh stop DIR
set -euo pipefail
cmd=$1 dir=$2
bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
start)
  port=$3
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  as_pg "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres medcode_test
  echo "postgresql+psycopg://postgres@127.0.0.1:$port/medcode_test"
  ;;
stop)
  as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null || true
  ;;
esac
