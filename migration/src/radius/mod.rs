//! Migrator for the RADIUS database: the tables FreeRADIUS's rlm_sql reads
//! and writes.
//!
//! The schema must stay identical to the one FreeRADIUS ships for each
//! backend, because an unmodified FreeRADIUS runs its own queries against
//! it. `tests/it/radius_schema.rs` compares our result with FreeRADIUS's
//! own `schema.sql`, table for table, column for column, index for index.

use sea_orm_migration::prelude::*;

mod m20261128_000001_freeradius_schema;
mod m20261128_000002_accounting_indexes;

pub struct RadiusMigrator;

#[async_trait::async_trait]
impl MigratorTrait for RadiusMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_freeradius_schema::Migration),
            Box::new(m20261128_000002_accounting_indexes::Migration),
        ]
    }

    /// Its own table, so that the RADIUS database can share a server (or
    /// even a database) with the main one without the two migrators
    /// reading each other's history.
    fn migration_table_name() -> DynIden {
        Alias::new("ispd_radius_migrations").into_iden()
    }
}
