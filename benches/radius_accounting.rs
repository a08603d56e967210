//! RADIUS accounting benchmark: one user's accounting page and the online
//! list over a million radacct rows, on PostgreSQL.
//!
//! `make bench` runs it after the IPAM benchmark (`cargo bench --bench
//! radius_accounting`). Options: `--quick` (100 000 rows; the target is
//! then indicative only), `--rows N`.
//!
//! BENCH_POSTGRES_URL names a server where we may create databases (default
//! postgres://postgres@127.0.0.1:5432/postgres); a scratch database
//! `ispd_bench_<random>` is created and dropped at the end. Without
//! BENCH_POSTGRES_URL and with no server at the default, the run is skipped.
//!
//! The rows are generated in bulk with `generate_series` the way
//! FreeRADIUS's queries would leave them: 10 000 users, sessions spread
//! over 180 days, the newest session of each user still open (10 000
//! online), octets with gigawords folded in. Every query goes through
//! `ispd::radius::accounting`, the functions the pages and the API call.
//! Each is timed first on FreeRADIUS's own schema (RADIUS migration 1
//! only), then with ispd's indexes (migration 2). docs/BENCHMARKS.md
//! records the figures.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use migration::{MigratorTrait, RadiusMigrator};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

use ispd::query::PageRequest;
use ispd::radius::accounting::{self, DateRange, OnlineFilter, OnlineSort, StaleSettings};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The target for one user's accounting page and the online list (p95).
const TARGET: Duration = Duration::from_millis(50);
const USERS: i64 = 10_000;
const REPEATS: usize = 30;

