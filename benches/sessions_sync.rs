//! `mikrotik sync-sessions` at scale: 20 mock routers with 5 000 active
//! PPPoE sessions each (100 000 sessions), on SQLite and PostgreSQL.
//!
//! Targets (docs/BENCHMARKS.md): the first sync (100 000 inserts) under
//! 10 s, peak memory (VmHWM) under 200 MB.
//!
//! The mock routers are `ispd mock-routeros --sessions N` processes, so that
//! this process holds only what the sync holds: its peak RSS (VmHWM from
//! /proc/self/status) is the sync's. Each run times three syncs through
//! `mikrotik::sessions::sync_sessions` (the function the CLI calls): the
//! first (every session new), the second (every session updated), and a
//! third after 10% of the sessions ended on every router (closing).
//!
//! `make bench-sessions` runs it (`cargo bench --bench sessions_sync`).
//! Options: `--quick` (4 routers x 1 000 sessions), `--sqlite` /
//! `--postgres` for one backend, `--routers N`, `--sessions N`,
//! `--concurrency N`. PostgreSQL: BENCH_POSTGRES_URL as in the IPAM
//! benchmark (a scratch database is created and dropped; skipped when the
//! default server does not answer).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use migration::MigratorTrait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    Set,
};

mod support;

use ispd::crypto::AppKey;
use ispd::mikrotik::entities::mikrotik_router;
use ispd::mikrotik::pool::{PoolSettings, RouterPool};
use ispd::mikrotik::routeros::Client;
use ispd::mikrotik::sessions::{read_active_sessions, sync_sessions, SyncOptions, SyncReport};
use ispd::users::entities::network_user_session;
use support::{Scratch, DEFAULT_POSTGRES_URL};

const PASSWORD: &str = "bench-pass";
const MAX_FIRST_SYNC: Duration = Duration::from_secs(10);
const MAX_PEAK_RSS_MB: f64 = 200.0;

struct Plan {
    routers: usize,
    sessions: usize,
    concurrency: usize,
    sqlite: bool,
    postgres: bool,
    quick: bool,
}

fn plan() -> anyhow::Result<Plan> {
    let mut plan = Plan {
        routers: 20,
        sessions: 5_000,
        concurrency: SyncOptions::default().concurrency,
        sqlite: true,
        postgres: true,
        quick: false,
    };
    let mut args = std::env::args().skip(1);
    let mut only = Vec::new();
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> anyhow::Result<usize> {
            args.next()
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{what} needs a number"))
        };
        match arg.as_str() {
            "--quick" => {
                plan.quick = true;
                plan.routers = 4;
                plan.sessions = 1_000;
            }
            "--sqlite" | "--postgres" => only.push(arg),
            "--routers" => plan.routers = number("--routers")?,
            "--sessions" => plan.sessions = number("--sessions")?,
            "--concurrency" => plan.concurrency = number("--concurrency")?,
            // cargo bench passes --bench.
            "--bench" => {}
            other => bail!("unknown option {other}"),
        }
    }
    if !only.is_empty() {
        plan.sqlite = only.iter().any(|o| o == "--sqlite");
        plan.postgres = only.iter().any(|o| o == "--postgres");
    }
    Ok(plan)
}

