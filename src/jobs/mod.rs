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

/// A scheduled job, as the Jobs page lists it.
pub struct ScheduledJob {
    pub name: &'static str,
    /// apalis-cron expression: six fields, seconds first; server time (UTC).
    pub cron: &'static str,
    pub description: &'static str,
}

pub const HOUSEKEEPING: ScheduledJob = ScheduledJob {
    name: "housekeeping",
    cron: "0 0 * * * *",
    description: "Deletes staff sessions past their expiry (hourly, at minute 0).",
};

/// Every scheduled job.
pub const SCHEDULE: &[ScheduledJob] = &[HOUSEKEEPING];

/// Runs every worker until `shutdown` completes.
pub async fn run_worker(
    db: Databases,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let housekeeping_schedule = cron::Schedule::from_str(HOUSEKEEPING.cron)?;
    tracing::info!(jobs = SCHEDULE.len(), "worker started");
    Monitor::new()
        .register(move |_restarts| {
            WorkerBuilder::new(HOUSEKEEPING.name)
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
