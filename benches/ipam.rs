//! IPAM benchmarks: allocation latency in full subnets, allocation
//! throughput under concurrency, and the availability and utilization
//! reads of a large pool, on SQLite and PostgreSQL.
//!
//! `make bench` runs it (`cargo bench --bench ipam`); `make bench
//! BENCH_ARGS=--quick` is a short smoke run. Options:
//!
//! * `--quick`: small sizes; the targets are then only indicative.
//! * `--sqlite` / `--postgres`: one backend only (both by default).
//!
//! PostgreSQL: BENCH_POSTGRES_URL names a server where we may create
//! databases (default postgres://postgres@127.0.0.1:5432/postgres). A scratch
//! database `ispd_bench_<random>` is created and dropped at the end. When
//! BENCH_POSTGRES_URL is not set and the default server does not answer,
//! PostgreSQL is skipped with a message; when it is set, that is an error.
//! SQLite runs in a file in a temporary directory.
//!
//! Every allocation goes through `ipam::service::allocate_ip`, the function
//! the API, the pages and the CLI call. Only the pre-filled allocations are
//! written directly (bulk inserts, with their free ranges computed the way
//! `service::rebuild_free_ranges` does), to keep the run short.
//! docs/BENCHMARKS.md describes the method and records the figures.

use std::collections::HashSet;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set,
};

mod support;

use ispd::audit::Actor;
use ispd::ipam::domain::{
    from_u128, initial_free_ranges, key_bytes, to_u128, Cidr, IpVersion, KeyRange,
};
use ispd::ipam::entities::{ip_allocation, ip_free_range};
use ispd::ipam::service::{self, AllocationInput, IpamSettings, PoolInput, SubnetInput};
use support::{Scratch, DEFAULT_POSTGRES_URL};

/// The targets of the benchmark (docs/BENCHMARKS.md).
const MAX_LATENCY_GROWTH: f64 = 2.0;
const MIN_SPREAD_THROUGHPUT_POSTGRES: f64 = 1000.0;
const MAX_READ_MEDIAN: Duration = Duration::from_millis(20);

/// Sizes of a run.
#[derive(Debug, Clone)]
struct Plan {
    quick: bool,
    /// Allocations timed per latency scenario.
    latency_samples: usize,
    /// Pre-filled allocations of the IPv4 /16 scenarios.
    ipv4_fills: Vec<usize>,
    /// Pre-filled allocations of the IPv6 /64 scenarios.
    ipv6_fills: Vec<usize>,
    /// Allocations per throughput run.
    throughput_allocations: usize,
    clients: Vec<usize>,
    spread_subnets: usize,
    /// The reads pool: subnets, allocations per subnet, timed calls.
    read_subnets: usize,
    read_allocations_per_subnet: usize,
    read_samples: usize,
}

impl Plan {
    fn full() -> Self {
        Self {
            quick: false,
            latency_samples: 200,
            ipv4_fills: vec![0, 10_000, 60_000],
            ipv6_fills: vec![0, 60_000],
            throughput_allocations: 3_000,
            clients: vec![1, 8, 32],
            spread_subnets: 32,
            read_subnets: 100,
            read_allocations_per_subnet: 1_000,
            read_samples: 50,
        }
    }

    fn quick() -> Self {
        Self {
            quick: true,
            latency_samples: 20,
            ipv4_fills: vec![0, 5_000],
            ipv6_fills: vec![0],
            throughput_allocations: 200,
            clients: vec![1, 8, 32],
            spread_subnets: 32,
            read_subnets: 10,
            read_allocations_per_subnet: 1_000,
            read_samples: 10,
        }
    }
}

/// One PASS/FAIL line of the summary.
struct Check {
    backend: &'static str,
    what: String,
    passed: bool,
    /// A correctness check (duplicates, errors), as opposed to a speed target.
    correctness: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Sqlite,
    Postgres,
}

