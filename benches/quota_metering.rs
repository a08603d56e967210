//! What quota metering costs FreeRADIUS: radacct interim updates per
//! second with and without metering passes running, on PostgreSQL, and
//! what one pass costs per interim update it counts.
//!
//! `make bench-quota` runs it (`cargo bench --bench quota_metering`).
//! Options: `--users N` (subscribers, each with one open session; default
//! 20 000), `--seconds S` (each phase; default 30), `--writers N`
//! (connections writing interim updates at once, as FreeRADIUS's SQL
//! module pool would; default 8), `--every S` (a metering pass every S
//! seconds, as the job's schedule; default 15; 0: passes back to back).
//!
//! BENCH_POSTGRES_URL names a server where we may create databases (default
//! postgres://postgres@127.0.0.1:5432/postgres); two scratch databases are
//! created and dropped.
//!
//! The writers send FreeRADIUS's own interim-update statement (the stock
//! PostgreSQL `accounting.interim-update` query: update time, interval,
//! session time, both counters with gigawords, the framed address) for the
//! sessions in turn, as fast as they can: about a hundred times the load
//! of 20 000 subscribers with five-minute interim updates. Phase one runs
//! them alone; phase two runs them while `quotas::metering::meter` runs a
//! pass every `--every` seconds. The ratio of the two rates is the cost to
//! FreeRADIUS; the passes' time over the interim updates they counted is
//! the cost per update.

mod support;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use migration::{Migrator, MigratorTrait, RadiusMigrator};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};

use ispd::audit::Actor;
use ispd::crypto::AppKey;
use ispd::db::Databases;
use ispd::enforcement::Reach;
use ispd::ipam::service::IpamSettings;
use ispd::mikrotik::pool::{PoolSettings, RouterPool};
use ispd::radius::coa::CoaSettings;
use support::{insert_pppoe_users, peak_memory, with_two_scratch_databases};

struct Options {
    users: usize,
    seconds: u64,
    writers: usize,
    every: u64,
}

fn main() -> ExitCode {
    let mut options = Options {
        users: 20_000,
        seconds: 30,
        writers: 8,
        every: 15,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let number = |value: Option<String>| value.and_then(|n| n.parse::<usize>().ok());
        match arg.as_str() {
            "--users" => match number(args.next()) {
                Some(n) if n > 0 => options.users = n,
                _ => return usage("--users needs a number"),
            },
            "--seconds" => match number(args.next()) {
                Some(n) if n > 0 => options.seconds = n as u64,
                _ => return usage("--seconds needs a number"),
            },
            "--writers" => match number(args.next()) {
                Some(n) if n > 0 => options.writers = n,
                _ => return usage("--writers needs a number"),
            },
            "--every" => match number(args.next()) {
                Some(n) => options.every = n as u64,
                _ => return usage("--every needs a number of seconds"),
            },
            // cargo bench passes --bench to every harness = false target.
            "--bench" => {}
            other => return usage(&format!("unknown option {other}")),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(2)
}

async fn run(options: &Options) -> anyhow::Result<()> {
    with_two_scratch_databases(|main, radius| async move { bench(&main, &radius, options).await })
        .await
}

async fn connect(url: &str, connections: u32) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_string());
    options.max_connections(connections).sqlx_logging(false);
    Ok(Database::connect(options).await?)
}

async fn bench(main_url: &str, radius_url: &str, options: &Options) -> anyhow::Result<()> {
    let users = options.users;
    let db = Databases {
        main: connect(main_url, 10).await?,
        radius: connect(radius_url, 4).await?,
    };
    Migrator::up(&db.main, None).await?;
    RadiusMigrator::up(&db.radius, None).await?;
    let key = AppKey::generate();
    let package = ispd::users::service::create_package(
        &db.main,
        &Actor::system(),
        &ispd::users::service::PackageInput {
            name: "Capped".into(),
            download_rate: "20M".into(),
            upload_rate: "5M".into(),
            radius_group: "capped".into(),
            // Far above what the run writes: no tier is crossed, so what is
            // measured is the counting.
            quota: Some("1000P".into()),
            ..Default::default()
        },
    )
    .await?;
    insert_pppoe_users(&db.main, &key, package.id, users).await?;
    open_sessions(&db.radius, users).await?;
    let reach = Reach {
        db: db.clone(),
        key: key.clone(),
        routers: RouterPool::new(
            key.clone(),
            PoolSettings {
                max_per_router: 1,
                idle_timeout: Duration::from_secs(60),
                timeout: Duration::from_secs(5),
                backoff_base: Duration::from_secs(1),
                backoff_max: Duration::from_secs(60),
            },
        ),
        coa: CoaSettings {
            attempts: 1,
            timeout: Duration::from_secs(1),
        },
        ipam: IpamSettings {
            lock_timeout: Duration::from_secs(10),
        },
    };
    // The first pass counts every session once; later ones only growth.
    let first = Instant::now();
    let report = ispd::quotas::metering::meter(&reach, &Actor::system()).await?;
    println!(
        "{users} subscribers with an open session each; first metering pass {:.2} s ({} counted)",
        first.elapsed().as_secs_f64(),
        report.counted
    );

    let writer_db = connect(radius_url, options.writers as u32).await?;
    let alone = write_interims(&writer_db, options, None).await?;
    println!(
        "interim updates alone:          {:>8.0}/s",
        alone.updates as f64 / alone.seconds
    );
    let metered = write_interims(&writer_db, options, Some(&reach)).await?;
    let with_rate = metered.updates as f64 / metered.seconds;
    let schedule = match options.every {
        0 => "passes back to back".to_string(),
        s => format!("a pass every {s} s"),
    };
    println!(
        "interim updates while metering ({schedule}): {:>8.0}/s  (ratio {:.2})",
        with_rate,
        with_rate / (alone.updates as f64 / alone.seconds)
    );
    if metered.passes > 0 {
        let per_pass = metered.pass_seconds / metered.passes as f64;
        println!(
            "metering: {} passes, {:.2} s each on average, {} interim updates counted ({:.0} µs each)",
            metered.passes,
            per_pass,
            metered.counted,
            metered.pass_seconds * 1e6 / metered.counted.max(1) as f64
        );
    }
    println!("peak memory (VmHWM): {}", peak_memory());
    Ok(())
}

