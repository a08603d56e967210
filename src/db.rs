//! Connections to the main and RADIUS databases, and their migrations.
//!
//! Timestamps: every entity stores its instants as `DateTimeWithTimeZone`
//! (always at offset +00:00), and every instant used in a query is a
//! `DateTime<FixedOffset>` too. A `DateTime<Utc>` parameter is sent to
//! MySQL/MariaDB as a TIMESTAMP value, whose range ends in January 2038, and
//! a later instant is silently stored as NULL; `DateTime<FixedOffset>` is
//! sent as a plain UTC date-time that a DATETIME column keeps whole. The
//! test `ipam::timestamps_after_2038_survive` holds every backend to it.

use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait, RadiusMigrator};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::config::{redact_url, Config};

/// Both database connections. They are separate pools even when both are
/// SQLite files, because FreeRADIUS reads the RADIUS tables on its own.
#[derive(Clone, Debug)]
pub struct Databases {
    pub main: DatabaseConnection,
    pub radius: DatabaseConnection,
}

impl Databases {
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            main: connect(&config.database_url, config.ipam_lock_timeout)
                .await
                .context("connecting to the main database (DATABASE_URL)")?,
            radius: connect(&config.radius_database_url, config.ipam_lock_timeout)
                .await
                .context("connecting to the RADIUS database (RADIUS_DATABASE_URL)")?,
        })
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.main, None)
            .await
            .context("migrating the main database")?;
        RadiusMigrator::up(&self.radius, None)
            .await
            .context("migrating the RADIUS database")?;
        Ok(())
    }

    /// Names of migrations not yet applied, on either database.
    pub async fn pending_migrations(&self) -> anyhow::Result<Vec<String>> {
        let mut pending: Vec<String> = Migrator::get_pending_migrations(&self.main)
            .await?
            .iter()
            .map(|m| format!("main: {}", m.name()))
            .collect();
        pending.extend(
            RadiusMigrator::get_pending_migrations(&self.radius)
                .await?
                .iter()
                .map(|m| format!("radius: {}", m.name())),
        );
        Ok(pending)
    }
}

/// Opens a pool with the settings each backend needs.
///
/// SQLite gets WAL (readers never wait for the writer) and a busy timeout
/// (writers queue instead of failing at once with SQLITE_BUSY).
pub async fn connect(url: &str, busy_timeout: Duration) -> anyhow::Result<DatabaseConnection> {
    if let Some(path) = sqlite_file_path(url) {
        if let Some(dir) = std::path::Path::new(&path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the directory {}", dir.display()))?;
            }
        }
    }
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(10)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(busy_timeout)
                .foreign_keys(true)
        });
    Database::connect(options)
        .await
        .with_context(|| format!("cannot open {}", redact_url(url)))
}

/// The file behind a `sqlite:` URL, if it names one (not `:memory:`).
fn sqlite_file_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| path.to_string())
}

/// The constraint's message when `err` is a unique-constraint violation
/// (the same on every backend), else None.
pub fn unique_violation(err: &DbErr) -> Option<String> {
    match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(text)) => Some(text),
        _ => None,
    }
}

/// Whether `err` says the transaction lost a race with another writer and
/// was rolled back: a deadlock or a serialization failure (SQLSTATE 40001
/// on MariaDB and PostgreSQL, 40P01 for PostgreSQL's deadlock). SQLite's
/// write transactions (see [`begin_write`]) take turns instead.
pub fn lost_to_concurrent_writer(err: &DbErr) -> bool {
    let runtime = match err {
        DbErr::Exec(e) | DbErr::Query(e) | DbErr::Conn(e) => e,
        _ => return false,
    };
    match runtime {
        sea_orm::RuntimeErr::SqlxError(sqlx) => match sqlx.as_ref() {
            sea_orm::sqlx::Error::Database(e) => {
                matches!(e.code().as_deref(), Some("40001" | "40P01"))
            }
            _ => false,
        },
        _ => false,
    }
}

/// A unique index or constraint, known by the names each backend gives it
/// in a violation, so that a race a service's own check lost becomes the
/// right field's message (ARCHITECTURE.md, item 5):
/// - PostgreSQL names the constraint: `... unique constraint "NAME"`; a
///   column declared unique gets `{table}_{column}_key`;
/// - MariaDB names the key: `Duplicate entry '...' for key 'NAME'`; a
///   column declared unique gets the column's name;
/// - SQLite names no index, only its columns: `UNIQUE constraint failed:
///   table.a, table.b`.
#[derive(Debug, Clone, Copy)]
pub struct UniqueKey {
    table: &'static str,
    columns: &'static [&'static str],
    /// None for a column declared unique in its table.
    index: Option<&'static str>,
}

