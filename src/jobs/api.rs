//! `/api/v1/jobs`: the background jobs, their run history, and "run now".
//!
//! Roles: any signed-in caller reads; operators and admins start runs.

use std::collections::BTreeMap;

use axum::extract::OriginalUri;
use axum::http::{header, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::runs::{self, job_run, RunFilter, Trigger};
use crate::api::auth::Api;
use crate::api::extract::{ApiPath, ApiQuery};
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};

use crate::staff::{Operator, Viewer};
use crate::web::pagination::{PageParams, Paged};

/// The jobs routes, relative to `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(list_job_runs))
        .routes(routes!(get_job_run))
        .routes(routes!(run_job))
}

/// One run of a job.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": 42, "job": "ipam-cleanup", "trigger": "schedule", "status": "succeeded",
        "scheduled_for": "2026-11-28T00:00:00Z", "requested_by": null, "attempts": 1, "worker": null,
        "created_at": "2026-11-28T00:00:00Z", "started_at": "2026-11-28T00:00:00.210Z",
        "finished_at": "2026-11-28T00:00:00.330Z", "duration_ms": 120,
        "summary": {"released": 3, "already_released": 0}, "error": null}))]
pub struct JobRunView {
    #[schema(example = 42)]
    pub id: i64,
    #[schema(example = "ipam-cleanup")]
    pub job: String,
    /// `schedule`, `manual` (the Jobs page), `api` or `cli`.
    #[schema(example = "schedule")]
    pub trigger: String,
    /// `queued`, `running`, `retrying`, `succeeded`, `failed` or `timed_out`.
    #[schema(example = "succeeded")]
    pub status: String,
    /// The cron tick this run is for (scheduled runs only).
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Who asked for a manual run.
    pub requested_by: Option<String>,
    /// Attempts started so far, the first included.
    #[schema(example = 1)]
    pub attempts: i32,
    /// The worker running it now (queued or running runs only).
    pub worker: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    #[schema(example = 120)]
    pub duration_ms: Option<i64>,
    /// Counts the job reported, e.g. `{"released": 3}`.
    #[schema(value_type = Option<Object>, example = json!({"released": 3, "already_released": 0}))]
    pub summary: Option<BTreeMap<String, i64>>,
    /// The last attempt's error.
    pub error: Option<String>,
}

impl From<job_run::Model> for JobRunView {
    fn from(run: job_run::Model) -> Self {
        let active = run.active_job.is_some();
        Self {
            id: run.id,
            job: run.job_name,
            trigger: run.trigger,
            status: run.status,
            scheduled_for: run.scheduled_for.map(|t| t.to_utc()),
            requested_by: run.requested_by,
            attempts: run.attempts,
            worker: run.lease_holder.filter(|_| active),
            created_at: run.created_at.to_utc(),
            started_at: run.started_at.map(|t| t.to_utc()),
            finished_at: run.finished_at.map(|t| t.to_utc()),
            duration_ms: run.duration_ms,
            summary: run
                .summary
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok()),
            error: run.error,
        }
    }
}

/// A job, its schedule and its latest runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    #[schema(example = "ipam-cleanup")]
    pub name: String,
    pub description: String,
    /// Cron expression, six fields with seconds first, in UTC; null when
    /// turned off.
    #[schema(example = "0 0 0 * * *")]
    pub schedule: Option<String>,
    /// The variable that sets the schedule.
    #[schema(example = "JOBS_SCHEDULE_IPAM_CLEANUP")]
    pub schedule_variable: String,
    pub next_run_at: Option<DateTime<Utc>>,
    /// The run queued or running now.
    pub active_run: Option<JobRunView>,
    /// The latest finished run.
    pub last_run: Option<JobRunView>,
}

impl From<super::JobStatus> for JobView {
    fn from(status: super::JobStatus) -> Self {
        Self {
            name: status.job.name.into(),
            description: status.job.description.into(),
            schedule: status.schedule,
            schedule_variable: status.job.env.into(),
            next_run_at: status.next_run_at,
            active_run: status.active_run.map(Into::into),
            last_run: status.last_run.map(Into::into),
        }
    }
}

