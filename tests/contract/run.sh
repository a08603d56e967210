#!/usr/bin/env bash
# Contract tests: schemathesis (PyPI, in a venv made here) against
# /api/v1/openapi.json of a running ispd with an admin API token.
#
# Starts `ispd serve` on SQLite in a temporary directory, with demo data and
# a mock router, then runs schemathesis with tests/contract/schemathesis.toml.
# ISPD_BIN names the binary (default: the debug build); the venv lives in
# SCHEMATHESIS_VENV (default ~/.cache/ispd-schemathesis).
set -euo pipefail
cd "$(dirname "$0")/../.."

SCHEMATHESIS_VERSION=4.32.5
ispd="${ISPD_BIN:-${CARGO_TARGET_DIR:-target}/debug/ispd}"
venv="${SCHEMATHESIS_VENV:-$HOME/.cache/ispd-schemathesis}"

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "==> schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

web_port=$(free_port)
router_port=$(free_port)
router_password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(16))')
export APP_ENV=test DATA_DIR="$work" STATIC_DIR="$PWD/static" \
  LISTEN_ADDR="127.0.0.1:$web_port" RATE_LIMIT_PER_SECOND=0 LOG_LEVEL=warn \
  MIKROTIK_API_TIMEOUT=2 RADIUS_COA_ATTEMPTS=1 RADIUS_COA_TIMEOUT_MS=500 \
  DATABASE_URL="sqlite://$work/ispd.db?mode=rwc" RADIUS_DATABASE_URL="sqlite://$work/radius.db?mode=rwc" \
  REDIS_URL=

"$ispd" migrate >/dev/null
"$ispd" seed >/dev/null
token=$("$ispd" token create --name contract --role admin | grep -o 'ispd_[A-Za-z0-9_-]*' | head -n 1)
[[ -n $token ]] || { echo "no API token was printed" >&2; exit 1; }

"$ispd" mock-routeros --listen "127.0.0.1:$router_port" --username contract \
  --password "$router_password" --sessions 3 >"$work/mock.log" 2>&1 &
pids+=($!)
"$ispd" serve >"$work/serve.log" 2>&1 &
pids+=($!)

base="http://127.0.0.1:$web_port"
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$base/healthz" 2>/dev/null && break
  sleep 0.2
done
# A router that answers, so the router operations are exercised beyond 502.
curl -fsS -o /dev/null -X POST "$base/api/v1/mikrotik/routers" \
  -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
  -d "{\"name\":\"contract-router\",\"ip_address\":\"127.0.0.1\",\"api_port\":$router_port,\"username\":\"contract\",\"password\":\"$router_password\"}"

echo "==> schemathesis against $base/api/v1/openapi.json"
status=0
API_TOKEN="$token" "$venv/bin/schemathesis" --config-file tests/contract/schemathesis.toml \
  run "$base/api/v1/openapi.json" -H "Authorization: Bearer $token" --no-color "$@" || status=$?
if ((status != 0)); then
  echo "---- ispd serve log (last 50 lines)" >&2
  grep -v "tower_sessions" "$work/serve.log" | tail -n 50 >&2
fi
exit "$status"
