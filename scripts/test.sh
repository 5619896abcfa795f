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

# Side by side by default: the SQLite pass as BRIDGEKIT_TEST_SQLITE_JOBS processes (default 2)
# and the PostgreSQL pass as BRIDGEKIT_TEST_POSTGRES_JOBS (default 1), each with its own Synapse,
# servers, ports and temporary directory, each running a part of the test modules
# (BRIDGEKIT_TEST_SHARD, balanced by tests/durations.json). The tests mostly wait, a process
# uses about a quarter of a core, so on 2 cores this takes about 1/3 of the serial time.
# Their outputs follow one another at the end. BRIDGEKIT_TEST_SERIAL=1: one pass after the
# other, one process each, output as it comes.
status=0
run_dir=$(mktemp -d /tmp/bridgekit-test.XXXXXX)
pass() {  # engine, shard ("" for all), pytest args...
  BRIDGEKIT_TEST_DB=$1 BRIDGEKIT_TEST_SHARD=$2 .venv/bin/python -m pytest -q --durations=15 -rR \
    --basetemp "$run_dir/$1${2:+-${2%/*}}" -p no:cacheprovider "${@:3}"
}
if [ "${BRIDGEKIT_TEST_SERIAL:-}" = "1" ]; then
  echo "== tests on SQLite"
  pass sqlite "" "$@" || status=1
  echo "== tests on PostgreSQL"
  pass postgres "" "$@" || status=1
else
  jobs=()
  for engine in sqlite postgres; do
    if [ $engine = sqlite ]; then n=${BRIDGEKIT_TEST_SQLITE_JOBS:-2}; else n=${BRIDGEKIT_TEST_POSTGRES_JOBS:-1}; fi
    for i in $(seq 1 "$n"); do jobs+=("$engine $i/$n"); done
  done
  echo "== ${#jobs[@]} test processes side by side: ${jobs[*]/%/;} (outputs at the end)"
  pids=()
  for job in "${jobs[@]}"; do
    read -r engine shard <<<"$job"
    pass "$engine" "$shard" "$@" >"$run_dir/${engine}-${shard%/*}.log" 2>&1 &
    pids+=($!)
  done
  for k in "${!jobs[@]}"; do
    rc=0
    wait "${pids[$k]}" || rc=$?
    read -r engine shard <<<"${jobs[$k]}"
    echo "== tests on $engine, part $shard (exit $rc)"
    cat "$run_dir/${engine}-${shard%/*}.log"
    # 5: nothing to run in this part (a run narrowed by extra arguments)
    [ "$rc" = 0 ] || [ "$rc" = 5 ] || status=1
  done
fi
rm -rf "$run_dir"
exit $status
