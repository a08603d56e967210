//! Background jobs: the apalis worker, its schedule and the job-run history.
//!
//! `ispd worker` runs a worker on its own; `ispd run` runs one beside the web
//! server. Any number of workers may share one queue: Redis when REDIS_URL
//! is set, else the embedded SQLite store in DATA_DIR (one host). Each job
//! calls the same service function as its CLI command and is idempotent.
//!
//! How workers agree (each tick runs once, a job never runs twice at the
//! same time, a run whose worker died is finished by another) is described
//! in [`runs`]; how a worker runs jobs, in [`worker`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::DatabaseConnection;

use crate::audit::Actor;
use crate::config::Config;
use crate::db::Databases;
use crate::ipam::service::IpamSettings;

pub mod api;
pub mod html;
pub mod queue;
pub mod runs;
pub mod settings;
pub mod worker;

pub use queue::{JobQueue, RunRequest};
pub use runs::{JobSummary, JobsError, RunStatus, Trigger};
pub use settings::JobsSettings;
pub use worker::{Registry, Worker, WorkerSettings};

/// A scheduled job, as the Jobs page lists it.
pub struct ScheduledJob {
    pub name: &'static str,
    /// The default schedule: six cron fields, seconds first; server time (UTC).
    pub cron: &'static str,
    /// The variable that changes the schedule (`off` turns it off).
    pub env: &'static str,
    pub description: &'static str,
}

pub const HOUSEKEEPING: ScheduledJob = ScheduledJob {
    name: "housekeeping",
    cron: "0 0 * * * *",
    env: "JOBS_SCHEDULE_HOUSEKEEPING",
    description: "Deletes staff sessions past their expiry and job runs older than JOBS_HISTORY_DAYS (hourly, at minute 0).",
};

pub const IPAM_CLEANUP: ScheduledJob = ScheduledJob {
    name: "ipam-cleanup",
    cron: "0 0 0 * * *",
    env: "JOBS_SCHEDULE_IPAM_CLEANUP",
    description:
        "Releases allocations past their expiry, as `ispd ipam cleanup` does (daily at 00:00 UTC).",
};

pub const RADIUS_RETRY: ScheduledJob = ScheduledJob {
    name: "radius-retry",
    cron: "0 */5 * * * *",
    env: "JOBS_SCHEDULE_RADIUS_RETRY",
    description: "Syncs every network user still flagged for RADIUS sync (after a failed write), in batches, as `ispd radius retry` does (every 5 minutes).",
};

pub const RADIUS_CLOSE_STALE: ScheduledJob = ScheduledJob {
    name: "radius-close-stale",
    cron: "30 */5 * * * *",
    env: "JOBS_SCHEDULE_RADIUS_CLOSE_STALE",
    description: "Closes RADIUS sessions with no accounting update for three interim intervals (terminate cause Stale-Session), as `ispd radius close-stale` does (every 5 minutes).",
};

pub const RADIUS_SYNC_USERS: ScheduledJob = ScheduledJob {
    name: "radius-sync-users",
    cron: "15 */5 * * * *",
    env: "JOBS_SCHEDULE_RADIUS_SYNC_USERS",
    description: "Rewrites every network user's RADIUS rows and removes the rows of deleted users, as `ispd radius sync-users` does (every 5 minutes).",
};

pub const MIKROTIK_SYNC_SESSIONS: ScheduledJob = ScheduledJob {
    name: "mikrotik-sync-sessions",
    cron: "0 * * * * *",
    env: "JOBS_SCHEDULE_MIKROTIK_SYNC_SESSIONS",
    description: "Reads the active PPP sessions of every router, as `ispd mikrotik sync-sessions` does (every minute); fails when no router answers.",
};

pub const NETWORK_HEALTH_CHECK: ScheduledJob = ScheduledJob {
    name: "network-health-check",
    cron: "0 */15 * * * *",
    env: "JOBS_SCHEDULE_NETWORK_HEALTH_CHECK",
    description: "Checks every router, both databases and Redis and stores the results for the dashboard, as `ispd network health-check` does (every 15 minutes).",
};

pub const ENFORCEMENT: ScheduledJob = ScheduledJob {
    name: "enforcement",
    cron: "20 * * * * *",
    env: "JOBS_SCHEDULE_ENFORCEMENT",
    description: "Carries subscriber states that moved on by themselves (an expiry passing, a status edited) to RADIUS and the live sessions, sends the session changes that are due again, and confirms those the sessions show (every minute).",
};

