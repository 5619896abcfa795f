#!/usr/bin/env bash
# Installs what bridgekit needs into .venv (and, as root, the Debian servers the tests use).
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_apt=()
if [ "${BRIDGEKIT_SKIP_APT:-}" != "1" ]; then
  command -v inspircd >/dev/null 2>&1 || [ -x /usr/sbin/inspircd ] || want_apt+=(inspircd)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want_apt+=(postgresql)
  # psycopg2 (Synapse on PostgreSQL, in the test extra) is built against libpq.
  command -v pg_config >/dev/null 2>&1 || want_apt+=(libpq-dev)
  command -v gcc >/dev/null 2>&1 || want_apt+=(gcc)
  command -v prosody >/dev/null 2>&1 || want_apt+=(prosody)
fi
if [ "${#want_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "== apt-get install ${want_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want_apt[@]}" >/dev/null
    # Debian starts a default cluster/daemon on install; the tests run their own on free ports.
    systemctl stop inspircd >/dev/null 2>&1 || true
    systemctl stop prosody >/dev/null 2>&1 || true
    pkill -x inspircd >/dev/null 2>&1 || true
    pkill -f "lua.*prosody" >/dev/null 2>&1 || true
  else
    echo "note: ${want_apt[*]} missing and not root: tests that need them will be skipped" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import bridgekit, synapse, irc, slixmpp, slack_sdk, emoji, discord, olm, nio" >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "== pip install -e .[test,irc,xmpp,slack,discord,e2ee]"
  .venv/bin/pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/pip install -q -e '.[test,irc,xmpp,slack,discord,e2ee]' 2>&1 | grep -v "^WARNING: Location" || true
  touch .venv/.installed
fi
.venv/bin/python -c "import bridgekit, synapse, irc, slixmpp, slack_sdk, emoji, discord, olm, nio" || { echo "install failed" >&2; exit 1; }
