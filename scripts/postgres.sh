#!/usr/bin/env bash
# Start, stop or check a throwaway PostgreSQL 15 cluster for tests and local use.
#
#   scripts/postgres.sh start    # initdb on first use, then start on 127.0.0.1:$CONTRAIL_PG_PORT
#   scripts/postgres.sh stop
#   scripts/postgres.sh status
#
# The cluster lives in $CONTRAIL_PG_DIR (default: /tmp/contrail-postgres-PORT, reachable by
# the postgres user wherever the repo is) with trust auth, fsync off,
# and a database named $CONTRAIL_PG_DATABASE (default: contrail). As root it runs as the
# 'postgres' system user, since PostgreSQL refuses to run as root.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
port=${CONTRAIL_PG_PORT:-54329}
dir=${CONTRAIL_PG_DIR:-${TMPDIR:-/tmp}/contrail-postgres-$port}
db=${CONTRAIL_PG_DATABASE:-contrail}
bindir=${PG_BINDIR:-}
if [ -z "$bindir" ]; then
  for candidate in /usr/lib/postgresql/*/bin; do
    [ -x "$candidate/initdb" ] && bindir=$candidate
  done
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "postgres.sh: no PostgreSQL server binaries found (looked in /usr/lib/postgresql/*/bin)." >&2
  echo "Install them with: apt-get install -y postgresql" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    su postgres -s /bin/bash -c "$*"
  else
    bash -c "$*"
  fi
}

case "${1:-}" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; chmod 700 "$dir"; fi
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_owner "'$bindir/initdb' -D '$dir' -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >/dev/null
    fi
    if as_owner "'$bindir/pg_ctl' -D '$dir' status" >/dev/null 2>&1; then
      echo "PostgreSQL already running in $dir"
    else
      as_owner "'$bindir/pg_ctl' -D '$dir' -l '$dir/server.log' -w -t 30 \
        -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=off \
        -c synchronous_commit=off -c full_page_writes=off\" start" >/dev/null
      echo "PostgreSQL started on 127.0.0.1:$port (data in $dir)"
    fi
    if ! "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "select 1 from pg_database where datname = '$db'" | grep -q 1; then
      "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres "$db"
    fi
    ;;
  stop)
    if [ -f "$dir/postmaster.pid" ]; then
      as_owner "'$bindir/pg_ctl' -D '$dir' -m fast -w stop" >/dev/null && echo "PostgreSQL stopped"
    fi
    ;;
  status)
    as_owner "'$bindir/pg_ctl' -D '$dir' status"
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
