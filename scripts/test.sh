#!/usr/bin/env bash
# The test command: installs what is missing, starts a private PostgreSQL on a free loopback
# port, and runs the whole suite on SQLite and then on PostgreSQL.
#   bash scripts/test.sh            # both engines
#   bash scripts/test.sh -k portals # extra args go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

pg_dir=""
cleanup() {
  if [ -n "$pg_dir" ]; then
    runas "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT
runas() { if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ -z "${BRIDGEKIT_TEST_POSTGRES:-}" ]; then
  pg_bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
  pg_dir=$(mktemp -d /tmp/bridgekit-pg.XXXXXX)
  [ "$(id -u)" = "0" ] && chown postgres "$pg_dir"
  pg_port=$(.venv/bin/python -c "from bridgekit.testing.ports import free_port; print(free_port())")
  runas "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust >/dev/null
  runas "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off -c max_connections=200" \
    start >/dev/null
  export BRIDGEKIT_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pg_port/postgres"
  echo "== PostgreSQL on 127.0.0.1:$pg_port"
fi

# One pass after the other by default. BRIDGEKIT_TEST_PARALLEL=1 runs them side by side (each
# with its own Synapse, servers, ports and temporary directory; about 23 minutes instead of 33
# on 2 cores), but a few timing-sensitive tests failed under that load: not CI's default yet.
status=0
run_dir=$(mktemp -d /tmp/bridgekit-test.XXXXXX)
pass() {  # engine
  BRIDGEKIT_TEST_DB=$1 .venv/bin/python -m pytest -q --durations=15 -rR --reruns 2 \
    --reruns-delay 1 --basetemp "$run_dir/$1" -p no:cacheprovider "${@:2}"
}
if [ "${BRIDGEKIT_TEST_PARALLEL:-}" != "1" ]; then
  echo "== tests on SQLite"
  pass sqlite "$@" || status=1
  echo "== tests on PostgreSQL"
  pass postgres "$@" || status=1
else
  echo "== tests on SQLite and on PostgreSQL, side by side (each one's output follows)"
  pass sqlite "$@" >"$run_dir/sqlite.log" 2>&1 &
  sqlite_pid=$!
  pass postgres "$@" >"$run_dir/postgres.log" 2>&1 &
  postgres_pid=$!
  wait "$sqlite_pid" || status=1
  wait "$postgres_pid" || status=1
  echo "== tests on SQLite"
  cat "$run_dir/sqlite.log"
  echo "== tests on PostgreSQL"
  cat "$run_dir/postgres.log"
fi
rm -rf "$run_dir"
exit $status
