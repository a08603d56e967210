//! Indexes for ispd's accounting pages, beyond FreeRADIUS's own schema.
//!
//! FreeRADIUS's PostgreSQL schema indexes radacct by `(acctstarttime,
//! username)`, by the open sessions' `acctuniqueid` and `(nasipaddress,
//! acctstarttime)`, and by `class`; it has no index that starts with the
//! username or the framed address. With a million rows, one user's
//! sessions and "who had this address" then read the whole table
//! (docs/BENCHMARKS.md has the figures). MySQL's and SQLite's schemas
//! already index `username`, `framedipaddress` and `acctstoptime` on
//! their own, which those queries use, so this migration adds nothing
//! there.
//!
//! The names start with `ispd_`, so that they are never taken for
//! FreeRADIUS's (tests/it/radius_schema.rs compares the rest with
//! FreeRADIUS's schema.sql). Adding an index changes none of FreeRADIUS's
//! queries.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (name, definition) on PostgreSQL.
const POSTGRES: &[(&str, &str)] = &[
    // One user's sessions, newest first, in a date range.
    (
        "ispd_radacct_username_start",
        "ON radacct (username, acctstarttime)",
    ),
    // Who had an address: its sessions, by start.
    (
        "ispd_radacct_framedip_start",
        "ON radacct (framedipaddress, acctstarttime)",
    ),
    // The online list, newest first, without sorting every open session.
    (
        "ispd_radacct_open_start",
        "ON radacct (acctstarttime) WHERE acctstoptime IS NULL",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (name, definition) in POSTGRES {
            db.execute_unprepared(&format!("CREATE INDEX {name} {definition}"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (name, _) in POSTGRES.iter().rev() {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {name}"))
                .await?;
        }
        Ok(())
    }
}
