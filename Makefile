# ispd: the two commands that matter are `make run` and `make test`.
# Everything else is a step of those or a convenience.

SHELL := /bin/bash
CARGO ?= cargo
NPM ?= npm
# debug builds in a third of the time of release; `make run PROFILE=release`
# for a faster binary.
PROFILE ?= debug
CARGO_PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)

.PHONY: setup assets build run demo serve worker up down test test-sqlite contract coverage lint fmt migrate seed bench bench-accounting bench-enforcement bench-quota bench-radius bench-radius-sync bench-sessions bench-codec loadtest fuzz clean help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund

static/.vite/manifest.json: node_modules/.package-lock.json vite.config.js tailwind.config.js postcss.config.js $(wildcard frontend/*) $(wildcard templates/*.html templates/**/*.html)
	$(NPM) run build

assets: static/.vite/manifest.json ## Build CSS and JS into static/ (npm ci on first use)

build: assets ## Build assets and the ispd binary
	$(CARGO) build $(CARGO_PROFILE_FLAG) --locked --bin ispd

setup: build ## Install npm packages, build assets and ispd

run: setup ## Migrate and run web + worker on http://127.0.0.1:8080 (SQLite, embedded jobs)
	$(CARGO) run $(CARGO_PROFILE_FLAG) --locked --bin ispd -- run

demo: setup ## Like run, with demo data and a mock MikroTik router with 25 PPPoE sessions online
	$(CARGO) run $(CARGO_PROFILE_FLAG) --locked --bin ispd -- demo

serve: setup ## Run only the web and API server
	$(CARGO) run $(CARGO_PROFILE_FLAG) --locked --bin ispd -- serve

worker: setup ## Run only the background worker
	$(CARGO) run $(CARGO_PROFILE_FLAG) --locked --bin ispd -- worker

migrate: ## Apply migrations to both databases
	$(CARGO) run --locked --bin ispd -- migrate

seed: ## Load demo data (pools, subnets, packages, users, a router entry)
	$(CARGO) run --locked --bin ispd -- seed

up: ## Start the Docker Compose stack (needs a Docker engine)
	docker compose up -d --build

down: ## Stop the Docker Compose stack
	docker compose down

# tests/run.sh: installs what the tests need (Debian's FreeRADIUS and
# Chromium, as root), uses the local PostgreSQL, MariaDB and Redis when they
# answer (creating the test roles), runs the Rust, browser and contract
# tests, and says which backends ran. See docs/TESTING.md.
test: assets ## Run every test on every database this machine has, then the browser and contract tests
	CARGO="$(CARGO)" NPM="$(NPM)" tests/run.sh

contract: ## Contract-test /api/v1 with schemathesis against its OpenAPI document (needs python3)
	$(CARGO) build --locked --bin ispd
	ISPD_BIN="$${CARGO_TARGET_DIR:-target}/debug/ispd" tests/contract/run.sh

test-sqlite: ## Run the tests on SQLite only
	env -u TEST_REQUIRE_ALL_BACKENDS TEST_SQLITE_ONLY=1 $(MAKE) test

# Line coverage of the workspace's code (not of the tests themselves) by
# cargo-tarpaulin's ptrace engine (this toolchain has no llvm-tools), over
# the same tests as `make test` minus the browser and contract runs, on
# every backend configured. Fails below COVERAGE_MIN percent. Installs
# cargo-tarpaulin on first use; builds into its own target directory.
COVERAGE_MIN ?= 80
coverage: ## Line coverage with cargo-tarpaulin; fails below COVERAGE_MIN (80) percent
	@$(CARGO) tarpaulin --version >/dev/null 2>&1 || $(CARGO) install cargo-tarpaulin --locked
	$(CARGO) tarpaulin --workspace --locked --skip-clean --engine ptrace \
		--target-dir "$${CARGO_TARGET_DIR:-target}/tarpaulin" --timeout 900 \
		--exclude-files 'tests/*' 'benches/*' 'fuzz/*' \
		--out Stdout --out Json --output-dir "$${CARGO_TARGET_DIR:-target}/tarpaulin" \
		--fail-under $(COVERAGE_MIN)