/// The background jobs (server time: UTC).
#[utoipa::path(
    get,
    path = "/jobs",
    tag = "jobs",
    operation_id = "list_jobs",
    responses(
        (status = 200, description = "Every job, its schedule, next tick, active and last run.", body = Vec<JobView>,
            example = json!([{"name": "ipam-cleanup",
                "description": "Releases allocations past their expiry, as `ispd ipam cleanup` does (daily at 00:00 UTC).",
                "schedule": "0 0 0 * * *", "schedule_variable": "JOBS_SCHEDULE_IPAM_CLEANUP",
                "next_run_at": "2026-11-29T00:00:00Z", "active_run": null,
                "last_run": {"id": 42, "job": "ipam-cleanup", "trigger": "schedule", "status": "succeeded",
                    "scheduled_for": "2026-11-28T00:00:00Z", "requested_by": null, "attempts": 1, "worker": null,
                    "created_at": "2026-11-28T00:00:00Z", "started_at": "2026-11-28T00:00:00.210Z",
                    "finished_at": "2026-11-28T00:00:00.330Z", "duration_ms": 120,
                    "summary": {"released": 3, "already_released": 0}, "error": null}}])),
    ),
)]
pub async fn list_jobs(api: Api<Viewer>) -> Result<Json<Vec<JobView>>, AppError> {
    let jobs = super::overview(api.db(), &api.state.config.jobs).await?;
    Ok(Json(jobs.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Only runs of this job.
    #[param(example = "ipam-cleanup")]
    pub job: Option<String>,
    /// `queued`, `running`, `retrying`, `succeeded`, `failed` or `timed_out`.
    pub status: Option<String>,
    /// `schedule`, `manual`, `api` or `cli`.
    pub trigger: Option<String>,
}

/// The run history, newest first.
#[utoipa::path(
    get,
    path = "/jobs/runs",
    tag = "jobs",
    operation_id = "list_job_runs",
    params(PageParams, RunQuery),
    responses(
        (status = 200, description = "One page of runs.", body = crate::web::pagination::Page<JobRunView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"id": 42, "job": "ipam-cleanup", "trigger": "schedule", "status": "succeeded",
                    "scheduled_for": "2026-11-28T00:00:00Z", "requested_by": null, "attempts": 1, "worker": null,
                    "created_at": "2026-11-28T00:00:00Z", "started_at": "2026-11-28T00:00:00.210Z",
                    "finished_at": "2026-11-28T00:00:00.330Z", "duration_ms": 120,
                    "summary": {"released": 3, "already_released": 0}, "error": null}], "meta": {"total": 1, "page": 1, "per_page": 50}})),
        (status = 422, response = crate::api::docs::ValidationFailed),
    ),
)]
pub async fn list_job_runs(
    api: Api<Viewer>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> Result<Paged<JobRunView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = RunFilter::parse(
        query.job.as_deref(),
        query.status.as_deref(),
        query.trigger.as_deref(),
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let (rows, total) = runs::list_runs(api.db(), &filter, page.page, page.per_page).await?;
    Ok(Paged::new(&uri, page, total, rows).map(JobRunView::from))
}

/// One run.
#[utoipa::path(
    get,
    path = "/jobs/runs/{id}",
    tag = "jobs",
    operation_id = "get_job_run",
    params(("id" = i64, Path, description = "The run's id.")),
    responses(
        (status = 200, description = "The run.", body = JobRunView),
    ),
)]
pub async fn get_job_run(
    api: Api<Viewer>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<JobRunView>, AppError> {
    let run = runs::find_run(api.db(), id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no job run with id {id}")))?;
    Ok(Json(run.into()))
}

/// Run a job now (operator and up). The run is queued at once and a worker
/// starts it within a second or so; follow it with `GET /jobs/runs/{id}`.
#[utoipa::path(
    post,
    path = "/jobs/{name}/run",
    tag = "jobs",
    operation_id = "run_job",
    params(("name" = String, Path, description = "The job's name, e.g. `ipam-cleanup`.")),
    responses(
        (status = 202, description = "Queued.", body = JobRunView,
            headers(("Location" = String, description = "The run's URL, to follow it."))),
        (status = 409, description = "A run of this job is already queued or running.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "job_already_running",
                "message": "job \"ipam-cleanup\" is already queued or running (run 42); try again when it has finished"}})),
    ),
)]
pub async fn run_job(
    api: Api<Operator>,
    ApiPath(name): ApiPath<String>,
) -> Result<
    (
        StatusCode,
        [(header::HeaderName, String); 1],
        Json<JobRunView>,
    ),
    AppError,
> {
    let run = runs::request_run(api.db(), &name, Trigger::Api, &api.actor).await?;
    let location = format!("/api/v1/jobs/runs/{}", run.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(run.into()),
    ))
}
