//! Suspending many subscribers at once, each with an open session, on
//! PostgreSQL: the time until every session's change is sent (and
//! acknowledged by the NAS), the time until every one is confirmed, and the
//! process's peak memory.
//!
//! `make bench-enforcement` runs it (`cargo bench --bench enforcement`).
//! Options: `--users N` (default 10 000), `--parallel N` (subscribers
//! suspended at once, default 16, as the bulk endpoint does).
//!
//! BENCH_POSTGRES_URL names a server where we may create databases (default
//! postgres://postgres@127.0.0.1:5432/postgres); two scratch databases are
//! created and dropped.
//!
//! The NAS is a UDP socket on 127.0.0.1 that ACKs every CoA and Disconnect
//! at once (signed with the shared secret): what is measured is ispd's side.
//! Each subscriber is suspended with `enforcement::service::change_status`,
//! the function behind `POST /api/v1/users/{id}/suspend` and the bulk call.
//! Then every session sends an interim update (one UPDATE of radacct, as
//! FreeRADIUS would write them), and one enforcement pass confirms them.

mod support;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use migration::{Migrator, MigratorTrait, RadiusMigrator};
use radius::core::code::Code;
use radius::core::packet::Packet;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, EntityTrait};
use tokio::task::JoinSet;

use ispd::audit::Actor;
use ispd::crypto::{AppKey, Secret};
use ispd::db::Databases;
use ispd::enforcement::entities::enforcement_action;
use ispd::enforcement::{service, Reach};
use ispd::ipam::service::IpamSettings;
use ispd::mikrotik::pool::{PoolSettings, RouterPool};
use ispd::radius::coa::CoaSettings;
use ispd::radius::nas::NasInput;
use ispd::users::domain::UserStatus;
use ispd::users::entities::network_user;
use support::{insert_pppoe_users, peak_memory, with_two_scratch_databases};

const SECRET: &str = "bench-nas-secret";

fn main() -> ExitCode {
    let (mut users, mut parallel) = (10_000usize, 16usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let number = |value: Option<String>| value.and_then(|n| n.parse::<usize>().ok());
        match arg.as_str() {
            "--users" => match number(args.next()) {
                Some(n) if n > 0 => users = n,
                _ => return usage("--users needs a number"),
            },
            "--parallel" => match number(args.next()) {
                Some(n) if n > 0 => parallel = n,
                _ => return usage("--parallel needs a number"),
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
    match runtime.block_on(run(users, parallel)) {
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

async fn run(users: usize, parallel: usize) -> anyhow::Result<()> {
    with_two_scratch_databases(|main, radius| async move {
        bench(&main, &radius, users, parallel).await
    })
    .await
}

async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_string());
    options.max_connections(20).sqlx_logging(false);
    Ok(Database::connect(options).await?)
}

/// A NAS that ACKs every request at once.
async fn acking_nas() -> anyhow::Result<u16> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let port = socket.local_addr()?.port();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(request) = Packet::decode(&buf[..n], SECRET.as_bytes()) else {
                continue;
            };
            let code = match request.get_code() {
                Code::CoARequest => Code::CoAACK,
                Code::DisconnectRequest => Code::DisconnectACK,
                _ => continue,
            };
            if let Ok(reply) = request.make_response_packet(code).encode() {
                let _ = socket.send_to(&reply, from).await;
            }
        }
    });
    Ok(port)
}