/// A `mock-routeros` process, killed on drop.
struct MockProcess {
    child: Child,
    addr: SocketAddr,
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_mock(sessions: usize) -> anyhow::Result<MockProcess> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ispd"))
        .args([
            "mock-routeros",
            "--listen",
            "127.0.0.1:0",
            "--password",
            PASSWORD,
        ])
        .args(["--sessions", &sessions.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ispd mock-routeros")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("unexpected first line from the mock: {line:?}"))?;
    Ok(MockProcess { child, addr })
}

/// This process's peak resident set (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn add_routers(
    db: &DatabaseConnection,
    key: &AppKey,
    mocks: &[MockProcess],
) -> anyhow::Result<()> {
    let now = Utc::now().fixed_offset();
    for (i, mock) in mocks.iter().enumerate() {
        mikrotik_router::ActiveModel {
            name: Set(format!("bench-{i:02}")),
            ip_address: Set(mock.addr.ip().to_string()),
            api_port: Set(i32::from(mock.addr.port())),
            use_tls: Set(false),
            tls_fingerprint: Set(None),
            username: Set("admin".into()),
            password_encrypted: Set(key.encrypt(PASSWORD)),
            status: Set("unknown".into()),
            identity: Set(None),
            version: Set(None),
            last_seen_at: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

/// Every tenth session on each mock ends (the subscriber hangs up).
async fn hang_up_a_tenth(mocks: &[MockProcess], sessions: usize) -> anyhow::Result<usize> {
    let ids: Vec<String> = (1..=sessions)
        .filter(|n| n % 10 == 0)
        .map(|n| format!("*{n:X}"))
        .collect();
    for mock in mocks {
        let client = Client::connect(
            &mock.addr.to_string(),
            "admin",
            PASSWORD,
            Duration::from_secs(30),
        )
        .await?;
        for chunk in ids.chunks(500) {
            client
                .command("/ppp/active/remove", &[(".id", &chunk.join(","))], &[])
                .await?;
        }
        client.close().await;
    }
    Ok(ids.len() * mocks.len())
}

async fn timed_sync(
    db: &DatabaseConnection,
    pool: &RouterPool,
    concurrency: usize,
) -> anyhow::Result<(Duration, SyncReport)> {
    let started = Instant::now();
    let report = sync_sessions(db, pool, SyncOptions { concurrency }).await?;
    let took = started.elapsed();
    if report.failed() > 0 {
        bail!("some routers failed:\n{report}");
    }
    Ok((took, report))
}

/// Runs the three syncs on one database; returns the first sync's time.
async fn run(
    label: &str,
    url: &str,
    plan: &Plan,
    mocks: &[MockProcess],
) -> anyhow::Result<Duration> {
    let db = ispd::db::connect(url, Duration::from_secs(5)).await?;
    migration::Migrator::up(&db, None).await?;
    let key = AppKey::generate();
    add_routers(&db, &key, mocks).await?;
    let pool = RouterPool::new(key, PoolSettings::with_timeout(Duration::from_secs(30)));
    let total = plan.routers * plan.sessions;

    // Reading alone (no database), as the sync reads: what the routers and
    // the codec cost, apart from the writes.
    let routers = mikrotik_router::Entity::find().all(&db).await?;
    let started = Instant::now();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(plan.concurrency));
    let mut reads = tokio::task::JoinSet::new();
    for router in routers {
        let (pool, limit) = (pool.clone(), limit.clone());
        reads.spawn(async move {
            let _permit = limit.acquire_owned().await;
            pool.run(&router, read_active_sessions)
                .await
                .map(|s| s.len())
        });
    }
    let mut read = 0;
    while let Some(joined) = reads.join_next().await {
        read += joined??;
    }
    assert_eq!(read, total);
    let read_only = started.elapsed();

    let (first, report) = timed_sync(&db, &pool, plan.concurrency).await?;
    let new: usize = report.routers.iter().map(|r| r.new).sum();
    assert_eq!(new, total, "every session is new on the first sync");
    let (second, report) = timed_sync(&db, &pool, plan.concurrency).await?;
    assert_eq!(report.routers.iter().map(|r| r.new).sum::<usize>(), 0);
    let ended = hang_up_a_tenth(mocks, plan.sessions).await?;
    let (third, report) = timed_sync(&db, &pool, plan.concurrency).await?;
    let closed: usize = report.routers.iter().map(|r| r.closed).sum();
    assert_eq!(closed, ended);
    let active = network_user_session::Entity::find()
        .filter(network_user_session::Column::Status.eq("active"))
        .count(&db)
        .await?;
    assert_eq!(active as usize, total - ended);
    println!(
        "{label:<10} {:>3} routers x {:>5} sessions: read only {:>6.2} s; first sync {:>7.2} s \
         ({:>7.0} sessions/s), second {:>6.2} s, after {} hang-ups {:>6.2} s",
        plan.routers,
        plan.sessions,
        read_only.as_secs_f64(),
        first.as_secs_f64(),
        total as f64 / first.as_secs_f64(),
        second.as_secs_f64(),
        ended,
        third.as_secs_f64(),
    );
    db.close().await.ok();
    Ok(first)
}

async fn bench(plan: Plan) -> anyhow::Result<bool> {
    println!(
        "sync-sessions benchmark: {} routers x {} sessions, concurrency {}{}",
        plan.routers,
        plan.sessions,
        plan.concurrency,
        if plan.quick { " (quick)" } else { "" }
    );
    let mut ok = true;
    let mut check = |label: &str, first: Duration| {
        if !plan.quick && first > MAX_FIRST_SYNC {
            println!(
                "  {label}: first sync above the {} s target",
                MAX_FIRST_SYNC.as_secs()
            );
            ok = false;
        }
    };
    if plan.sqlite {
        let mocks = (0..plan.routers)
            .map(|_| start_mock(plan.sessions))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let dir = tempfile::tempdir()?;
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        );
        let first = run("SQLite", &url, &plan, &mocks).await?;
        check("SQLite", first);
    }
    if plan.postgres {
        let (server, explicit) = match std::env::var("BENCH_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => (url, true),
            _ => (DEFAULT_POSTGRES_URL.to_string(), false),
        };
        match Scratch::create(&server).await {
            Ok(scratch) => {
                let mocks = (0..plan.routers)
                    .map(|_| start_mock(plan.sessions))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let result = run("PostgreSQL", &scratch.url, &plan, &mocks).await;
                scratch.drop_database().await;
                check("PostgreSQL", result?);
            }
            Err(err) if !explicit => println!("PostgreSQL skipped: {err:#}"),
            Err(err) => return Err(err),
        }
    }
    let peak = peak_rss_mb();
    println!("peak RSS (VmHWM) of the syncing process: {peak:.0} MB");
    if !plan.quick && peak > MAX_PEAK_RSS_MB {
        println!("  above the {MAX_PEAK_RSS_MB} MB target");
        ok = false;
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let plan = match plan() {
        Ok(plan) => plan,
        Err(err) => {
            eprintln!("sessions_sync: {err:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    match runtime.block_on(bench(plan)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("sessions_sync: {err:#}");
            ExitCode::FAILURE
        }
    }
}
