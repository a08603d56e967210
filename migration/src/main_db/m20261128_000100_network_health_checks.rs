//! The latest result of `ispd network health-check`, one row per check
//! (each router, the main and RADIUS databases, Redis), for the dashboard.
//! Each run replaces the rows of the one before.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000100_network_health_checks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // As in the initial schema: MySQL's TIMESTAMP ends in 2038.
        let mut checked_at = ColumnDef::new("checked_at");
        match manager.get_database_backend() {
            DbBackend::MySql => checked_at.custom("datetime(6)"),
            _ => checked_at.timestamp_with_time_zone(),
        };
        checked_at.not_null();
        manager
            .create_table(
                Table::create()
                    .table("network_health_checks")
                    .col(pk_auto("id"))
                    // router, database, radius_database or redis.
                    .col(string_len("kind", 32))
                    .col(string_len("name", 64))
                    // Where it was checked: host:port or a redacted URL.
                    .col(string_len("target", 255))
                    // up or down.
                    .col(string_len("status", 16))
                    .col(text_null("detail"))
                    .col(big_integer("latency_ms"))
                    .col(checked_at)
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table("network_health_checks")
                    .if_exists()
                    .take(),
            )
            .await
    }
}