fn main() -> ExitCode {
    let mut rows: i64 = 1_000_000;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                quick = true;
                rows = 100_000;
            }
            "--rows" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n >= USERS => rows = n,
                _ => {
                    eprintln!("--rows needs a number of at least {USERS}");
                    return ExitCode::from(2);
                }
            },
            // cargo bench passes --bench to every bench target; the IPAM
            // benchmark's backend switches are accepted and ignored.
            "--bench" | "--postgres" | "--sqlite" => {}
            "-h" | "--help" => {
                println!("usage: cargo bench --bench radius_accounting -- [--quick] [--rows N]");
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
    match runtime.block_on(run(rows, quick)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(4)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .with_context(|| format!("connecting to {}", ispd::config::redact_url(url)))
}

/// A database of our own on the server, dropped at the end.
struct Scratch {
    server_url: String,
    name: String,
    url: String,
}

impl Scratch {
    async fn create(server_url: &str) -> anyhow::Result<Self> {
        let admin = connect(server_url).await?;
        let name = format!("ispd_bench_{}", rand::random::<u32>());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        admin.close().await.ok();
        let (base, _) = server_url
            .rsplit_once('/')
            .context("the server URL has no database path")?;
        Ok(Self {
            server_url: server_url.to_string(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    async fn drop_database(self) {
        if let Ok(admin) = connect(&self.server_url).await {
            let _ = admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .await;
        }
    }
}

async fn run(rows: i64, quick: bool) -> anyhow::Result<ExitCode> {
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
                "RADIUS accounting benchmark: skipped, no PostgreSQL at {DEFAULT_POSTGRES_URL} ({e:#}); set BENCH_POSTGRES_URL"
            );
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e),
    };
    let db = connect(&scratch.url).await?;
    let outcome = bench(&db, rows, quick).await;
    db.close().await.ok();
    scratch.drop_database().await;
    outcome
}

async fn exec(db: &DatabaseConnection, sql: &str) -> anyhow::Result<()> {
    db.execute_unprepared(sql)
        .await
        .with_context(|| sql.chars().take(80).collect::<String>())?;
    Ok(())
}

/// `rows` sessions of USERS users over 180 days, as FreeRADIUS writes them;
/// each user's newest session is open.
async fn fill(db: &DatabaseConnection, rows: i64) -> anyhow::Result<()> {
    let step = 180 * 86_400 / rows;
    let open_from = rows - USERS;
    exec(
        db,
        &format!(
            "INSERT INTO radacct (acctsessionid, acctuniqueid, username, realm, nasipaddress, \
             nasportid, nasporttype, acctstarttime, acctupdatetime, acctstoptime, acctinterval, \
             acctsessiontime, acctauthentic, connectinfo_start, acctinputoctets, \
             acctoutputoctets, calledstationid, callingstationid, acctterminatecause, \
             servicetype, framedprotocol, framedipaddress) \
             SELECT to_hex(g), md5(g::text), 'user' || (g % {USERS}), NULL, \
                    ('192.0.2.' || (g % 20 + 1))::inet, 'pppoe-' || (g % 1000), 'Ethernet', \
                    s.start, \
                    CASE WHEN g > {open_from} THEN now() - interval '60 seconds' ELSE s.start + make_interval(secs => s.dur) END, \
                    CASE WHEN g > {open_from} THEN NULL ELSE s.start + make_interval(secs => s.dur) END, \
                    300, s.dur, 'RADIUS', '', \
                    ((g % 3)::bigint << 32) + (g * 7919 % 1000000000), \
                    ((g % 5)::bigint << 32) + (g * 104729 % 1000000000), \
                    'bras', upper(substr(md5((g % {USERS})::text), 1, 12)), \
                    CASE WHEN g > {open_from} THEN NULL ELSE 'User-Request' END, \
                    'Framed-User', 'PPP', '100.64.0.0'::inet + (g % 60000) \
             FROM generate_series(1::bigint, {rows}) AS g, \
             LATERAL (SELECT now() - make_interval(secs => ({rows} - g) * {step} + 60) AS start, \
                             (g * 37 % 86000 + 60)::bigint AS dur) AS s"
        ),
    )
    .await?;
    exec(db, "ANALYZE radacct").await
}

struct Timing {
    median: Duration,
    p95: Duration,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Runs `query` REPEATS times (after one warm-up) and returns its timing.
async fn time<F, Fut>(mut query: F) -> anyhow::Result<Timing>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    query(REPEATS).await?;
    let mut all = Vec::with_capacity(REPEATS);
    for i in 0..REPEATS {
        let started = Instant::now();
        query(i).await?;
        all.push(started.elapsed());
    }
    all.sort();
    Ok(Timing {
        median: all[all.len() / 2],
        p95: all[(all.len() * 95 / 100).min(all.len() - 1)],
    })
}

fn user(i: usize) -> String {
    format!("user{}", (i as i64 * 7_771) % USERS)
}

/// (what, timing, whether the 50 ms target applies)
async fn measure(db: &DatabaseConnection) -> anyhow::Result<Vec<(&'static str, Timing, bool)>> {
    let page = PageRequest {
        page: 1,
        per_page: 50,
    };
    let now = Utc::now();
    let month = DateRange::last_days(30, now);
    let mut out = Vec::new();
    out.push((
        "user accounting, last 30 days (sessions page + daily/monthly totals)",
        time(|i| async move {
            accounting::get_accounting_data(db, &user(i), &month, page).await?;
            Ok(())
        })
        .await?,
        true,
    ));
    out.push((
        "user accounting, all time",
        time(|i| async move {
            accounting::get_accounting_data(db, &user(i), &DateRange::default(), page).await?;
            Ok(())
        })
        .await?,
        true,
    ));
    out.push((
        "online list, page 1, newest first",
        time(|_| async move {
            accounting::online_sessions(db, &OnlineFilter::default(), OnlineSort::default(), page)
                .await?;
            Ok(())
        })
        .await?,
        true,
    ));
    out.push((
        "online list, page 100",
        time(|_| async move {
            let deep = PageRequest {
                page: 100,
                per_page: 50,
            };
            accounting::online_sessions(db, &OnlineFilter::default(), OnlineSort::default(), deep)
                .await?;
            Ok(())
        })
        .await?,
        true,
    ));
    out.push((
        "online list, search \"user12\"",
        time(|_| async move {
            let filter = OnlineFilter {
                q: Some("user12".into()),
                ..Default::default()
            };
            accounting::online_sessions(db, &filter, OnlineSort::default(), page).await?;
            Ok(())
        })
        .await?,
        true,
    ));
    out.push((
        "online list, one NAS",
        time(|_| async move {
            let filter = OnlineFilter {
                nas: Some("192.0.2.7".parse()?),
                ..Default::default()
            };
            accounting::online_sessions(db, &filter, OnlineSort::default(), page).await?;
            Ok(())
        })
        .await?,
        true,
    ));
    out.push((
        "online list, longest without update first",
        time(|_| async move {
            accounting::online_sessions(
                db,
                &OnlineFilter::default(),
                OnlineSort::LastUpdateOldest,
                page,
            )
            .await?;
            Ok(())
        })
        .await?,
        true,
    ));
    out.push((
        "who had an address (radacct part), a week ago",
        time(|i| async move {
            let ip: std::net::IpAddr = format!("100.64.{}.{}", i % 200, i % 250 + 1).parse()?;
            let at = Utc::now() - chrono::Duration::days(7);
            accounting::sessions_with_address(db, ip, Some(at), 100).await?;
            Ok(())
        })
        .await?,
        false,
    ));
    out.push((
        "usage report, all users, last 30 days (page 1)",
        time(|_| async move {
            accounting::usage_by_user(db, &month, None, Some(page)).await?;
            Ok(())
        })
        .await?,
        false,
    ));
    out.push((
        "stale sessions, dry run (count)",
        time(|_| async move {
            accounting::close_stale_sessions(db, StaleSettings::default(), Utc::now(), true)
                .await?;
            Ok(())
        })
        .await?,
        false,
    ));
    Ok(out)
}

async fn bench(db: &DatabaseConnection, rows: i64, quick: bool) -> anyhow::Result<ExitCode> {
    let version: String = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SHOW server_version".to_string(),
        ))
        .await?
        .context("no version")?
        .try_get_by_index(0)?;
    println!(
        "ispd RADIUS accounting benchmark{}: PostgreSQL {version}, {rows} radacct rows, {USERS} users, {} CPU(s), {}",
        if quick { " (--quick)" } else { "" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
    );
    RadiusMigrator::up(db, Some(1))
        .await
        .context("FreeRADIUS's schema")?;
    let started = Instant::now();
    fill(db, rows).await?;
    println!(
        "generated {rows} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let open: i64 = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) FROM radacct WHERE acctstoptime IS NULL".to_string(),
        ))
        .await?
        .context("no count")?
        .try_get_by_index(0)?;
    println!("open sessions: {open}");

    println!("\n== FreeRADIUS's indexes only (RADIUS migration 1) ==");
    let stock = measure(db).await?;
    report(&stock);

    RadiusMigrator::up(db, None)
        .await
        .context("ispd's indexes")?;
    exec(db, "ANALYZE radacct").await?;
    println!("\n== With ispd's indexes (RADIUS migration 2) ==");
    let ours = measure(db).await?;
    report(&ours);

    let missed: Vec<&str> = ours
        .iter()
        .filter(|(_, t, target)| *target && t.p95 > TARGET)
        .map(|(what, ..)| *what)
        .collect();
    if missed.is_empty() {
        println!("\nPASS  every targeted query under {} at p95", ms(TARGET));
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\nFAIL  over {} at p95: {}", ms(TARGET), missed.join("; "));
        Ok(if quick {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

fn report(results: &[(&'static str, Timing, bool)]) {
    println!("{:<72} {:>10} {:>10}", "query", "median", "p95");
    for (what, t, target) in results {
        println!(
            "{:<72} {:>10} {:>10}{}",
            what,
            ms(t.median),
            ms(t.p95),
            if *target { "" } else { "  (no target)" }
        );
    }
}
