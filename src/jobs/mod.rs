//! Background jobs: apalis workers and their schedule.
//!
//! `ispd worker` runs them on their own; `ispd run` runs them beside the
//! web server. Each job calls the same service function as its CLI command.

use std::future::Future;
use std::str::FromStr;

use apalis::prelude::*;
use apalis_cron::{CronScheduler, Tick};
use sea_orm::DatabaseConnection;

use crate::audit::Actor;
use crate::db::Databases;
use crate::ipam::service::IpamSettings;

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

pub const IPAM_CLEANUP: ScheduledJob = ScheduledJob {
    name: "ipam-cleanup",
    cron: "0 0 0 * * *",
    description:
        "Releases allocations past their expiry, as `ispd ipam cleanup` does (daily at 00:00 UTC).",
};

/// Every scheduled job.
pub const SCHEDULE: &[ScheduledJob] = &[HOUSEKEEPING, IPAM_CLEANUP];

/// What the jobs need.
#[derive(Clone)]
pub struct JobContext {
    pub db: Databases,
    pub ipam: IpamSettings,
}

/// Runs every worker until `shutdown` completes.
pub async fn run_worker(
    context: JobContext,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let housekeeping_schedule = cron::Schedule::from_str(HOUSEKEEPING.cron)?;
    let cleanup_schedule = cron::Schedule::from_str(IPAM_CLEANUP.cron)?;
    tracing::info!(jobs = SCHEDULE.len(), "worker started");
    let cleanup_context = context.clone();
    Monitor::new()
        .register(move |_restarts| {
            WorkerBuilder::new(HOUSEKEEPING.name)
                .backend(CronScheduler::new(housekeeping_schedule.clone()))
                .data(context.db.main.clone())
                .build(housekeeping)
        })
        .register(move |_restarts| {
            WorkerBuilder::new(IPAM_CLEANUP.name)
                .backend(CronScheduler::new(cleanup_schedule.clone()))
                .data(cleanup_context.clone())
                .build(ipam_cleanup)
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

/// Releases expired allocations: the same service call as `ispd ipam cleanup`.
async fn ipam_cleanup(_tick: Tick, context: Data<JobContext>) -> Result<(), BoxDynError> {
    let report =
        crate::ipam::service::cleanup_expired(&context.db.main, context.ipam, &Actor::system())
            .await?;
    tracing::info!(
        released = report.released,
        already_released = report.already_released,
        "ipam cleanup done"
    );
    Ok(())
}
