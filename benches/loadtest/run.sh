#!/usr/bin/env bash
# A mixed /api/v1 load against a release `ispd serve` on loopback, with wrk
# (Debian's package): list pools, get users, allocate and release, read
# accounting and the online list (benches/loadtest/mixed.lua).
#
# Reports requests/s, p50/p99 latency, errors (must be 0 apart from the 409s
# of a momentarily full subnet) and the server's RSS over the run. Exits 1
# on any error or when RSS keeps growing (last quarter of the run more than
# 20 % above the second quarter).
#
#   LOADTEST_DURATION  wrk's -d (default 300s)
#   LOADTEST_CONNECTIONS, LOADTEST_THREADS  wrk's -c and -t (default 32, 2)
#   ISPD_BIN           the binary (default: the release build)
# The databases are SQLite files in a temporary directory (the default
# deployment of `make run`).
set -euo pipefail
cd "$(dirname "$0")/../.."

duration="${LOADTEST_DURATION:-300s}"
connections="${LOADTEST_CONNECTIONS:-32}"
threads="${LOADTEST_THREADS:-2}"
ispd="${ISPD_BIN:-${CARGO_TARGET_DIR:-target}/release/ispd}"
users=200
sessions_per_user=20

command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
[[ -x $ispd ]] || { echo "$ispd not found: cargo build --release --bin ispd" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export APP_ENV=test DATA_DIR="$work" STATIC_DIR="$PWD/static" LISTEN_ADDR="127.0.0.1:$port" \
  RATE_LIMIT_PER_SECOND=0 LOG_LEVEL=warn REDIS_URL= \
  DATABASE_URL="sqlite://$work/ispd.db?mode=rwc" RADIUS_DATABASE_URL="sqlite://$work/radius.db?mode=rwc"

"$ispd" migrate >/dev/null
token=$("$ispd" token create --name loadtest --role admin | grep -o 'ispd_[A-Za-z0-9_-]*' | head -n 1)
"$ispd" serve >"$work/serve.log" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 1 100); do curl -fsS -o /dev/null "$base/healthz" 2>/dev/null && break; sleep 0.2; done

post() { curl -fsS -X POST "$base$1" -H "Authorization: Bearer $token" -H "Content-Type: application/json" -d "$2"; }
json_id() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }

echo "==> data: a /16 subnet, $users users with $sessions_per_user accounting sessions each"
pool=$(post /api/v1/ipam/pools '{"name":"load","start_ip":"10.0.0.0","end_ip":"10.0.255.255"}' | json_id)
subnet=$(post /api/v1/ipam/subnets "{\"pool_id\":$pool,\"network\":\"10.0.0.0/16\"}" | json_id)
package=$(post /api/v1/packages '{"name":"Home 20M","download_rate":"20M","upload_rate":"5M","radius_group":"home-20m"}' | json_id)
first_user=""
for n in $(seq 1 "$users"); do
  id=$(post /api/v1/users "{\"username\":\"load$n\",\"password\":\"load-password-$n\",\"service_type\":\"pppoe\",\"package_id\":$package}" | json_id)
  first_user=${first_user:-$id}
  last_user=$id
done
# Accounting as FreeRADIUS's SQLite queries write it (text times, UTC).
python3 - "$work/radius.db" "$users" "$sessions_per_user" <<'PY'
import sqlite3, sys, datetime
db, users, per_user = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conn = sqlite3.connect(db)
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0, tzinfo=None)
rows = []
for u in range(1, users + 1):
    for s in range(per_user):
        start = now - datetime.timedelta(hours=6 * (s + 1))
        open_session = s == 0 and u % 4 == 0
        stop = None if open_session else start + datetime.timedelta(hours=2)
        rows.append((f"{u:04x}{s:04x}", f"load-{u}-{s}", f"load{u}", "192.0.2.1", "pppoe-in1",
                     start.isoformat(" "), (stop or now).isoformat(" "),
                     stop.isoformat(" ") if stop else None, 7200, 300,
                     1_000_000 * (s + 1), 250_000 * (s + 1), f"10.1.{u % 256}.{s}",
                     "AA:BB:CC:DD:EE:FF", "User-Request" if stop else ""))
conn.executemany(
    "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, nasportid,"
    " acctstarttime, acctupdatetime, acctstoptime, acctsessiontime, acctinterval,"
    " acctinputoctets, acctoutputoctets, framedipaddress, callingstationid, acctterminatecause)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
conn.commit()
PY

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }
: >"$work/rss"
( while kill -0 "$server" 2>/dev/null; do rss_kib >>"$work/rss"; sleep 5; done ) &
pids+=($!)

echo "==> wrk -t$threads -c$connections -d$duration (mixed: pools, user, allocate, release, accounting, online)"
wrk -t"$threads" -c"$connections" -d"$duration" --latency --timeout 10s \
  -s benches/loadtest/mixed.lua "$base" -- "$token" "$subnet" "$first_user" "$last_user" | tee "$work/wrk.txt"
rss_kib >>"$work/rss"

python3 - "$work/rss" "$work/wrk.txt" <<'PY'
import sys
samples = [int(x) for x in open(sys.argv[1]).read().split()]
wrk = dict(line.split(None, 1) for line in open(sys.argv[2]) if line.split() and line.split()[0] in
           ("errors", "expected_409", "requests_per_second", "latency_p50_ms", "latency_p99_ms"))
q = max(1, len(samples) // 4)
second, last = samples[q:2 * q] or samples, samples[-q:]
growth = (sum(last) / len(last)) / (sum(second) / len(second)) - 1
print(f"rss_start_mib {samples[0] / 1024:.1f}")
print(f"rss_peak_mib {max(samples) / 1024:.1f}")
print(f"rss_end_mib {samples[-1] / 1024:.1f}")
print(f"rss_growth_last_vs_second_quarter {growth * 100:.1f}%")
failed = False
if int(wrk["errors"]) != 0:
    print(f"FAIL: {wrk['errors'].strip()} errors"); failed = True
if growth > 0.20:
    print("FAIL: RSS keeps growing"); failed = True
sys.exit(1 if failed else 0)
PY
