#!/usr/bin/env bash
# The test command behind `make test`: lint, format check, type check, then every test against
# SQLite and a real PostgreSQL server, with browser tests in Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export MEDCODE_HOME
MEDCODE_HOME=$(mktemp -d /tmp/medcode-test-XXXXXX)
export MLFLOW_DISABLE_TELEMETRY=true HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ -z "${MEDCODE_DATA_DIR:-}" ] && [ -d ../shared/datasets ]; then
  export MEDCODE_DATA_DIR
  MEDCODE_DATA_DIR=$(cd ../shared/datasets && pwd)
fi

echo "== ruff"
$BIN/ruff check .
$BIN/ruff format --check .
echo "== mypy"
$BIN/mypy

pgdir=$(mktemp -d /tmp/medcode-pg-XXXXXX)
chmod 755 "$pgdir"
port=$((20000 + RANDOM % 20000))
cleanup() { scripts/postgres.sh stop "$pgdir" || true; }
trap cleanup EXIT
export MEDCODE_TEST_POSTGRES_URL
MEDCODE_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$pgdir" "$port")
echo "== pytest (PostgreSQL on port $port)"
status=0
$BIN/pytest "$@" || status=$?
# pytest's "no tests collected" (5) is a failure here: the suite must run.
exit $status