impl UniqueKey {
    /// A column declared unique in its table (`.unique_key()`).
    pub const fn column(table: &'static str, column: &'static [&'static str; 1]) -> Self {
        Self {
            table,
            columns: column,
            index: None,
        }
    }

    /// A unique index made by name.
    pub const fn index(
        name: &'static str,
        table: &'static str,
        columns: &'static [&'static str],
    ) -> Self {
        Self {
            table,
            columns,
            index: Some(name),
        }
    }

    /// Whether `err` is a violation of this key.
    pub fn violated_by(&self, err: &DbErr) -> bool {
        unique_violation(err).is_some_and(|text| self.named_in(&text))
    }

    fn named_in(&self, text: &str) -> bool {
        if let Some(columns) = text.split("UNIQUE constraint failed: ").nth(1) {
            let named: Vec<&str> = columns.split(',').map(str::trim).collect();
            return named.len() == self.columns.len()
                && named
                    .iter()
                    .zip(self.columns)
                    .all(|(named, column)| *named == format!("{}.{column}", self.table));
        }
        let (postgres, mariadb) = match self.index {
            Some(name) => (name.to_string(), name.to_string()),
            None => (
                format!("{}_{}_key", self.table, self.columns[0]),
                self.columns[0].to_string(),
            ),
        };
        text.contains(&format!("\"{postgres}\""))
            || text.contains(&format!("for key '{mariadb}'"))
            // MySQL 8 puts the table in front.
            || text.contains(&format!("for key '{}.{mariadb}'", self.table))
    }
}

/// A transaction for a change. On SQLite it takes the write lock at BEGIN
/// (IMMEDIATE): a transaction that first reads and then writes would fail
/// with SQLITE_BUSY under contention instead of waiting its turn.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            db.begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
        }
        _ => db.begin().await,
    }
}

/// How long a readiness check waits for Redis.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether Redis at `url` answers PING within [`REDIS_TIMEOUT`]. Opens one
/// connection per call: meant for probes, not for a hot path.
pub async fn redis_ready(url: &str) -> bool {
    let ping = async {
        let client = redis::Client::open(url)?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
    };
    match tokio::time::timeout(REDIS_TIMEOUT, ping).await {
        Ok(Ok(reply)) => reply == "PONG",
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "Redis does not answer");
            false
        }
        Err(_) => {
            tracing::warn!("Redis did not answer within {REDIS_TIMEOUT:?}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unique_keys_are_known_by_every_backends_name_for_them() {
        use super::UniqueKey;
        let name = UniqueKey::column("service_packages", &["name"]);
        let group = UniqueKey::column("service_packages", &["radius_group"]);
        let postgres =
            r#"duplicate key value violates unique constraint "service_packages_radius_group_key""#;
        let mariadb = "Duplicate entry 'gold' for key 'radius_group'";
        let mysql = "Duplicate entry 'gold' for key 'service_packages.radius_group'";
        let sqlite = "UNIQUE constraint failed: service_packages.radius_group";
        for text in [postgres, mariadb, mysql, sqlite] {
            assert!(group.named_in(text), "{text}");
            assert!(!name.named_in(text), "{text}");
        }
        let active = UniqueKey::index(
            "uq_ip_allocations_active_address",
            "ip_allocations",
            &["subnet_id", "ip_key", "active"],
        );
        assert!(active.named_in(
            "UNIQUE constraint failed: ip_allocations.subnet_id, ip_allocations.ip_key, ip_allocations.active"
        ));
        assert!(!active.named_in("UNIQUE constraint failed: ip_allocations.subnet_id"));
        assert!(active.named_in(
            r#"duplicate key value violates unique constraint "uq_ip_allocations_active_address""#
        ));
        assert!(
            active.named_in("Duplicate entry '1-x-1' for key 'uq_ip_allocations_active_address'")
        );
    }

    use super::sqlite_file_path;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file_path("sqlite://./data/ispd.db?mode=rwc").as_deref(),
            Some("./data/ispd.db")
        );
        assert_eq!(sqlite_file_path("sqlite::memory:"), None);
        assert_eq!(sqlite_file_path("postgres://db/ispd"), None);
    }
}
