#!/usr/bin/env bash
# make test: every test, on every backend this machine has.
#
# 1. tests/prepare.sh: the Debian packages the tests need (as root), the
#    test roles on the local PostgreSQL and MariaDB, and the TEST_*_URL of
#    each local server that answers (docs/TESTING.md).
# 2. The Rust tests (one integration binary; nextest when installed).
# 3. The browser tests (headless Chromium) and the API contract tests
#    (schemathesis), against a debug `ispd`.
# 4. A summary: which backends and suites ran.
#
# TEST_REQUIRE_ALL_BACKENDS=1 (.ci/run) turns a missing backend into a
# failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/prepare.sh
source tests/prepare.sh

CARGO=${CARGO:-cargo}
NPM=${NPM:-npm}
target_dir=${CARGO_TARGET_DIR:-target}

prepare_packages
prepare_backends

backends="SQLite"
[[ -n ${TEST_POSTGRES_URL:-} ]] && backends+=", PostgreSQL"
[[ -n ${TEST_MYSQL_URL:-} ]] && backends+=", MariaDB"
[[ -n ${TEST_REDIS_URL:-} ]] && backends+=", Redis"
prepare_log "Tests on $backends"

if "$CARGO" nextest --version >/dev/null 2>&1; then
  "$CARGO" nextest run --workspace --locked --no-fail-fast
else
  echo "cargo-nextest not found: using cargo test"
  "$CARGO" test --workspace --locked --no-fail-fast
fi

prepare_log "Browser tests (headless Chromium)"
"$CARGO" build --locked --bin ispd
ISPD_BIN="$target_dir/debug/ispd" "$NPM" run test:browser

prepare_log "API contract (schemathesis)"
ISPD_BIN="$target_dir/debug/ispd" tests/contract/run.sh

freeradius="skipped (not installed)"
command -v freeradius >/dev/null 2>&1 && freeradius="Debian's FreeRADIUS $(freeradius -v 2>/dev/null | sed -n 's/.*Version \([0-9.]*\).*/\1/p' | head -1)"
prepare_log "All suites passed"
echo "  backends:  $backends (missing ones skip their tests unless TEST_REQUIRE_ALL_BACKENDS=1)"
echo "  suites:    Rust unit and integration, browser (Chromium), API contract (schemathesis)"
echo "  FreeRADIUS end-to-end: $freeradius"