struct Phase {
    updates: u64,
    seconds: f64,
    passes: u64,
    pass_seconds: f64,
    counted: u64,
}

/// Writes interim updates for `options.seconds` with `options.writers`
/// connections; with `reach`, metering passes run back to back meanwhile.
async fn write_interims(
    radius: &DatabaseConnection,
    options: &Options,
    reach: Option<&Reach>,
) -> anyhow::Result<Phase> {
    let stop = Arc::new(AtomicBool::new(false));
    let updates = Arc::new(AtomicU64::new(0));
    let mut writers = tokio::task::JoinSet::new();
    let users = options.users;
    for writer in 0..options.writers {
        let (db, stop, updates) = (radius.clone(), stop.clone(), updates.clone());
        let stride = options.writers;
        writers.spawn(async move {
            let mut round: i64 = 1;
            let mut i = writer;
            while !stop.load(Ordering::Relaxed) {
                // Counters that pass 2^32 in time: gigawords at work.
                let bytes = round * 50_000_000 + i as i64;
                db.execute_raw(interim_update(i, bytes, round)).await?;
                updates.fetch_add(1, Ordering::Relaxed);
                i += stride;
                if i >= users {
                    i = writer;
                    round += 1;
                }
            }
            anyhow::Ok(())
        });
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let (mut passes, mut pass_seconds, mut counted) = (0u64, 0f64, 0u64);
    match reach {
        Some(reach) => {
            let every = Duration::from_secs(options.every);
            let mut next = started;
            while next < deadline {
                tokio::time::sleep_until(next.into()).await;
                let pass = Instant::now();
                let report = ispd::quotas::metering::meter(reach, &Actor::system()).await?;
                pass_seconds += pass.elapsed().as_secs_f64();
                passes += 1;
                counted += report.counted;
                next = if every.is_zero() {
                    Instant::now()
                } else {
                    next + every
                };
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
        None => tokio::time::sleep_until(deadline.into()).await,
    }
    stop.store(true, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    while let Some(joined) = writers.join_next().await {
        joined??;
    }
    Ok(Phase {
        updates: updates.load(Ordering::Relaxed),
        seconds,
        passes,
        pass_seconds,
        counted,
    })
}

/// FreeRADIUS 3.2's PostgreSQL `interim-update` query, with the values a
/// NAS would send (gigawords split from the 64-bit count).
fn interim_update(i: usize, bytes: i64, round: i64) -> Statement {
    let (giga, octets) = (bytes >> 32, bytes & 0xffff_ffff);
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE radacct SET \
         framedipaddress = NULLIF($1, '')::inet, \
         acctsessiontime = $2, \
         acctinterval = (EXTRACT(EPOCH FROM (now() - COALESCE(acctupdatetime, acctstarttime))))::bigint, \
         acctupdatetime = now(), \
         acctinputoctets = (($3::bigint << 32) + $4::bigint), \
         acctoutputoctets = (($5::bigint << 32) + $6::bigint) \
         WHERE acctuniqueid = $7 AND acctstoptime IS NULL",
        [
            format!("100.64.{}.{}", (i >> 8) & 255, i & 255).into(),
            (3_300 + round * 300).into(),
            (giga / 4).into(),
            octets.into(),
            giga.into(),
            octets.into(),
            format!("u{i}").into(),
        ],
    )
}

async fn open_sessions(radius: &DatabaseConnection, users: usize) -> anyhow::Result<()> {
    radius
        .execute_unprepared(&format!(
            "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, \
             framedipaddress, acctstarttime, acctupdatetime, acctsessiontime, \
             acctinputoctets, acctoutputoctets) \
             SELECT 's' || i, 'u' || i, 'sub' || lpad(i::text, 6, '0'), '127.0.0.1', \
             ('100.64.0.0'::inet + i), now() - interval '1 hour', now() - interval '5 minutes', \
             3300, 0, 0 FROM generate_series(0, {}) AS i",
            users - 1
        ))
        .await?;
    Ok(())
}
