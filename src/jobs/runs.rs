//! The job-run history, which is also how workers agree with each other.
//!
//! Every run of a job is one `job_runs` row, written before the job is
//! queued. Three columns carry the coordination, so that any number of
//! workers (sharing one Redis, or one embedded store) never run a job twice:
//!
//! - `run_key` is unique: `job@tick` for a scheduled run. Every worker's
//!   scheduler tries to insert the row for a tick; the database lets exactly
//!   one succeed, and only that worker queues the run.
//! - `active_job` is unique and holds the job name while the run is queued or
//!   running (NULL afterwards; a unique index ignores NULLs on SQLite,
//!   PostgreSQL and MariaDB alike). A second run of a job that is still
//!   active cannot be inserted: a manual "run now" gets a 409, an
//!   overlapping scheduled tick is skipped.
//! - `lease_holder` and `lease_until` name the worker executing the run. A
//!   worker takes a run with one conditional UPDATE (only a queued run, or
//!   one whose lease has expired), renews the lease while the job runs, and
//!   gives up the attempt when the lease was taken from it. When a worker
//!   dies its lease expires, and another worker's sweep queues the run again.
//!
//! The lease times come from each worker's clock: the workers are expected
//! to run on hosts with synchronised clocks (NTP), as the cron ticks are.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::Serialize;

use crate::audit::Actor;
use crate::error::FieldErrors;
use crate::query::filters;

pub mod job_run {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "job_runs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub job_name: String,
        /// `schedule`, `manual`, `api` or `cli`.
        pub trigger: String,
        pub run_key: String,
        /// The job name while the run is queued or running, else None.
        pub active_job: Option<String>,
        pub scheduled_for: Option<DateTimeWithTimeZone>,
        /// See [`super::RunStatus`].
        pub status: String,
        pub attempts: i32,
        pub requested_by: Option<String>,
        pub lease_holder: Option<String>,
        pub lease_until: Option<DateTimeWithTimeZone>,
        pub enqueued_at: Option<DateTimeWithTimeZone>,
        pub created_at: DateTimeWithTimeZone,
        pub started_at: Option<DateTimeWithTimeZone>,
        pub finished_at: Option<DateTimeWithTimeZone>,
        pub duration_ms: Option<i64>,
        /// A JSON object of counts.
        pub summary: Option<String>,
        pub error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    /// The "Run now" button of the Jobs page.
    Manual,
    /// `POST /api/v1/jobs/{name}/run`.
    Api,
    /// `ispd jobs run <name>`.
    Cli,
}

impl Trigger {
    pub const ALL: [Trigger; 4] = [
        Trigger::Schedule,
        Trigger::Manual,
        Trigger::Api,
        Trigger::Cli,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Api => "api",
            Trigger::Cli => "cli",
        }
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Written and waiting for a worker.
    Queued,
    Running,
    /// An attempt failed; the next one starts after the back-off.
    Retrying,
    Succeeded,
    /// Every attempt failed.
    Failed,
    /// The last attempt ran past the job timeout and was cancelled.
    TimedOut,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Retrying,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::TimedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Retrying => "retrying",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The counts a job reports, e.g. `{"released": 3}`; stored as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobSummary(pub BTreeMap<String, i64>);

impl JobSummary {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn count(mut self, name: &str, value: impl TryInto<i64>) -> Self {
        self.0
            .insert(name.to_string(), value.try_into().unwrap_or(i64::MAX));
        self
    }
}

impl fmt::Display for JobSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&parts.join(" "))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("there is no job named \"{0}\"")]
    UnknownJob(String),
    /// A run of this job is already queued or running.
    #[error(
        "job \"{job}\" is already queued or running (run {run_id}); try again when it has finished"
    )]
    AlreadyActive { job: String, run_id: i64 },
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl From<JobsError> for crate::error::AppError {
    fn from(err: JobsError) -> Self {
        use crate::error::AppError;
        match err {
            JobsError::UnknownJob(_) => AppError::NotFound(err.to_string()),
            JobsError::AlreadyActive { .. } => AppError::Conflict {
                code: "job_already_running",
                message: err.to_string(),
            },
            JobsError::Db(db) => db.into(),
        }
    }
}

