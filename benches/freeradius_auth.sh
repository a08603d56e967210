#!/usr/bin/env bash
# FreeRADIUS authentication rate over our migrated RADIUS schema versus
# FreeRADIUS's own schema.sql, in one run (docs/BENCHMARKS.md).
#
# The benchmark is the ignored test
# freeradius::benchmark_auth_rate_on_our_schema_and_on_the_freeradius_schema
# (tests/it/freeradius.rs): it uses the same FreeRADIUS harness as the
# end-to-end tests, on a scratch database per schema and backend.
#
#   benches/freeradius_auth.sh                 # PostgreSQL and MariaDB
#   BENCH_MYSQL_URL= benches/freeradius_auth.sh   # PostgreSQL only
#   BENCH_RADIUS_REQUESTS=20000 BENCH_RADIUS_ROUNDS=7 benches/freeradius_auth.sh
#
# Needs Debian's freeradius, freeradius-postgresql, freeradius-mysql and
# freeradius-utils packages, psql and mariadb clients, and read access to
# /etc/freeradius/3.0 (root, or group freerad). Exits non-zero if ours is
# below 95 % of FreeRADIUS's schema.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ispd-target}"
# Servers where the benchmark may create (and drop) scratch databases.
export TEST_POSTGRES_URL="${BENCH_POSTGRES_URL-postgres://postgres@127.0.0.1:5432/postgres}"
export TEST_MYSQL_URL="${BENCH_MYSQL_URL-mysql://root@127.0.0.1:3306/mysql}"
unset TEST_REQUIRE_ALL_BACKENDS

# The measured work is FreeRADIUS's and the database's; a debug build of the
# test binary only prepares the data and starts radclient.
exec "${CARGO:-cargo}" test --locked --test it -- \
  --ignored --exact --nocapture --test-threads=1 \
  freeradius::benchmark_auth_rate_on_our_schema_and_on_the_freeradius_schema
