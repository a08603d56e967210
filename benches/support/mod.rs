//! What every benchmark binary needs: a scratch PostgreSQL database of its
//! own, created on the server the benchmark is pointed at and dropped at the
//! end. Each bench includes it with `mod support;`.

// Each benchmark uses only part of it.
#![allow(dead_code)]

use std::time::Duration;

use anyhow::Context;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A PostgreSQL database of our own, dropped at the end.
pub struct Scratch {
    server_url: String,
    pub name: String,
    pub url: String,
}

impl Scratch {
    pub async fn create(server_url: &str) -> anyhow::Result<Self> {
        use rand::RngCore;
        let mut bytes = [0u8; 4];
        rand::rng().fill_bytes(&mut bytes);
        let name = format!("ispd_bench_{}", hex::encode(bytes));
        let admin = admin_connection(server_url).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating database {name}"))?;
        admin.close().await.ok();
        Ok(Self {
            server_url: server_url.to_string(),
            url: with_database(server_url, &name),
            name,
        })
    }

    pub async fn drop_database(self) {
        let dropped = match admin_connection(&self.server_url).await {
            Ok(admin) => admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        if let Err(e) = dropped {
            eprintln!("could not drop the scratch database {}: {e:#}", self.name);
        }
    }
}

pub async fn admin_connection(server_url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(server_url.to_string());
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .with_context(|| format!("connecting to {}", ispd::config::redact_url(server_url)))
}

/// Runs `work` with the URLs of two scratch databases (main and RADIUS)
/// on BENCH_POSTGRES_URL's server, and drops both afterwards, whatever
/// came of it.
pub async fn with_two_scratch_databases<T, F, Fut>(work: F) -> anyhow::Result<T>
where
    F: FnOnce(String, String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let server_url =
        std::env::var("BENCH_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string());
    let main = Scratch::create(&server_url).await?;
    let radius = match Scratch::create(&server_url).await {
        Ok(scratch) => scratch,
        Err(e) => {
            main.drop_database().await;
            return Err(e);
        }
    };
    let outcome = work(main.url.clone(), radius.url.clone()).await;
    main.drop_database().await;
    radius.drop_database().await;
    outcome
}

/// The process's peak resident memory (VmHWM), as /proc says it.
pub fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// `users` active PPPoE subscribers `sub000000`, `sub000001`, ... on
/// `package`, written straight into the main DB (passwords sealed with
/// `key`), 2 000 rows per statement.
pub async fn insert_pppoe_users(
    db: &DatabaseConnection,
    key: &ispd::crypto::AppKey,
    package: i32,
    users: usize,
) -> anyhow::Result<()> {
    use ispd::users::entities::network_user;
    use sea_orm::{EntityTrait, Set};
    let now = chrono::Utc::now().fixed_offset();
    for start in (0..users).step_by(2_000) {
        let rows = (start..(start + 2_000).min(users)).map(|i| network_user::ActiveModel {
            username: Set(format!("sub{i:06}")),
            password_encrypted: Set(key.encrypt(&format!("pw-{i}-secret"))),
            service_type: Set("pppoe".into()),
            package_id: Set(Some(package)),
            status: Set("active".into()),
            radius_sync_pending: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        });
        network_user::Entity::insert_many(rows).exec(db).await?;
    }
    Ok(())
}

/// Replaces the database name (the URL's path) in a server URL.
pub fn with_database(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}
