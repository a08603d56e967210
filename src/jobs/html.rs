//! The Jobs page: every job with its schedule and "Run now" (operators and
//! up), and the run history with filters, refreshed every 5 seconds by htmx
//! (the `live` block of `jobs/index.html`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::runs::{self, job_run, RunFilter, RunStatus, Trigger};
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::staff::{Operator, Role};
use crate::web::flash;
use crate::web::forms::{choices, is_htmx, render_fragment, see_other, with_vary, Choice, Staff};
use crate::web::layout::Chrome;

const PER_PAGE: u64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/jobs", get(jobs_page))
        .route("/jobs/{name}/run", post(run_now))
}

#[derive(Debug, Default, Deserialize)]
pub struct JobsQuery {
    pub job: Option<String>,
    pub status: Option<String>,
    pub trigger: Option<String>,
    pub page: Option<String>,
}

pub struct JobRow {
    pub name: &'static str,
    pub description: &'static str,
    /// The cron expression, or "off".
    pub schedule: String,
    pub env: &'static str,
    pub next_run: String,
    /// "running (run 7)", "queued (run 7)" or "".
    pub active: String,
    pub last_status: String,
    pub last_finished: String,
}

pub struct RunRow {
    pub id: i64,
    pub job: String,
    pub trigger: String,
    pub status: String,
    pub attempts: i32,
    pub created: String,
    pub started: String,
    pub finished: String,
    pub duration: String,
    pub summary: String,
    pub error: String,
    pub requested_by: String,
}

fn when(at: Option<chrono::DateTime<chrono::FixedOffset>>) -> String {
    at.map(|t| t.to_utc().format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "—".into())
}

impl From<job_run::Model> for RunRow {
    fn from(run: job_run::Model) -> Self {
        let summary = run
            .summary
            .as_deref()
            .and_then(|s| serde_json::from_str::<std::collections::BTreeMap<String, i64>>(s).ok())
            .map(|counts| {
                counts
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        Self {
            id: run.id,
            job: run.job_name,
            trigger: run.trigger,
            status: run.status,
            attempts: run.attempts,
            created: when(Some(run.created_at)),
            started: when(run.started_at),
            finished: when(run.finished_at),
            duration: run
                .duration_ms
                .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
                .unwrap_or_else(|| "—".into()),
            summary,
            error: run.error.unwrap_or_default(),
            requested_by: run.requested_by.unwrap_or_default(),
        }
    }
}

pub struct Live {
    pub jobs: Vec<JobRow>,
    pub runs: Vec<RunRow>,
    pub total: u64,
    pub page: u64,
    pub filtered: bool,
    /// This page's URL, for the refresh.
    pub refresh_href: String,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
    pub can_run: bool,
    pub csrf_token: String,
    pub problem: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "jobs/index.html")]
pub struct JobsPage {
    pub chrome: Chrome,
    pub job_options: Vec<Choice>,
    pub status_options: Vec<Choice>,
    pub trigger_options: Vec<Choice>,
    pub live: Live,
}

#[derive(Template)]
#[template(path = "jobs/index.html", block = "live")]
pub struct LiveFragment {
    pub live: Live,
}

fn href(params: &[(&str, String)], page: u64) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
    }
    if page > 1 {
        query.append_pair("page", &page.to_string());
    }
    let query = query.finish();
    if query.is_empty() {
        "/jobs".into()
    } else {
        format!("/jobs?{query}")
    }
}

async fn live(state: &AppState, chrome: &Chrome, query: &JobsQuery) -> Result<Live, AppError> {
    let mut errors = FieldErrors::new();
    let filter = RunFilter::parse(
        query.job.as_deref(),
        query.status.as_deref(),
        query.trigger.as_deref(),
        &mut errors,
    );
    let page = match query
        .page
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        None => 1,
        Some(text) => match text.parse::<u64>() {
            Ok(n) if (1..=1_000_000).contains(&n) => n,
            _ => {
                errors.insert("page".into(), "must be a page number from 1".into());
                1
            }
        },
    };
    let problem = (!errors.is_empty()).then(|| {
        errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    });
    let overview = super::overview(&state.db.main, &state.config.jobs).await?;
    let jobs = overview
        .into_iter()
        .map(|status| JobRow {
            name: status.job.name,
            description: status.job.description,
            schedule: status.schedule.unwrap_or_else(|| "off".into()),
            env: status.job.env,
            next_run: status
                .next_run_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "—".into()),
            active: status
                .active_run
                .map(|r| format!("{} (run {})", r.status, r.id))
                .unwrap_or_default(),
            last_status: status
                .last_run
                .as_ref()
                .map(|r| r.status.clone())
                .unwrap_or_else(|| "never run".into()),
            last_finished: when(status.last_run.and_then(|r| r.finished_at)),
        })
        .collect();
    let (rows, total) = runs::list_runs(&state.db.main, &filter, page, PER_PAGE).await?;
    let params = vec![
        ("job", filter.job.clone().unwrap_or_default()),
        (
            "status",
            filter
                .status
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
        ),
        (
            "trigger",
            filter
                .trigger
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
        ),
    ];
    let last_page = total.div_ceil(PER_PAGE).max(1);
    Ok(Live {
        jobs,
        runs: rows.into_iter().map(RunRow::from).collect(),
        total,
        page,
        filtered: params.iter().any(|(_, v)| !v.is_empty()),
        refresh_href: href(&params, page),
        prev_href: (page > 1).then(|| href(&params, page - 1)),
        next_href: (page < last_page).then(|| href(&params, page + 1)),
        can_run: chrome.can(Role::Operator),
        csrf_token: chrome.csrf_token.clone(),
        problem,
    })
}

pub async fn jobs_page(
    staff: Staff,
    headers: HeaderMap,
    Query(query): Query<JobsQuery>,
) -> Result<Response, AppError> {
    let chrome = staff.chrome().await?;
    let live = live(&staff.state, &chrome, &query).await?;
    if is_htmx(&headers) {
        return render_fragment(StatusCode::OK, &LiveFragment { live });
    }
    let job_names: Vec<&'static str> = super::SCHEDULE.iter().map(|j| j.name).collect();
    let statuses: Vec<&'static str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
    let triggers: Vec<&'static str> = Trigger::ALL.iter().map(|t| t.as_str()).collect();
    let page = JobsPage {
        chrome: chrome.at("jobs", "Jobs"),
        job_options: choices(&job_names, query.job.as_deref().unwrap_or_default()),
        status_options: choices(&statuses, query.status.as_deref().unwrap_or_default()),
        trigger_options: choices(&triggers, query.trigger.as_deref().unwrap_or_default()),
        live,
    };
    Ok(with_vary(page.into_response()))
}

/// "Run now": queues a run (operator and up); refused while one is active.
pub async fn run_now(
    staff: Staff<Operator>,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let back = format!("/jobs?job={}", urlencode(&name));
    match runs::request_run(staff.db(), &name, Trigger::Manual, &staff.actor).await {
        Ok(run) => {
            let queued = format!(
                "Job “{name}” queued (run {}); a worker starts it within seconds.",
                run.id
            );
            Ok(staff.done(queued, back).await)
        }
        Err(err @ runs::JobsError::AlreadyActive { .. }) => {
            flash::push(&staff.session, "error", err.to_string()).await;
            Ok(see_other(back))
        }
        Err(err) => Err(err.into()),
    }
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
