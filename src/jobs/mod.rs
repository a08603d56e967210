//! Background jobs: apalis workers and their schedule.
//!
//! `ispd worker` runs them on their own; `ispd run` runs them beside the
//! web server. Each job calls the same service function as its CLI command.

use std::future::Future;
use std::str::FromStr;

use apalis::prelude::*;
use apalis_cron::{CronScheduler, Tick};
use sea_orm::DatabaseConnection;

use crate::db::Databases;

/// Hourly, at minute 0 (apalis-cron expressions have a seconds field first).
const HOUSEKEEPING_SCHEDULE: &str = "0 0 * * * *";

/// Runs every worker until `shutdown` completes.
pub async fn run_worker(
    db: Databases,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let housekeeping_schedule = cron::Schedule::from_str(HOUSEKEEPING_SCHEDULE)?;
    tracing::info!(schedule = HOUSEKEEPING_SCHEDULE, "worker started");
    Monitor::new()
        .register(move |_restarts| {
            WorkerBuilder::new("housekeeping")
                .backend(CronScheduler::new(housekeeping_schedule.clone()))
                .data(db.main.clone())
                .build(housekeeping)
        })
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await?;
    tracing::info!("worker stopped");
    Ok(())
}

/// Removes what has expired: staff sessions past their expiry.
async fn housekeeping(_tick: Tick, db: Data<DatabaseConnection>) -> Result<(), BoxDynError> {
    let purged = crate::staff::service::purge_expired_sessions(&*db).await?;
    tracing::info!(purged_sessions = purged, "housekeeping done");
    Ok(())
}