fn main() -> ExitCode {
    let mut plan = Plan::full();
    let mut backends = vec![Which::Sqlite, Which::Postgres];
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => plan = Plan::quick(),
            "--sqlite" => backends = vec![Which::Sqlite],
            "--postgres" => backends = vec![Which::Postgres],
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            "-h" | "--help" => {
                println!("usage: cargo bench --bench ipam -- [--quick] [--sqlite | --postgres]");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(plan, backends)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(plan: Plan, backends: Vec<Which>) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    println!(
        "ispd IPAM benchmark{}: {} CPU(s), {}",
        if plan.quick { " (--quick)" } else { "" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
    );
    let mut checks = Vec::new();
    for which in backends {
        match which {
            Which::Sqlite => {
                let dir = tempfile::tempdir().context("temporary directory")?;
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("bench.db").display()
                );
                let db = connect(&url, 40).await?;
                println!(
                    "\n== SQLite {} (temporary file) ==",
                    sqlite_version(&db).await?
                );
                bench_backend("SQLite", &db, &plan, &mut checks).await?;
                db.close().await.ok();
            }
            Which::Postgres => {
                let explicit = std::env::var("BENCH_POSTGRES_URL")
                    .ok()
                    .filter(|u| !u.is_empty());
                let server_url = explicit
                    .clone()
                    .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_string());
                let scratch = match Scratch::create(&server_url).await {
                    Ok(scratch) => scratch,
                    Err(e) if explicit.is_none() => {
                        println!(
                            "\n== PostgreSQL: skipped, no server at {DEFAULT_POSTGRES_URL} \
                             ({e:#}); set BENCH_POSTGRES_URL =="
                        );
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let db = connect(&scratch.url, 40).await?;
                let version: String = scalar(&db, "SHOW server_version").await?;
                println!(
                    "\n== PostgreSQL {version} (scratch database {}) ==",
                    scratch.name
                );
                let outcome = bench_backend("PostgreSQL", &db, &plan, &mut checks).await;
                db.close().await.ok();
                scratch.drop_database().await;
                outcome?;
            }
        }
    }

    println!("\n== Summary ==");
    let mut failed_correctness = false;
    let mut failed_target = false;
    for check in &checks {
        let verdict = if check.passed { "PASS" } else { "FAIL" };
        println!("  {verdict}  {:<10}  {}", check.backend, check.what);
        if !check.passed {
            if check.correctness {
                failed_correctness = true;
            } else {
                failed_target = true;
            }
        }
    }
    println!("Total time: {:.0} s", started.elapsed().as_secs_f64());
    if failed_correctness {
        println!("A correctness check failed.");
        return Ok(ExitCode::FAILURE);
    }
    if failed_target {
        if plan.quick {
            println!("(--quick: the speed targets are indicative only; not failing the run.)");
        } else {
            println!("A speed target was missed.");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A pool like `ispd::db::connect` opens (WAL, busy timeout and foreign
/// keys on SQLite), with room for every concurrent client.
async fn connect(url: &str, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(max_connections)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(60))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SETTINGS.lock_timeout)
                .foreign_keys(true)
        });
    let db = Database::connect(options)
        .await
        .with_context(|| format!("connecting to {}", ispd::config::redact_url(url)))?;
    Migrator::up(&db, None).await.context("migrating")?;
    Ok(db)
}

/// Generous: the throughput runs queue up to 32 clients on one subnet's
/// lock, and a Busy answer would count as an error.
const SETTINGS: IpamSettings = IpamSettings {
    lock_timeout: Duration::from_secs(30),
};

async fn scalar<T: sea_orm::TryGetable>(db: &DatabaseConnection, sql: &str) -> anyhow::Result<T> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql.to_string(),
        ))
        .await?
        .context("no row")?;
    Ok(row.try_get_by_index(0)?)
}

async fn sqlite_version(db: &DatabaseConnection) -> anyhow::Result<String> {
    scalar(db, "SELECT sqlite_version()").await
}

// ------------------------------------------------------------- scenarios