lint: node_modules/.package-lock.json ## rustfmt, clippy (warnings are errors), eslint, no committed keys or tokens
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(NPM) run lint
	.ci/check-secrets

fmt: ## Format the Rust code
	$(CARGO) fmt --all

# SQLite in a temporary file, and PostgreSQL in a scratch database on the
# server BENCH_POSTGRES_URL names (default postgres://postgres@127.0.0.1:5432/postgres;
# skipped if that default does not answer). Optimised build (cargo bench).
# `make bench BENCH_ARGS=--quick` for a short smoke run; --sqlite or
# --postgres for one backend.
BENCH_ARGS ?=
bench: ## Run the IPAM and sync-sessions benchmarks on SQLite and PostgreSQL (docs/BENCHMARKS.md)
	$(CARGO) bench --locked --bench ipam -- $(BENCH_ARGS)
	$(CARGO) bench --locked --bench sessions_sync -- $(BENCH_ARGS)
	$(CARGO) bench --locked --bench radius_accounting -- $(BENCH_ARGS)

bench-accounting: ## One user's accounting and the online list over 1M radacct rows, PostgreSQL (docs/BENCHMARKS.md)
	$(CARGO) bench --locked --bench radius_accounting -- $(BENCH_ARGS)

bench-sessions: ## Time `mikrotik sync-sessions` on 20 mock routers x 5 000 sessions (docs/BENCHMARKS.md)
	$(CARGO) bench --locked --bench sessions_sync -- $(BENCH_ARGS)

bench-codec: ## RouterOS codec throughput, encoding and decoding !re sentences (criterion)
	$(CARGO) bench --locked --bench routeros_codec

# FreeRADIUS's auth rate over our RADIUS schema vs. its own schema.sql, on
# PostgreSQL and MariaDB (BENCH_POSTGRES_URL, BENCH_MYSQL_URL; empty skips).
bench-radius: ## Benchmark FreeRADIUS auth on our schema vs. its own (docs/BENCHMARKS.md)
	benches/freeradius_auth.sh

bench-enforcement: ## Suspend 10 000 subscribers with open sessions on PostgreSQL: sent, confirmed, memory (docs/BENCHMARKS.md)
	$(CARGO) bench --locked --bench enforcement -- $(BENCH_ARGS)

bench-quota: ## radacct interim updates/s with and without quota metering, 20 000 sessions, PostgreSQL (docs/BENCHMARKS.md)
	$(CARGO) bench --locked --bench quota_metering -- $(BENCH_ARGS)

bench-radius-sync: ## Time `radius sync-users` for 100 000 users on PostgreSQL (docs/BENCHMARKS.md)
	$(CARGO) bench --locked --bench radius_sync -- $(BENCH_ARGS)

# A mixed API load for LOADTEST_DURATION (default 5 minutes) against a
# release `ispd serve` on loopback, with wrk (apt-get install wrk).
LOADTEST_DURATION ?= 300s
loadtest: assets ## Mixed API load with wrk for 5 minutes: req/s, p50/p99, errors, RSS (docs/BENCHMARKS.md)
	$(CARGO) build --release --locked --bin ispd
	LOADTEST_DURATION=$(LOADTEST_DURATION) ISPD_BIN="$${CARGO_TARGET_DIR:-target}/release/ispd" benches/loadtest/run.sh

# The RouterOS API decoder under libFuzzer (fuzz/; nightly and cargo-fuzz:
# `cargo install cargo-fuzz`). A bounded run: FUZZ_SECONDS (default 30).
FUZZ_SECONDS ?= 30
fuzz: ## Fuzz the RouterOS decoder for FUZZ_SECONDS seconds (nightly + cargo-fuzz)
	cd fuzz && $(CARGO) +nightly fuzz run routeros_decoder -- -max_total_time=$(FUZZ_SECONDS)

clean: ## Remove build output and local data
	$(CARGO) clean
	rm -rf node_modules static/assets static/.vite
