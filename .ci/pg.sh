#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL server on loopback for the test suite.
#   .ci/pg.sh start DIR PORT   -> prints the SQLAlchemy URL on stdout
#   .ci/pg.sh stop DIR
# Installs Debian's postgresql package when its binaries are missing (needs root).
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?data dir}; port=${3:-55432}

bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

if [ "$cmd" = stop ]; then
  b=$(bindir); [ -n "$b" ] || exit 0
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$b/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
  else "$b/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true; fi
  exit 0
fi

b=$(bindir)
if [ -z "$b" ]; then
  if [ "$(id -u)" != 0 ]; then echo "postgresql is not installed and we are not root" >&2; exit 1; fi
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
  b=$(bindir)
fi
mkdir -p "$dir"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then chown -R postgres "$dir"; fi
if [ ! -f "$dir/data/PG_VERSION" ]; then
  as_pg "$b/initdb" -D "$dir/data" -U cosearch --auth=trust -E UTF8 >&2
fi
as_pg "$b/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >&2
as_pg "$b/createdb" -h 127.0.0.1 -p "$port" -U cosearch cosearch_test 2>/dev/null || true
echo "postgresql+psycopg://cosearch@127.0.0.1:$port/cosearch_test"