fn tick_key(job: &str, tick: DateTime<Utc>) -> String {
    format!("{job}@{}", tick.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn new_run(
    job: &str,
    trigger: Trigger,
    run_key: String,
    now: DateTime<Utc>,
) -> job_run::ActiveModel {
    job_run::ActiveModel {
        job_name: Set(job.to_string()),
        trigger: Set(trigger.as_str().into()),
        run_key: Set(run_key),
        active_job: Set(Some(job.to_string())),
        scheduled_for: Set(None),
        status: Set(RunStatus::Queued.as_str().into()),
        attempts: Set(0),
        requested_by: Set(None),
        lease_holder: Set(None),
        lease_until: Set(None),
        enqueued_at: Set(None),
        created_at: Set(now.fixed_offset()),
        started_at: Set(None),
        finished_at: Set(None),
        duration_ms: Set(None),
        summary: Set(None),
        error: Set(None),
        ..Default::default()
    }
}

/// Claims one scheduled tick of `job` for this worker: inserts the run row
/// keyed by job and tick. Returns None when another worker claimed the tick
/// first, or when the job's previous run is still active (that tick is
/// skipped rather than run in parallel).
pub async fn claim_tick(
    db: &impl ConnectionTrait,
    job: &str,
    tick: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<job_run::Model>, DbErr> {
    let mut run = new_run(job, Trigger::Schedule, tick_key(job, tick), now);
    run.scheduled_for = Set(Some(tick.fixed_offset()));
    // The claimer queues it at once; see `runs_to_enqueue` for the fallback.
    run.enqueued_at = Set(Some(now.fixed_offset()));
    match run.insert(db).await {
        Ok(model) => Ok(Some(model)),
        Err(err) if crate::db::unique_violation(&err).is_some() => Ok(None),
        Err(err) => Err(err),
    }
}

/// Asks for a run of `job` now, on behalf of `actor` (audited). Refused
/// with [`JobsError::AlreadyActive`] while a run of it is queued or
/// running. A worker's sweep queues it within one poll interval.
pub async fn request_run(
    db: &DatabaseConnection,
    job: &str,
    trigger: Trigger,
    actor: &Actor,
) -> Result<job_run::Model, JobsError> {
    if !super::is_known_job(job) {
        return Err(JobsError::UnknownJob(job.to_string()));
    }
    let now = Utc::now();
    let key = format!("{job}@{}-{:016x}", trigger.as_str(), rand::random::<u64>());
    let mut run = new_run(job, trigger, key, now);
    run.requested_by = Set(Some(actor.name.chars().take(128).collect()));
    let txn = db.begin().await?;
    let inserted = match run.insert(&txn).await {
        Ok(model) => model,
        Err(err) if crate::db::unique_violation(&err).is_some() => {
            // PostgreSQL has aborted the transaction: look from outside it.
            drop(txn);
            let active = active_run(db, job).await?;
            return Err(JobsError::AlreadyActive {
                job: job.to_string(),
                run_id: active.map(|r| r.id).unwrap_or_default(),
            });
        }
        Err(err) => return Err(err.into()),
    };
    crate::audit::record(
        &txn,
        actor,
        "job.run_requested",
        "job",
        Some(job.to_string()),
        serde_json::json!({"run_id": inserted.id, "trigger": trigger.as_str()}),
    )
    .await?;
    txn.commit().await?;
    Ok(inserted)
}

/// Active runs that need (re)queueing: never queued (manual runs), queued
/// longer ago than `requeue_after` (the queue may have lost them, e.g. a
/// Redis restarted without persistence), or held by a worker whose lease has
/// expired (it died). Each returned run has been marked as queued now by
/// this worker with a conditional UPDATE, so only one worker pushes it.
pub async fn take_runs_to_enqueue(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    requeue_after: Duration,
) -> Result<Vec<job_run::Model>, DbErr> {
    let cutoff =
        (now - chrono::Duration::from_std(requeue_after).unwrap_or_default()).fixed_offset();
    let stale_enqueue = Condition::any()
        .add(job_run::Column::EnqueuedAt.is_null())
        .add(job_run::Column::EnqueuedAt.lt(cutoff));
    let waiting = Condition::any()
        .add(job_run::Column::Status.eq(RunStatus::Queued.as_str()))
        .add(job_run::Column::LeaseUntil.lt(now.fixed_offset()));
    let candidates = job_run::Entity::find()
        .filter(job_run::Column::ActiveJob.is_not_null())
        .filter(stale_enqueue.clone())
        .filter(waiting)
        .order_by_asc(job_run::Column::Id)
        .limit(100)
        .all(db)
        .await?;
    let mut taken = Vec::new();
    for run in candidates {
        let updated = job_run::Entity::update_many()
            .col_expr(job_run::Column::EnqueuedAt, Expr::value(now.fixed_offset()))
            .filter(job_run::Column::Id.eq(run.id))
            .filter(stale_enqueue.clone())
            .exec(db)
            .await?;
        if updated.rows_affected == 1 {
            taken.push(run);
        }
    }
    Ok(taken)
}

/// Takes the run for `holder` if it is queued, or if its holder's lease has
/// expired. Returns the run as taken, or None when another worker holds it
/// or it has finished.
pub async fn acquire(
    db: &impl ConnectionTrait,
    run_id: i64,
    holder: &str,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<Option<job_run::Model>, DbErr> {
    let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
    let takeable = Condition::any()
        .add(job_run::Column::Status.eq(RunStatus::Queued.as_str()))
        .add(
            Condition::all()
                .add(
                    job_run::Column::Status
                        .is_in([RunStatus::Running.as_str(), RunStatus::Retrying.as_str()]),
                )
                .add(job_run::Column::LeaseUntil.lt(now.fixed_offset())),
        );
    let updated = job_run::Entity::update_many()
        .col_expr(
            job_run::Column::Status,
            Expr::value(RunStatus::Running.as_str()),
        )
        .col_expr(job_run::Column::LeaseHolder, Expr::value(holder))
        .col_expr(
            job_run::Column::LeaseUntil,
            Expr::value(until.fixed_offset()),
        )
        .filter(job_run::Column::Id.eq(run_id))
        .filter(job_run::Column::ActiveJob.is_not_null())
        .filter(takeable)
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Ok(None);
    }
    let Some(run) = job_run::Entity::find_by_id(run_id).one(db).await? else {
        return Ok(None);
    };
    if run.started_at.is_none() {
        job_run::Entity::update_many()
            .col_expr(job_run::Column::StartedAt, Expr::value(now.fixed_offset()))
            .filter(job_run::Column::Id.eq(run_id))
            .exec(db)
            .await?;
    }
    Ok(Some(run))
}

/// Counts the start of one more attempt; false when the lease was lost.
pub async fn begin_attempt(
    db: &impl ConnectionTrait,
    run_id: i64,
    holder: &str,
) -> Result<bool, DbErr> {
    let updated = job_run::Entity::update_many()
        .col_expr(
            job_run::Column::Attempts,
            sea_orm::sea_query::ExprTrait::add(Expr::col(job_run::Column::Attempts), 1),
        )
        .col_expr(
            job_run::Column::Status,
            Expr::value(RunStatus::Running.as_str()),
        )
        .filter(job_run::Column::Id.eq(run_id))
        .filter(job_run::Column::LeaseHolder.eq(holder))
        .filter(job_run::Column::ActiveJob.is_not_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Extends the lease; false when another worker has taken the run.
pub async fn renew_lease(
    db: &impl ConnectionTrait,
    run_id: i64,
    holder: &str,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<bool, DbErr> {
    let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
    let updated = job_run::Entity::update_many()
        .col_expr(
            job_run::Column::LeaseUntil,
            Expr::value(until.fixed_offset()),
        )
        .filter(job_run::Column::Id.eq(run_id))
        .filter(job_run::Column::LeaseHolder.eq(holder))
        .filter(job_run::Column::ActiveJob.is_not_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Records a failed attempt that will be retried after the back-off.
pub async fn record_retry(
    db: &impl ConnectionTrait,
    run_id: i64,
    holder: &str,
    error: &str,
) -> Result<bool, DbErr> {
    let updated = job_run::Entity::update_many()
        .col_expr(
            job_run::Column::Status,
            Expr::value(RunStatus::Retrying.as_str()),
        )
        .col_expr(job_run::Column::Error, Expr::value(error))
        .filter(job_run::Column::Id.eq(run_id))
        .filter(job_run::Column::LeaseHolder.eq(holder))
        .filter(job_run::Column::ActiveJob.is_not_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// How a run ended.
pub enum Outcome {
    Succeeded(JobSummary),
    Failed(String),
    TimedOut(String),
}

/// Records the end of the run and frees the job for its next run.
pub async fn finish(
    db: &impl ConnectionTrait,
    run_id: i64,
    holder: &str,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let Some(run) = job_run::Entity::find_by_id(run_id).one(db).await? else {
        return Ok(false);
    };
    let started = run.started_at.map(|s| s.to_utc()).unwrap_or(now);
    let duration_ms = (now - started).num_milliseconds().max(0);
    let (status, summary, error) = match outcome {
        Outcome::Succeeded(summary) => (
            RunStatus::Succeeded,
            serde_json::to_string(&summary.0).ok(),
            None,
        ),
        Outcome::Failed(error) => (RunStatus::Failed, None, Some(error)),
        Outcome::TimedOut(error) => (RunStatus::TimedOut, None, Some(error)),
    };
    let updated = job_run::Entity::update_many()
        .col_expr(job_run::Column::Status, Expr::value(status.as_str()))
        .col_expr(
            job_run::Column::ActiveJob,
            Expr::value(Option::<String>::None),
        )
        .col_expr(job_run::Column::FinishedAt, Expr::value(now.fixed_offset()))
        .col_expr(job_run::Column::DurationMs, Expr::value(duration_ms))
        .col_expr(job_run::Column::Summary, Expr::value(summary))
        .col_expr(job_run::Column::Error, Expr::value(error))
        .col_expr(
            job_run::Column::LeaseUntil,
            Expr::value(Option::<chrono::DateTime<chrono::FixedOffset>>::None),
        )
        .filter(job_run::Column::Id.eq(run_id))
        .filter(job_run::Column::LeaseHolder.eq(holder))
        .filter(job_run::Column::ActiveJob.is_not_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Filters of the run list; empty fields match everything.
#[derive(Debug, Default, Clone)]
pub struct RunFilter {
    pub job: Option<String>,
    pub status: Option<RunStatus>,
    pub trigger: Option<Trigger>,
}

impl RunFilter {
    /// Reads the run filters (of the pages and the API alike); problems go
    /// into `errors` by parameter name.
    pub fn parse(
        job: Option<&str>,
        status: Option<&str>,
        trigger: Option<&str>,
        errors: &mut FieldErrors,
    ) -> RunFilter {
        let job = filters::text("job", job, 64, errors);
        if let Some(name) = &job {
            if !super::is_known_job(name) {
                errors.insert("job".into(), format!("there is no job named \"{name}\""));
            }
        }
        let status = filters::text("status", status, 16, errors).and_then(|s| {
            let parsed = RunStatus::parse(&s);
            if parsed.is_none() {
                errors.insert(
                    "status".into(),
                    "must be one of queued, running, retrying, succeeded, failed, timed_out".into(),
                );
            }
            parsed
        });
        let trigger = filters::text("trigger", trigger, 16, errors).and_then(|t| {
            let parsed = Trigger::ALL.into_iter().find(|x| x.as_str() == t);
            if parsed.is_none() {
                errors.insert(
                    "trigger".into(),
                    "must be one of schedule, manual, api, cli".into(),
                );
            }
            parsed
        });
        RunFilter {
            job,
            status,
            trigger,
        }
    }
}

/// One page of runs, newest first, and the number of matching runs.
pub async fn list_runs(
    db: &impl ConnectionTrait,
    filter: &RunFilter,
    page: u64,
    per_page: u64,
) -> Result<(Vec<job_run::Model>, u64), DbErr> {
    let mut query = job_run::Entity::find();
    if let Some(job) = &filter.job {
        query = query.filter(job_run::Column::JobName.eq(job.as_str()));
    }
    if let Some(status) = filter.status {
        query = query.filter(job_run::Column::Status.eq(status.as_str()));
    }
    if let Some(trigger) = filter.trigger {
        query = query.filter(job_run::Column::Trigger.eq(trigger.as_str()));
    }
    let total = query.clone().count(db).await?;
    let rows = query
        .order_by_desc(job_run::Column::Id)
        .offset(page.saturating_sub(1) * per_page)
        .limit(per_page)
        .all(db)
        .await?;
    Ok((rows, total))
}

pub async fn find_run(
    db: &impl ConnectionTrait,
    run_id: i64,
) -> Result<Option<job_run::Model>, DbErr> {
    job_run::Entity::find_by_id(run_id).one(db).await
}

/// The runs of `job` that are queued or running (at most one).
pub async fn active_run(
    db: &impl ConnectionTrait,
    job: &str,
) -> Result<Option<job_run::Model>, DbErr> {
    job_run::Entity::find()
        .filter(job_run::Column::ActiveJob.eq(job))
        .one(db)
        .await
}

/// Deletes finished runs created before `cutoff`; returns how many.
pub async fn purge_finished_before(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let deleted = job_run::Entity::delete_many()
        .filter(job_run::Column::ActiveJob.is_null())
        .filter(job_run::Column::CreatedAt.lt(cutoff.fixed_offset()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// The latest finished run of `job`.
pub async fn last_finished_run(
    db: &impl ConnectionTrait,
    job: &str,
) -> Result<Option<job_run::Model>, DbErr> {
    job_run::Entity::find()
        .filter(job_run::Column::JobName.eq(job))
        .filter(job_run::Column::ActiveJob.is_null())
        .order_by_desc(job_run::Column::Id)
        .one(db)
        .await
}
