//! The main database: address plan, subscribers, routers, staff and audit.

use sea_orm_migration::prelude::*;

mod columns;
mod m20261128_000001_initial_schema;
mod m20261128_000002_ip_free_ranges;
mod m20261128_000100_network_health_checks;
mod m20261128_000200_job_runs;
mod m20261208_000001_enforcement;
mod m20261208_000100_webhooks;
mod m20261209_000001_quotas;
mod m20261209_000100_policy_router_profile;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_initial_schema::Migration),
            Box::new(m20261128_000002_ip_free_ranges::Migration),
            Box::new(m20261128_000100_network_health_checks::Migration),
            Box::new(m20261128_000200_job_runs::Migration),
            Box::new(m20261208_000001_enforcement::Migration),
            Box::new(m20261208_000100_webhooks::Migration),
            Box::new(m20261209_000001_quotas::Migration),
            Box::new(m20261209_000100_policy_router_profile::Migration),
        ]
    }
}