pub const QUOTA_METERING: ScheduledJob = ScheduledJob {
    name: "quota-metering",
    cron: "*/15 * * * * *",
    env: "JOBS_SCHEDULE_QUOTA_METERING",
    description: "Counts each subscriber's usage this billing cycle from the accounting updates, and moves subscribers into or out of their package's quota tiers at once (a CoA with the tier's rate), as `ispd radius meter` does (every 15 seconds).",
};

pub const WEBHOOK_DELIVERY: ScheduledJob = ScheduledJob {
    name: "webhook-delivery",
    cron: "*/10 * * * * *",
    env: "JOBS_SCHEDULE_WEBHOOK_DELIVERY",
    description: "Sends the webhook deliveries that are due (new events, and retries after their back-off) to their endpoints and records each answer (every 10 seconds).",
};

/// Every scheduled job.
pub const SCHEDULE: &[ScheduledJob] = &[
    ENFORCEMENT,
    QUOTA_METERING,
    WEBHOOK_DELIVERY,
    MIKROTIK_SYNC_SESSIONS,
    RADIUS_SYNC_USERS,
    RADIUS_RETRY,
    RADIUS_CLOSE_STALE,
    NETWORK_HEALTH_CHECK,
    IPAM_CLEANUP,
    HOUSEKEEPING,
];

/// Whether ispd has a job of this name (a run can be requested for it).
pub fn is_known_job(name: &str) -> bool {
    SCHEDULE.iter().any(|job| job.name == name)
}

/// What the jobs need.
#[derive(Clone)]
pub struct JobContext {
    pub db: Databases,
    pub config: Arc<Config>,
    /// Decrypts users' passwords (RADIUS sync) and router passwords.
    pub app_key: crate::crypto::AppKey,
    /// Logged-in RouterOS connections, shared with the web server in `ispd run`.
    pub router_pool: crate::mikrotik::pool::RouterPool,
}

impl JobContext {
    pub fn new(config: Arc<Config>, db: Databases, app_key: crate::crypto::AppKey) -> Self {
        let router_pool = crate::mikrotik::pool::RouterPool::new(
            app_key.clone(),
            crate::mikrotik::pool::PoolSettings::from_config(&config),
        );
        Self {
            db,
            config,
            app_key,
            router_pool,
        }
    }
}

/// ispd's jobs, each on its configured schedule.
pub fn registry(context: &JobContext) -> Registry {
    let settings = &context.config.jobs;
    let mut registry = Registry::new();
    macro_rules! job {
        ($job:expr, $function:path) => {{
            let context = context.clone();
            registry = registry.with_job($job.name, settings.schedule($job.name), move || {
                $function(context.clone())
            });
        }};
    }
    job!(HOUSEKEEPING, housekeeping);
    job!(IPAM_CLEANUP, ipam_cleanup);
    job!(RADIUS_RETRY, radius_retry);
    job!(RADIUS_CLOSE_STALE, radius_close_stale);
    job!(RADIUS_SYNC_USERS, radius_sync_users);
    job!(MIKROTIK_SYNC_SESSIONS, mikrotik_sync_sessions);
    job!(NETWORK_HEALTH_CHECK, network_health_check);
    job!(ENFORCEMENT, enforcement);
    job!(QUOTA_METERING, quota_metering);
    job!(WEBHOOK_DELIVERY, webhook_delivery);
    registry
}