async fn bench(
    main_url: &str,
    radius_url: &str,
    users: usize,
    parallel: usize,
) -> anyhow::Result<()> {
    let db = Databases {
        main: connect(main_url).await?,
        radius: connect(radius_url).await?,
    };
    Migrator::up(&db.main, None).await?;
    RadiusMigrator::up(&db.radius, None).await?;
    let key = AppKey::generate();
    let port = acking_nas().await?;
    ispd::radius::nas::create_nas(
        &db.main,
        &db.radius,
        &Actor::system(),
        &NasInput {
            nasname: "127.0.0.1".into(),
            ports: Some(port.into()),
            secret: Some(Secret::new(SECRET)),
            ..Default::default()
        },
    )
    .await
    .context("registering the NAS")?;

    // A walled-garden default policy: each suspension is a CoA in place.
    ispd::users::policies::service::create_policy(
        &db.main,
        &Actor::system(),
        &ispd::users::policies::service::PolicyInput {
            name: "Unpaid".into(),
            action: "walled_garden".into(),
            download_rate: Some("1M".into()),
            upload_rate: Some("512k".into()),
            address_list: Some("unpaid".into()),
            radius_group: "unpaid".into(),
            is_default: true,
            ..Default::default()
        },
    )
    .await?;
    let package = ispd::users::service::create_package(
        &db.main,
        &Actor::system(),
        &ispd::users::service::PackageInput {
            name: "Home 20M".into(),
            download_rate: "20M".into(),
            upload_rate: "5M".into(),
            radius_group: "home-20m".into(),
            ..Default::default()
        },
    )
    .await?;

    let filling = Instant::now();
    insert_pppoe_users(&db.main, &key, package.id, users).await?;
    open_sessions(&db.radius, users).await?;
    ispd::radius::service::sync_all(&db.main, &db.radius, &key, false).await?;
    println!(
        "{users} subscribers with an open session each, written and synced in {:.1} s",
        filling.elapsed().as_secs_f64()
    );

    let pool_settings = PoolSettings {
        max_per_router: 4,
        idle_timeout: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
        backoff_base: Duration::from_secs(1),
        backoff_max: Duration::from_secs(60),
    };
    let reach = Reach {
        db: db.clone(),
        key: key.clone(),
        routers: RouterPool::new(key.clone(), pool_settings),
        coa: CoaSettings {
            attempts: 3,
            timeout: Duration::from_secs(3),
        },
        ipam: IpamSettings {
            lock_timeout: Duration::from_secs(10),
        },
    };
    let ids: Vec<i32> = network_user::Entity::find()
        .all(&db.main)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();

    let started = Instant::now();
    let mut running = JoinSet::new();
    let mut queue = ids.into_iter();
    let (mut acknowledged, mut other) = (0usize, 0usize);
    loop {
        while running.len() < parallel {
            let Some(id) = queue.next() else { break };
            let reach = reach.clone();
            running.spawn(async move {
                service::change_status(&reach, &Actor::system(), id, UserStatus::Suspended, None)
                    .await
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let enforced = joined??;
        for action in &enforced.actions {
            if action.outcome.as_deref() == Some("ack") {
                acknowledged += 1;
            } else {
                other += 1;
            }
        }
    }
    let sent = started.elapsed();
    println!(
        "suspended and sent:  {:>7.2} s  ({:.0} subscribers/s; {acknowledged} CoA acknowledged, {other} other)",
        sent.as_secs_f64(),
        users as f64 / sent.as_secs_f64()
    );

    // Every session's next interim update, as FreeRADIUS writes it.
    db.radius
        .execute_unprepared(
            "UPDATE radacct SET acctupdatetime = now() + interval '1 second', \
             acctsessiontime = acctsessiontime + 300",
        )
        .await?;
    let confirming = Instant::now();
    let report = ispd::enforcement::delivery::deliver_and_confirm(
        &db,
        &reach.routers,
        reach.coa,
        &Actor::system(),
        Utc::now() + chrono::Duration::seconds(2),
    )
    .await?;
    let confirmed_after = started.elapsed();
    let unconfirmed = enforcement_action::Entity::find()
        .all(&db.main)
        .await?
        .into_iter()
        .filter(|a| a.status != "confirmed")
        .count();
    println!(
        "confirmation pass:   {:>7.2} s  ({} confirmed, {unconfirmed} not yet)",
        confirming.elapsed().as_secs_f64(),
        report.confirmed
    );
    println!(
        "suspend to confirmed: {:>6.2} s for {users} subscribers",
        confirmed_after.as_secs_f64()
    );
    println!("peak memory (VmHWM): {}", peak_memory());
    Ok(())
}

async fn open_sessions(radius: &DatabaseConnection, users: usize) -> anyhow::Result<()> {
    radius
        .execute_unprepared(&format!(
            "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, \
             framedipaddress, acctstarttime, acctupdatetime, acctsessiontime) \
             SELECT 's' || i, 'u' || i, 'sub' || lpad(i::text, 6, '0'), '127.0.0.1', \
             ('100.64.0.0'::inet + i), now() - interval '1 hour', now() - interval '5 minutes', 3300 \
             FROM generate_series(0, {}) AS i",
            users - 1
        ))
        .await?;
    Ok(())
}