async fn bench_backend(
    backend: &'static str,
    db: &DatabaseConnection,
    plan: &Plan,
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
    let mut space = Space::new(db).await?;
    latency(backend, db, plan, &mut space, checks).await?;
    throughput(backend, db, plan, &mut space, checks).await?;
    reads(backend, db, plan, checks).await?;
    Ok(())
}

/// Hands out networks that overlap nothing created before, inside one IPv4
/// and one IPv6 pool.
struct Space {
    v4_pool: i32,
    v6_pool: i32,
    /// Next free /16 of 10.0.0.0/8.
    next_v4_16: u32,
    /// Next free /64 of 2001:db8::/48.
    next_v6_64: u32,
}

impl Space {
    async fn new(db: &DatabaseConnection) -> anyhow::Result<Self> {
        let v4_pool = create_pool(db, "bench-v4", "10.0.0.0", "10.255.255.255").await?;
        let v6_pool = create_pool(
            db,
            "bench-v6",
            "2001:db8::",
            "2001:db8:0:ffff:ffff:ffff:ffff:ffff",
        )
        .await?;
        Ok(Self {
            v4_pool,
            v6_pool,
            next_v4_16: 0,
            next_v6_64: 0,
        })
    }

    /// A fresh IPv4 /16 as `10.N.0.0`.
    fn v4_16(&mut self) -> u32 {
        let block = self.next_v4_16;
        assert!(block < 256, "out of 10.0.0.0/8");
        self.next_v4_16 += 1;
        block
    }

    async fn v4_subnet16(&mut self, db: &DatabaseConnection) -> anyhow::Result<i32> {
        let block = self.v4_16();
        create_subnet(db, self.v4_pool, &format!("10.{block}.0.0/16")).await
    }

    async fn v6_subnet64(&mut self, db: &DatabaseConnection) -> anyhow::Result<i32> {
        let n = self.next_v6_64;
        self.next_v6_64 += 1;
        create_subnet(db, self.v6_pool, &format!("2001:db8:0:{n:x}::/64")).await
    }

    /// `count` (at most 32) /21 subnets of one fresh /16.
    async fn v4_subnets21(
        &mut self,
        db: &DatabaseConnection,
        count: usize,
    ) -> anyhow::Result<Vec<i32>> {
        assert!(count <= 32);
        let block = self.v4_16();
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            ids.push(create_subnet(db, self.v4_pool, &format!("10.{block}.{}.0/21", i * 8)).await?);
        }
        Ok(ids)
    }
}

