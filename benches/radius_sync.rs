//! `radius sync-users` at scale: 100 000 network users synced into an empty
//! RADIUS database on PostgreSQL (target: under 30 s), then a second sync
//! with nothing to do, then one after 1 % of the users changed.
//!
//! `make bench-radius-sync` runs it (`cargo bench --bench radius_sync`).
//! Options: `--users N` (default 100 000).
//!
//! BENCH_POSTGRES_URL names a server where we may create databases (default
//! postgres://postgres@127.0.0.1:5432/postgres). Two scratch databases, the
//! main DB and the RADIUS DB, are created and dropped at the end.
//!
//! The users are written directly (bulk inserts, passwords encrypted with
//! the app key as the service does); the sync is
//! `radius::service::sync_all`, the function the CLI and the job call.

mod support;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use migration::{Migrator, MigratorTrait, RadiusMigrator};
use sea_orm::{
    ColumnTrait, ConnectOptions, Database, DatabaseConnection, EntityTrait, QueryFilter, Set,
};

use ispd::crypto::AppKey;
use ispd::radius::service::{sync_all, SyncReport};
use ispd::users::entities::{network_user, service_package};
use support::with_two_scratch_databases;

const TARGET: Duration = Duration::from_secs(30);
const INSERT_CHUNK: usize = 2_000;

fn main() -> ExitCode {
    let mut users = 100_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--users" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => users = n,
                None => {
                    eprintln!("--users needs a number");
                    return ExitCode::from(2);
                }
            },
            // cargo bench passes --bench to every harness = false target.
            "--bench" => {}
            other => {
                eprintln!("unknown option {other}");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(users)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(users: usize) -> anyhow::Result<ExitCode> {
    with_two_scratch_databases(|main, radius| async move { bench(&main, &radius, users).await })
        .await
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

async fn bench(main_url: &str, radius_url: &str, users: usize) -> anyhow::Result<ExitCode> {
    let main_db = connect(main_url).await?;
    let radius_db = connect(radius_url).await?;
    Migrator::up(&main_db, None).await?;
    RadiusMigrator::up(&radius_db, None).await?;
    let key = AppKey::generate();

    let started = Instant::now();
    let packages = insert_packages(&main_db).await?;
    insert_users(&main_db, &key, &packages, users).await?;
    println!(
        "== radius sync-users on PostgreSQL, {} users, {} packages (written in {:.1} s)",
        users,
        packages.len(),
        started.elapsed().as_secs_f64()
    );

    let (first, first_time) = timed_sync(&main_db, &radius_db, &key).await?;
    report("first sync (empty RADIUS DB)", &first, first_time);
    if first.created != users as u64 {
        bail!("expected {users} users created, got {}", first.created);
    }

    let (second, second_time) = timed_sync(&main_db, &radius_db, &key).await?;
    report("second sync (no drift)", &second, second_time);
    if second.unchanged != users as u64 {
        bail!("expected {users} unchanged, got {}", second.unchanged);
    }

    let changed = change_one_percent(&main_db, &packages).await?;
    let (third, third_time) = timed_sync(&main_db, &radius_db, &key).await?;
    report("sync after 1 % changed packages", &third, third_time);
    if third.updated != changed {
        bail!("expected {changed} updated, got {}", third.updated);
    }

    let met = first_time <= TARGET;
    println!(
        "\ntarget: first sync of {users} users under {} s: {}",
        TARGET.as_secs(),
        if met { "met" } else { "NOT met" }
    );
    Ok(if met {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn timed_sync(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    key: &AppKey,
) -> anyhow::Result<(SyncReport, Duration)> {
    let started = Instant::now();
    let report = sync_all(main_db, radius_db, key, false).await?;
    Ok((report, started.elapsed()))
}

fn report(label: &str, report: &SyncReport, took: Duration) {
    println!(
        "{label:<34} {:>7.2} s   created {:>6}  updated {:>6}  unchanged {:>6}  removed {:>4}",
        took.as_secs_f64(),
        report.created,
        report.updated,
        report.unchanged,
        report.removed
    );
}

async fn insert_packages(db: &DatabaseConnection) -> anyhow::Result<Vec<i32>> {
    let now = Utc::now().fixed_offset();
    let mut ids = Vec::new();
    for (i, (down, up)) in [(20_000, 5_000), (50_000, 10_000), (100_000, 20_000)]
        .into_iter()
        .enumerate()
    {
        let row = service_package::ActiveModel {
            name: Set(format!("Home {}M", down / 1000)),
            download_rate_kbps: Set(down),
            upload_rate_kbps: Set(up),
            session_timeout_secs: Set(Some(86_400)),
            simultaneous_use: Set(Some(1)),
            radius_group: Set(format!("home-{i}")),
            status: Set("active".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        ids.push(
            service_package::Entity::insert(row)
                .exec(db)
                .await?
                .last_insert_id,
        );
    }
    Ok(ids)
}

async fn insert_users(
    db: &DatabaseConnection,
    key: &AppKey,
    packages: &[i32],
    users: usize,
) -> anyhow::Result<()> {
    let now = Utc::now().fixed_offset();
    for start in (0..users).step_by(INSERT_CHUNK) {
        let rows = (start..(start + INSERT_CHUNK).min(users)).map(|i| {
            // Every tenth user has a static address, every twentieth an expiry.
            let static_ip = (i % 10 == 0)
                .then(|| format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff));
            network_user::ActiveModel {
                username: Set(format!("sub{i:06}")),
                password_encrypted: Set(key.encrypt(&format!("pw-{i}-secret"))),
                service_type: Set(if static_ip.is_some() {
                    "static"
                } else {
                    "pppoe"
                }
                .into()),
                package_id: Set(Some(packages[i % packages.len()])),
                status: Set(if i % 50 == 0 { "suspended" } else { "active" }.into()),
                static_ip: Set(static_ip),
                expires_at: Set((i % 20 == 0).then(|| now + chrono::Duration::days(365))),
                radius_sync_pending: Set(true),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
        });
        network_user::Entity::insert_many(rows).exec(db).await?;
    }
    Ok(())
}

/// Moves every hundredth user to another package; returns how many moved.
async fn change_one_percent(db: &DatabaseConnection, packages: &[i32]) -> anyhow::Result<u64> {
    let ids: Vec<i32> = network_user::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .filter(|u| u.id % 100 == 0)
        .map(|u| u.id)
        .collect();
    let moved = network_user::Entity::update_many()
        .col_expr(
            network_user::Column::PackageId,
            sea_orm::sea_query::Expr::value(packages[0]),
        )
        .col_expr(
            network_user::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(Utc::now().fixed_offset()),
        )
        .filter(network_user::Column::Id.is_in(ids))
        .filter(network_user::Column::PackageId.ne(packages[0]))
        .exec(db)
        .await?
        .rows_affected;
    Ok(moved)
}
