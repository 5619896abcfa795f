#!/usr/bin/env bash
# Runs the bridge: installs what is missing, creates config.yaml from example-config.yaml and
# the registration on first use, then starts `bridgekit run` (SQLite by default).
set -euo pipefail
cd "$(dirname "$0")/.."
BRIDGEKIT_SKIP_APT=1 bash scripts/setup.sh
config=${1:-config.yaml}
if [ ! -f "$config" ]; then
  cp example-config.yaml "$config"
  echo "== created $config from example-config.yaml: edit homeserver and permissions"
fi
if grep -qE '^\s*as_token:\s*generate' "$config"; then
  .venv/bin/bridgekit generate-registration -c "$config" -r registration/bridgekit.yaml
fi
exec .venv/bin/bridgekit run -c "$config"