async fn create_pool(
    db: &DatabaseConnection,
    name: &str,
    start: &str,
    end: &str,
) -> anyhow::Result<i32> {
    let pool = service::create_pool(
        db,
        &Actor::system(),
        &PoolInput {
            name: name.into(),
            start_ip: start.into(),
            end_ip: end.into(),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating pool {name}: {e:?}"))?;
    Ok(pool.id)
}

async fn create_subnet(
    db: &DatabaseConnection,
    pool_id: i32,
    network: &str,
) -> anyhow::Result<i32> {
    let subnet = service::create_subnet(
        db,
        &Actor::system(),
        &SubnetInput {
            pool_id,
            network: network.into(),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating subnet {network}: {e:?}"))?;
    Ok(subnet.id)
}

/// Bulk-inserts active allocations of `keys` (sorted, usable, distinct) in
/// a fresh subnet, then replaces its free ranges by the matching ones: the
/// state `allocate_ip` would have left, without its cost. The allocations
/// have a username each and no MAC address, like PPPoE subscribers.
async fn prefill(
    db: &DatabaseConnection,
    subnet_id: i32,
    network: &str,
    keys: &[u128],
) -> anyhow::Result<()> {
    let cidr = Cidr::parse(network).map_err(anyhow::Error::msg)?;
    let now = Utc::now();
    // 12 bound values per row: 1000 rows stay below every backend's limit.
    for (chunk_no, chunk) in keys.chunks(1000).enumerate() {
        let rows = chunk.iter().enumerate().map(|(i, &key)| {
            let ip = from_u128(key, cidr.version());
            ip_allocation::ActiveModel {
                subnet_id: Set(subnet_id),
                ip_address: Set(ip.to_string()),
                ip_key: Set(key_bytes(key)),
                mac_address: Set(None),
                username: Set(Some(format!("pre-{subnet_id}-{}", chunk_no * 1000 + i))),
                allocated_at: Set(now.into()),
                released_at: Set(None),
                expires_at: Set(None),
                status: Set("active".into()),
                active: Set(Some(true)),
                created_at: Set(now.into()),
                updated_at: Set(now.into()),
                ..Default::default()
            }
        });
        ip_allocation::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await
            .context("bulk insert of allocations")?;
    }
    // The free ranges: the usable addresses less the taken keys.
    let mut free = Vec::new();
    for range in initial_free_ranges(&cidr, None) {
        let mut next = Some(range.start);
        for &key in keys.iter().filter(|k| range.contains(**k)) {
            if let Some(start) = next.filter(|s| key > *s) {
                free.push(KeyRange {
                    start,
                    end: key - 1,
                });
            }
            next = key.checked_add(1);
        }
        if let Some(start) = next.filter(|s| *s <= range.end) {
            free.push(KeyRange {
                start,
                end: range.end,
            });
        }
    }
    ip_free_range::Entity::delete_many()
        .filter(ip_free_range::Column::SubnetId.eq(subnet_id))
        .exec(db)
        .await?;
    for chunk in free.chunks(1000) {
        let rows = chunk.iter().map(|r| ip_free_range::ActiveModel {
            subnet_id: Set(subnet_id),
            start_key: Set(key_bytes(r.start)),
            end_key: Set(key_bytes(r.end)),
            ..Default::default()
        });
        ip_free_range::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await
            .context("bulk insert of free ranges")?;
    }
    Ok(())
}

/// PostgreSQL: refresh the planner's statistics after a bulk load, as
/// autovacuum does on a live server within a minute. SQLite: nothing; ispd
/// never runs ANALYZE there, so neither does the benchmark.
async fn analyze(db: &DatabaseConnection) -> anyhow::Result<()> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared("VACUUM ANALYZE").await?;
    }
    Ok(())
}

/// Median and 95th percentile.
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort_unstable();
    let n = samples.len();
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2
    };
    let p95 = samples[((n * 95).div_ceil(100)).max(1) - 1];
    (median, p95)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

async fn allocate(
    db: &DatabaseConnection,
    subnet_id: i32,
    username: String,
) -> anyhow::Result<(i32, IpAddr)> {
    let allocated = service::allocate_ip(
        db,
        SETTINGS,
        &Actor::system(),
        &AllocationInput {
            subnet_id,
            username: Some(username),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !allocated.created {
        bail!("allocate_ip returned an existing allocation for a new username");
    }
    let ip: IpAddr = allocated.allocation.ip_address.parse()?;
    Ok((subnet_id, ip))
}

/// Asking again for a username that holds an address returns that address
/// (the lookup `allocate_ip` makes before every allocation).
async fn check_idempotent(
    db: &DatabaseConnection,
    subnet_id: i32,
    username: String,
    held: u128,
) -> anyhow::Result<()> {
    let again = service::allocate_ip(
        db,
        SETTINGS,
        &Actor::system(),
        &AllocationInput {
            subnet_id,
            username: Some(username.clone()),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ip: IpAddr = again.allocation.ip_address.parse()?;
    if again.created || to_u128(ip) != held {
        bail!("allocating again for {username} did not return its address");
    }
    Ok(())
}

async fn latency(
    backend: &'static str,
    db: &DatabaseConnection,
    plan: &Plan,
    space: &mut Space,
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
    println!(
        "\nAllocation latency: {} allocations through allocate_ip, one at a time",
        plan.latency_samples
    );
    println!(
        "  {:<44} {:>10} {:>10} {:>9}",
        "subnet, addresses already allocated", "median", "p95", "prefill"
    );
    let mut v4_medians = Vec::new();
    let mut v6_medians = Vec::new();
    let scenarios = plan
        .ipv4_fills
        .iter()
        .map(|&f| (IpVersion::V4, f))
        .chain(plan.ipv6_fills.iter().map(|&f| (IpVersion::V6, f)));
    for (version, fill) in scenarios {
        let (subnet_id, network) = match version {
            IpVersion::V4 => {
                let id = space.v4_subnet16(db).await?;
                (id, format!("10.{}.0.0/16", space.next_v4_16 - 1))
            }
            IpVersion::V6 => {
                let id = space.v6_subnet64(db).await?;
                (id, format!("2001:db8:0:{:x}::/64", space.next_v6_64 - 1))
            }
        };
        // The lowest `fill` usable addresses: the next free address lies
        // above all of them, the worst case for a search of the allocations.
        let cidr = Cidr::parse(&network).map_err(anyhow::Error::msg)?;
        let first = cidr.usable().start;
        let keys: Vec<u128> = (0..fill as u128).map(|i| first + i).collect();
        let loaded = Instant::now();
        prefill(db, subnet_id, &network, &keys).await?;
        if fill > 0 {
            analyze(db).await?;
        }
        let prefill_time = loaded.elapsed();
        // Warm up the connections and caches; not timed.
        for i in 0..5 {
            allocate(db, subnet_id, format!("warm-{subnet_id}-{i}")).await?;
        }
        check_idempotent(
            db,
            subnet_id,
            format!("warm-{subnet_id}-0"),
            first + fill as u128,
        )
        .await?;
        let mut samples = Vec::with_capacity(plan.latency_samples);
        for i in 0..plan.latency_samples {
            let t = Instant::now();
            let (_, ip) = allocate(db, subnet_id, format!("lat-{subnet_id}-{i}")).await?;
            samples.push(t.elapsed());
            // Always the lowest free address: the one above the pre-fill
            // and the warm-up.
            let expected = first + (fill + 5 + i) as u128;
            if to_u128(ip) != expected {
                bail!(
                    "expected the lowest free address {}, got {ip}",
                    from_u128(expected, version)
                );
            }
        }
        let (median, p95) = percentiles(&mut samples);
        let label = format!(
            "{} {network}, {} allocated",
            if version == IpVersion::V4 {
                "IPv4"
            } else {
                "IPv6"
            },
            thousands(fill)
        );
        println!(
            "  {label:<44} {:>10} {:>10} {:>7.1} s",
            ms(median),
            ms(p95),
            prefill_time.as_secs_f64()
        );
        match version {
            IpVersion::V4 => v4_medians.push((fill, median)),
            IpVersion::V6 => v6_medians.push((fill, median)),
        }
    }
    for (family, medians) in [("IPv4 /16", &v4_medians), ("IPv6 /64", &v6_medians)] {
        let (Some(&(low_fill, low)), Some(&(high_fill, high))) = (medians.first(), medians.last())
        else {
            continue;
        };
        if high_fill == low_fill {
            continue;
        }
        let ratio = high.as_secs_f64() / low.as_secs_f64();
        let passed = ratio <= MAX_LATENCY_GROWTH;
        let what = format!(
            "{family} median latency, {} vs {} allocated: {ratio:.2}x (target <= {MAX_LATENCY_GROWTH}x)",
            thousands(high_fill),
            thousands(low_fill)
        );
        println!("  {}: {what}", if passed { "PASS" } else { "FAIL" });
        checks.push(Check {
            backend,
            what,
            passed,
            correctness: false,
        });
    }
    Ok(())
}

struct RunResult {
    elapsed: Duration,
    allocated: Vec<(i32, IpAddr)>,
    errors: usize,
    first_error: Option<String>,
}

/// `total` allocations by `clients` tasks sharing the pool; allocation `i`
/// goes to `subnets[i % subnets.len()]`.
async fn run_clients(
    db: &DatabaseConnection,
    subnets: Arc<Vec<i32>>,
    clients: usize,
    total: usize,
    tag: String,
) -> RunResult {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (db, subnets, next, tag) = (db.clone(), subnets.clone(), next.clone(), tag.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = Vec::new();
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let subnet_id = subnets[i % subnets.len()];
                match allocate(&db, subnet_id, format!("{tag}-{i}")).await {
                    Ok(pair) => ok.push(pair),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (ok, errors)
        }));
    }
    let mut result = RunResult {
        elapsed: Duration::ZERO,
        allocated: Vec::with_capacity(total),
        errors: 0,
        first_error: None,
    };
    for task in tasks {
        let (ok, errors) = task.await.expect("client task");
        result.allocated.extend(ok);
        result.errors += errors.len();
        if result.first_error.is_none() {
            result.first_error = errors.into_iter().next();
        }
    }
    result.elapsed = started.elapsed();
    result
}

/// Active allocations of the subnets, and distinct (subnet, address) pairs
/// among them, counted by the database.
async fn count_active(db: &DatabaseConnection, subnets: &[i32]) -> anyhow::Result<(u64, u64)> {
    let active = || {
        ip_allocation::Entity::find()
            .filter(ip_allocation::Column::SubnetId.is_in(subnets.iter().copied()))
            .filter(ip_allocation::Column::Active.eq(true))
    };
    let total = active().count(db).await?;
    let distinct = active()
        .select_only()
        .column(ip_allocation::Column::SubnetId)
        .column(ip_allocation::Column::IpKey)
        .distinct()
        .count(db)
        .await?;
    Ok((total, distinct))
}

async fn throughput(
    backend: &'static str,
    db: &DatabaseConnection,
    plan: &Plan,
    space: &mut Space,
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
    let total = plan.throughput_allocations;
    println!(
        "\nThroughput: {} allocations per run by N concurrent clients (tokio tasks, one pool)",
        thousands(total)
    );
    println!(
        "  {:<28} {:>7} {:>10} {:>10} {:>7}  duplicate check",
        "layout", "clients", "alloc/s", "wall", "errors"
    );
    for spread in [false, true] {
        for &clients in &plan.clients {
            let subnets = if spread {
                space.v4_subnets21(db, plan.spread_subnets).await?
            } else {
                vec![space.v4_subnet16(db).await?]
            };
            let layout = if spread {
                format!("spread over {} /21 subnets", subnets.len())
            } else {
                "one /16 subnet".to_string()
            };
            let subnets = Arc::new(subnets);
            let tag = format!("tp-{}-{clients}", subnets[0]);
            let result = run_clients(db, subnets.clone(), clients, total, tag).await;
            let rate = result.allocated.len() as f64 / result.elapsed.as_secs_f64();
            // Duplicates: in what the clients were given, and in the database.
            let given: HashSet<(i32, IpAddr)> = result.allocated.iter().copied().collect();
            let (active, distinct) = count_active(db, &subnets).await?;
            let n = result.allocated.len() as u64;
            let unique = given.len() as u64 == n && active == n && distinct == n;
            let verdict = if unique {
                format!("ok, {} distinct", thousands(distinct as usize))
            } else {
                format!(
                    "DUPLICATES: {} returned, {} distinct returned, {active} active, {distinct} distinct active",
                    n,
                    given.len()
                )
            };
            println!(
                "  {layout:<28} {clients:>7} {rate:>10.0} {:>8.2} s {:>7}  {verdict}",
                result.elapsed.as_secs_f64(),
                result.errors
            );
            if let Some(e) = &result.first_error {
                println!("      first error: {e}");
            }
            checks.push(Check {
                backend,
                what: format!("{layout}, {clients} clients: no duplicate, no error"),
                passed: unique && result.errors == 0,
                correctness: true,
            });
            if spread && backend == "PostgreSQL" {
                let passed = rate >= MIN_SPREAD_THROUGHPUT_POSTGRES;
                let what = format!(
                    "{layout}, {clients} clients: {rate:.0} allocations/s (target >= {MIN_SPREAD_THROUGHPUT_POSTGRES:.0})"
                );
                // The target is for concurrent clients: report the others
                // for information, judge the largest client count.
                if clients == *plan.clients.iter().max().unwrap_or(&clients) {
                    println!("  {}: {what}", if passed { "PASS" } else { "FAIL" });
                    checks.push(Check {
                        backend,
                        what,
                        passed,
                        correctness: false,
                    });
                }
            }
        }
    }
    Ok(())
}

async fn reads(
    backend: &'static str,
    db: &DatabaseConnection,
    plan: &Plan,
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
    let per_subnet = plan.read_allocations_per_subnet;
    let total = plan.read_subnets * per_subnet;
    // A pool of its own in 100.64.0.0/10, subnets of /21 (2 046 usable).
    // Every other address is allocated, so the free set is fragmented: the
    // first page of 100 free addresses spans 100 free ranges.
    let pool_id = create_pool(db, "bench-reads", "100.64.0.0", "100.127.255.255").await?;
    let loaded = Instant::now();
    let mut subnets = Vec::with_capacity(plan.read_subnets);
    for i in 0..plan.read_subnets {
        let base = (100u32 << 24) | (64 << 16) | ((i as u32) << 11);
        let network = format!("{}/21", std::net::Ipv4Addr::from(base));
        let id = create_subnet(db, pool_id, &network).await?;
        let first = Cidr::parse(&network)
            .map_err(anyhow::Error::msg)?
            .usable()
            .start;
        let keys: Vec<u128> = (0..per_subnet as u128).map(|j| first + 2 * j).collect();
        prefill(db, id, &network, &keys).await?;
        subnets.push(id);
    }
    analyze(db).await?;
    println!(
        "\nReads: pool of {} /21 subnets, {} allocations (every other address), {} timed calls each",
        plan.read_subnets,
        thousands(total),
        plan.read_samples
    );
    println!(
        "  {:<44} {:>10} {:>10}   (prefill {:.1} s)",
        "",
        "median",
        "p95",
        loaded.elapsed().as_secs_f64()
    );

    let mut available = Vec::with_capacity(plan.read_samples);
    for i in 0..plan.read_samples + 3 {
        let subnet_id = subnets[i * 37 % subnets.len()];
        let t = Instant::now();
        let page = service::available_ips(db, subnet_id, None, 100)
            .await
            .map_err(|e| anyhow::anyhow!("available_ips: {e}"))?;
        let took = t.elapsed();
        if page.len() != 100 {
            bail!("available_ips returned {} addresses, not 100", page.len());
        }
        if i >= 3 {
            available.push(took);
        }
    }
    let mut utilization = Vec::with_capacity(plan.read_samples);
    for i in 0..plan.read_samples + 3 {
        let t = Instant::now();
        let report = service::pool_utilization(db, pool_id)
            .await
            .map_err(|e| anyhow::anyhow!("pool_utilization: {e}"))?;
        let took = t.elapsed();
        if report.utilization.allocated != total as u128 {
            bail!(
                "pool_utilization counted {} allocations, not {total}",
                report.utilization.allocated
            );
        }
        if i >= 3 {
            utilization.push(took);
        }
    }
    for (name, samples) in [
        ("available-ips, first page of 100", &mut available),
        ("pool utilization", &mut utilization),
    ] {
        let (median, p95) = percentiles(samples);
        println!("  {name:<44} {:>10} {:>10}", ms(median), ms(p95));
        let passed = median < MAX_READ_MEDIAN;
        let what = format!(
            "{name}, {} subnets / {} allocations: median {} (target < {} ms)",
            plan.read_subnets,
            thousands(total),
            ms(median),
            MAX_READ_MEDIAN.as_millis()
        );
        checks.push(Check {
            backend,
            what,
            passed,
            correctness: false,
        });
    }
    Ok(())
}