/// Runs a worker with ispd's jobs until `shutdown` completes. Waits (with
/// back-off, logging once) for the queue when Redis is down at start.
pub async fn run_worker(
    context: JobContext,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let config = context.config.clone();
    let settings = &config.jobs;
    // A heartbeat a third of the lease: apalis re-queues a dead worker's
    // items after three missed heartbeats, about when its leases expire.
    let heartbeat = (settings.lease / 3).max(Duration::from_secs(1));
    let mut delay = Duration::from_millis(500);
    let mut logged = false;
    let queue = loop {
        match JobQueue::from_settings(config.redis_url.as_deref(), &config.data_dir, heartbeat)
            .await
        {
            Ok(queue) => break queue,
            Err(err) => {
                if !logged {
                    tracing::error!(error = %err, "cannot open the job queue; retrying until it is reachable");
                    logged = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stopped.wait_for(|&stop| stop) => return Ok(()),
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    };
    if logged {
        tracing::info!("the job queue is reachable");
    }
    let worker = Worker::new(
        context.db.main.clone(),
        queue,
        registry(&context),
        settings.worker_settings(),
    );
    worker
        .run(async move {
            let _ = stopped.wait_for(|&stop| stop).await;
        })
        .await;
    Ok(())
}

/// Removes what has expired: staff sessions past their expiry and finished
/// job runs older than JOBS_HISTORY_DAYS.
async fn housekeeping(context: JobContext) -> worker::JobResult {
    let purged = crate::staff::service::purge_expired_sessions(&context.db.main).await?;
    let days = context.config.jobs.history_days;
    let runs = purge_history(&context.db.main, days).await?;
    let records = purge_finished_records(&context.db.main, days).await?;
    Ok(JobSummary::new()
        .count("purged_sessions", purged)
        .count("purged_job_runs", runs)
        .count("purged_session_changes", records.session_changes)
        .count("purged_webhook_deliveries", records.webhook_deliveries))
}

/// Deletes finished job runs older than `days`.
pub async fn purge_history(db: &DatabaseConnection, days: u32) -> Result<u64, sea_orm::DbErr> {
    runs::purge_finished_before(db, Utc::now() - chrono::Duration::days(i64::from(days))).await
}

/// What [`purge_finished_records`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PurgedRecords {
    /// Settled enforcement actions (confirmed, not applied, superseded).
    pub session_changes: u64,
    /// Delivered or failed webhook deliveries.
    pub webhook_deliveries: u64,
}

/// Deletes the session changes settled and the webhook deliveries finished
/// more than `days` ago (`JOBS_HISTORY_DAYS`, like the job runs). What is
/// still waiting stays, whatever its age.
pub async fn purge_finished_records(
    db: &DatabaseConnection,
    days: u32,
) -> Result<PurgedRecords, sea_orm::DbErr> {
    let before = Utc::now() - chrono::Duration::days(i64::from(days));
    Ok(PurgedRecords {
        session_changes: crate::enforcement::service::purge_settled_actions(db, before).await?,
        webhook_deliveries: crate::webhooks::service::purge_finished_deliveries(db, before).await?,
    })
}

/// Releases expired allocations: the same service call as `ispd ipam cleanup`.
async fn ipam_cleanup(context: JobContext) -> worker::JobResult {
    let report = crate::ipam::service::cleanup_expired(
        &context.db.main,
        IpamSettings::from_config(&context.config),
        &Actor::system(),
    )
    .await?;
    Ok(JobSummary::new()
        .count("released", report.released)
        .count("already_released", report.already_released))
}

/// Syncs the users still flagged for RADIUS sync: the same service call as
/// `ispd radius retry`. Fails (so the run shows it and is retried) when the
/// RADIUS database stopped the run; the users stay flagged.
async fn radius_retry(context: JobContext) -> worker::JobResult {
    let report = crate::radius::resync::sync_pending_users(
        &context.db.main,
        &context.db.radius,
        &context.app_key,
        crate::radius::resync::RETRY_BATCH_SIZE,
    )
    .await?;
    if report.stopped_by.is_some() {
        anyhow::bail!("radius retry stopped early: {report}");
    }
    Ok(JobSummary::new()
        .count("pending", report.pending)
        .count("created", report.created)
        .count("updated", report.updated)
        .count("unchanged", report.unchanged)
        .count("failed", report.failed))
}

/// Closes stale RADIUS sessions: the same service call as `ispd radius
/// close-stale`, with the default interval (the Acct-Interim-Interval ispd
/// sends). Safe to overlap with a manual run: each session closes once.
async fn radius_close_stale(context: JobContext) -> worker::JobResult {
    let report = crate::radius::accounting::close_stale(
        &context.db.main,
        &context.db.radius,
        &Actor::system(),
        crate::radius::accounting::StaleSettings::default(),
        false,
    )
    .await?;
    Ok(JobSummary::new()
        .count("open_sessions", report.open_sessions)
        .count("closed", report.closed))
}

/// Rewrites every user's RADIUS rows: the same service call as `ispd radius
/// sync-users`. Users whose password does not decrypt fail the run.
async fn radius_sync_users(context: JobContext) -> worker::JobResult {
    let report = crate::radius::service::sync_all(
        &context.db.main,
        &context.db.radius,
        &context.app_key,
        false,
    )
    .await?;
    if !report.failed.is_empty() {
        anyhow::bail!(
            "{} user(s) could not be synced (their password does not decrypt with this APP_KEY): {}",
            report.failed.len(),
            report.failed.join(", ")
        );
    }
    Ok(JobSummary::new()
        .count("created", report.created)
        .count("updated", report.updated)
        .count("removed", report.removed)
        .count("unchanged", report.unchanged))
}

/// Reads every router's PPP sessions: the same service call as `ispd
/// mikrotik sync-sessions`. Fails when there are routers and none answered.
async fn mikrotik_sync_sessions(context: JobContext) -> worker::JobResult {
    let report = crate::mikrotik::sessions::sync_sessions(
        &context.db.main,
        &context.router_pool,
        crate::mikrotik::sessions::SyncOptions::default(),
    )
    .await?;
    if report.all_failed() {
        anyhow::bail!("no router could be synced ({} failed)", report.failed());
    }
    Ok(JobSummary::new()
        .count("routers", report.routers.len())
        .count("failed", report.failed()))
}

/// Checks routers, databases and Redis and stores the results: the same
/// service calls as `ispd network health-check`. Something being down is a
/// result, not a failure of the job: the run succeeds and counts it.
async fn network_health_check(context: JobContext) -> worker::JobResult {
    use crate::network::health;
    let connections = health::Connections {
        main: Ok(&context.db.main),
        radius: Ok(&context.db.radius),
    };
    let report = health::check_everything(&context.config, connections, &context.app_key).await;
    health::store(&context.db.main, &report).await?;
    Ok(JobSummary::new()
        .count("checks", report.checks.len())
        .count("down", report.down()))
}

/// One enforcement pass: the same service call as `ispd radius enforce`.
/// Fails when a subscriber could not be enforced (it is tried again next
/// pass).
async fn enforcement(context: JobContext) -> worker::JobResult {
    let reach = crate::enforcement::Reach::new(
        context.db.clone(),
        context.app_key.clone(),
        context.router_pool.clone(),
        &context.config,
    );
    let report = crate::enforcement::service::run_pass(&reach, &Actor::system()).await?;
    if report.failed > 0 {
        anyhow::bail!("{} subscriber(s) could not be enforced", report.failed);
    }
    Ok(JobSummary::new()
        .count("enforced", report.enforced)
        .count("sent", report.delivery.sent)
        .count("confirmed", report.delivery.confirmed)
        .count("resent", report.delivery.resent)
        .count("given_up", report.delivery.given_up))
}

/// One quota metering pass: the same service call as `ispd radius meter`.
/// Fails when a subscriber's new tier could not be carried to the network
/// (the enforcement job carries it later).
async fn quota_metering(context: JobContext) -> worker::JobResult {
    let reach = crate::enforcement::Reach::new(
        context.db.clone(),
        context.app_key.clone(),
        context.router_pool.clone(),
        &context.config,
    );
    let report = crate::quotas::metering::meter(&reach, &Actor::system()).await?;
    if report.not_enforced > 0 {
        anyhow::bail!(
            "{} subscriber(s) changed quota tier but could not be enforced yet",
            report.not_enforced
        );
    }
    Ok(JobSummary::new()
        .count("sessions", report.sessions)
        .count("counted", report.counted)
        .count("tiers_changed", report.tiers_changed))
}

/// One pass over the webhook deliveries that are due. A receiver that
/// does not take an event is a result, not a failure of the job: the
/// delivery is retried with its own back-off, and the run counts it.
async fn webhook_delivery(context: JobContext) -> worker::JobResult {
    let report =
        crate::webhooks::delivery::deliver_due(&context.db.main, &context.app_key, Utc::now())
            .await?;
    Ok(JobSummary::new()
        .count("delivered", report.delivered)
        .count("retrying", report.retrying)
        .count("failed", report.failed)
        .count("taken_elsewhere", report.taken_elsewhere))
}

/// A job as the Jobs page and `GET /api/v1/jobs` show it.
pub struct JobStatus {
    pub job: &'static ScheduledJob,
    /// The configured cron expression; None when turned off.
    pub schedule: Option<String>,
    pub next_run_at: Option<chrono::DateTime<Utc>>,
    /// The run queued or running now, if any.
    pub active_run: Option<runs::job_run::Model>,
    /// The latest finished run.
    pub last_run: Option<runs::job_run::Model>,
}

/// Every job with its schedule, next tick, active and last run.
pub async fn overview(
    db: &DatabaseConnection,
    settings: &JobsSettings,
) -> Result<Vec<JobStatus>, sea_orm::DbErr> {
    let mut jobs = Vec::with_capacity(SCHEDULE.len());
    for job in SCHEDULE {
        let schedule = settings.schedules.get(job.name).cloned().flatten();
        jobs.push(JobStatus {
            job,
            next_run_at: settings
                .schedule(job.name)
                .and_then(|s| s.upcoming(Utc).next()),
            schedule,
            active_run: runs::active_run(db, job.name).await?,
            last_run: runs::last_finished_run(db, job.name).await?,
        });
    }
    Ok(jobs)
}
