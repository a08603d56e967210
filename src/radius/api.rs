//! `/api/v1` routes of the RADIUS area: a user's accounting, who is
//! online, the usage report, and closing stale sessions.
//!
//! Thin handlers over [`super::accounting`], the functions the pages, the
//! CLI and the scheduled job call too. Viewers read; operators and admins
//! close stale sessions.

use axum::extract::OriginalUri;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::accounting::{
    self, DailyUsage, DateRange, MonthlyUsage, OnlineFilter, OnlineSort, Session, StaleSettings,
    Usage, UserUsage,
};
use crate::api::auth::Api;
use crate::api::check;
use crate::api::extract::{ApiPath, ApiQuery};
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};

use crate::query::filters;
use crate::staff::{Operator, Viewer};
use crate::web::pagination::{link_header, Page, PageMeta, PageParams, Paged};

/// The RADIUS accounting routes, relative to `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(user_accounting))
        .routes(routes!(list_online))
        .routes(routes!(usage_report))
        .routes(routes!(close_stale_sessions))
}

// ---------------------------------------------------------------- views

/// One RADIUS accounting session (a radacct row). Octet counts include
/// the gigawords (FreeRADIUS folds them in when it writes the row).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"radacctid": 42, "acct_session_id": "81a00003",
    "acct_unique_id": "4f2c0d9e1b7a6c55", "username": "alice@isp.example",
    "nas_ip": "192.0.2.1", "nas_port_id": "pppoe-in1", "framed_ip": "100.64.0.7",
    "calling_station_id": "AA:BB:CC:DD:EE:FF", "started_at": "2026-11-28T08:00:00Z",
    "updated_at": "2026-11-28T09:00:00Z", "stopped_at": null, "open": true,
    "duration_secs": 3720, "session_time_secs": 3600, "interval_secs": 300,
    "last_update_age_secs": 120, "input_octets": 5000000000_i64, "output_octets": 81920,
    "terminate_cause": null}))]
pub struct SessionView {
    #[schema(example = 42)]
    pub radacctid: i64,
    /// Acct-Session-Id, as the NAS names the session.
    pub acct_session_id: String,
    /// FreeRADIUS's Acct-Unique-Session-Id.
    pub acct_unique_id: String,
    pub username: String,
    #[schema(example = "192.0.2.1")]
    pub nas_ip: String,
    pub nas_port_id: Option<String>,
    /// Framed-IP-Address.
    #[schema(example = "100.64.0.7")]
    pub framed_ip: Option<String>,
    /// Calling-Station-Id: the subscriber's MAC address (or caller id).
    pub calling_station_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    /// The last Start, Interim-Update or Stop.
    pub updated_at: Option<DateTime<Utc>>,
    /// Null while the session is open.
    pub stopped_at: Option<DateTime<Utc>>,
    /// True while the session has no stop time.
    pub open: bool,
    /// Acct-Session-Time once closed; for an open session the time since
    /// its start.
    pub duration_secs: Option<i64>,
    /// Acct-Session-Time of the last accounting packet.
    pub session_time_secs: Option<i64>,
    /// Seconds between the last two interim updates (radacct.acctinterval).
    pub interval_secs: Option<i64>,
    /// For an open session: seconds since its last accounting packet.
    pub last_update_age_secs: Option<i64>,
    /// Octets from the subscriber (upload), gigawords included.
    pub input_octets: i64,
    /// Octets to the subscriber (download), gigawords included.
    pub output_octets: i64,
    /// Acct-Terminate-Cause; `Stale-Session` when ispd closed it.
    #[schema(example = "User-Request")]
    pub terminate_cause: Option<String>,
}

impl SessionView {
    pub fn of(s: Session, now: DateTime<Utc>) -> Self {
        Self {
            open: s.is_open(),
            duration_secs: s.duration_secs(now),
            last_update_age_secs: if s.is_open() {
                s.last_update_age_secs(now)
            } else {
                None
            },
            radacctid: s.radacctid,
            acct_session_id: s.acct_session_id,
            acct_unique_id: s.acct_unique_id,
            username: s.username,
            nas_ip: s.nas_ip,
            nas_port_id: s.nas_port_id,
            framed_ip: s.framed_ip,
            calling_station_id: s.calling_station_id,
            started_at: s.started_at,
            updated_at: s.updated_at,
            stopped_at: s.stopped_at,
            session_time_secs: s.session_time_secs,
            interval_secs: s.interval_secs,
            input_octets: s.input_octets,
            output_octets: s.output_octets,
            terminate_cause: s.terminate_cause,
        }
    }
}

/// Sessions and traffic over a period.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"sessions": 3, "input_octets": 5000000000_i64,
    "output_octets": 12000000000_i64, "total_octets": 17000000000_i64, "session_time_secs": 86400}))]
pub struct UsageView {
    pub sessions: u64,
    pub input_octets: i64,
    pub output_octets: i64,
    pub total_octets: i64,
    pub session_time_secs: i64,
}

impl From<Usage> for UsageView {
    fn from(u: Usage) -> Self {
        Self {
            sessions: u.sessions,
            input_octets: u.input_octets,
            output_octets: u.output_octets,
            total_octets: u.total_octets(),
            session_time_secs: u.session_time_secs,
        }
    }
}

/// Usage on one UTC day: the sessions that started on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DailyUsageView {
    #[schema(value_type = String, format = Date, example = "2026-11-28")]
    pub day: chrono::NaiveDate,
    #[serde(flatten)]
    pub usage: UsageView,
}

impl From<DailyUsage> for DailyUsageView {
    fn from(d: DailyUsage) -> Self {
        Self {
            day: d.day,
            usage: d.usage.into(),
        }
    }
}

/// Usage in one calendar month (UTC).
#[derive(Debug, Serialize, ToSchema)]
pub struct MonthlyUsageView {
    #[schema(example = "2026-11")]
    pub month: String,
    #[serde(flatten)]
    pub usage: UsageView,
}

impl From<MonthlyUsage> for MonthlyUsageView {
    fn from(m: MonthlyUsage) -> Self {
        Self {
            month: m.month,
            usage: m.usage.into(),
        }
    }
}

/// A network user's accounting over a range.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserAccounting {
    #[schema(example = 7)]
    pub user_id: i32,
    #[schema(example = "alice@isp.example")]
    pub username: String,
    /// The start of the range (inclusive); null when open.
    pub from: Option<DateTime<Utc>>,
    /// The end of the range (exclusive); null when open.
    pub to: Option<DateTime<Utc>>,
    pub totals: UsageView,
    /// Days with sessions, oldest first.
    pub daily: Vec<DailyUsageView>,
    /// Months with sessions, oldest first.
    pub monthly: Vec<MonthlyUsageView>,
    /// One page of the sessions that started in the range, newest first.
    pub sessions: Page<SessionView>,
}

/// One username's usage (the usage report).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserUsageView {
    #[schema(example = "alice@isp.example")]
    pub username: String,
    #[serde(flatten)]
    pub usage: UsageView,
}

impl From<UserUsage> for UserUsageView {
    fn from(u: UserUsage) -> Self {
        Self {
            username: u.username,
            usage: u.usage.into(),
        }
    }
}

/// What closing stale sessions did, or in a dry run would do.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"open_sessions": 1200, "closed": 3, "dry_run": false}))]
pub struct StaleReportView {
    /// Open sessions before the run.
    pub open_sessions: u64,
    /// Sessions closed (dry run: that would be closed).
    pub closed: u64,
    pub dry_run: bool,
}

// --------------------------------------------------- user accounting

/// `?from=&to=` of the accounting routes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// Start: a date (`2026-11-01`, from 00:00 UTC) or an RFC 3339 time.
    /// Absent: no lower bound.
    #[param(example = "2026-11-01")]
    pub from: Option<String>,
    /// End: a date (that whole day included) or an RFC 3339 time
    /// (exclusive). Absent: no upper bound. After `from`; the range spans
    /// at most 3660 days.
    #[param(example = "2026-11-30")]
    pub to: Option<String>,
}

/// A network user's RADIUS accounting: one page of sessions (newest
/// first) that started in the range, and usage per day, per month and in
/// all over the same range. Sessions count on the UTC day they started.
#[utoipa::path(
    get,
    path = "/users/{id}/accounting",
    tag = "radius",
    operation_id = "get_user_accounting",
    params(("id" = i32, Path, description = "The network user's id."), RangeQuery, PageParams),
    responses(
        (status = 200, description = "The user's sessions and usage.", body = UserAccounting,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages of sessions.")),
            example = json!({"user_id": 7, "username": "alice@isp.example",
                "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z",
                "totals": {"sessions": 1, "input_octets": 5000000000_i64, "output_octets": 81920,
                    "total_octets": 5000081920_i64, "session_time_secs": 3700},
                "daily": [{"day": "2026-11-28", "sessions": 1, "input_octets": 5000000000_i64,
                    "output_octets": 81920, "total_octets": 5000081920_i64, "session_time_secs": 3700}],
                "monthly": [{"month": "2026-11", "sessions": 1, "input_octets": 5000000000_i64,
                    "output_octets": 81920, "total_octets": 5000081920_i64, "session_time_secs": 3700}],
                "sessions": {"data": [{"radacctid": 42, "acct_session_id": "81a00003",
                    "acct_unique_id": "4f2c0d9e1b7a6c55", "username": "alice@isp.example",
                    "nas_ip": "192.0.2.1", "nas_port_id": "pppoe-in1", "framed_ip": "100.64.0.7",
                    "calling_station_id": "AA:BB:CC:DD:EE:FF", "started_at": "2026-11-28T08:00:00Z",
                    "updated_at": "2026-11-28T09:01:40Z", "stopped_at": "2026-11-28T09:01:40Z",
                    "open": false, "duration_secs": 3700, "session_time_secs": 3700,
                    "interval_secs": 300, "last_update_age_secs": null,
                    "input_octets": 5000000000_i64, "output_octets": 81920,
                    "terminate_cause": "User-Request"}],
                    "meta": {"total": 1, "page": 1, "per_page": 50}}})),
        (status = 422, description = "`from` or `to` is not a date or time, `to` is not after `from`, or a page parameter is out of range.",
            body = crate::api::docs::ErrorBody,
            example = json!({"error": {"code": "validation_failed",
                "message": "from: \"yesterday\" is not a date such as 2026-11-01 or a time such as 2026-11-01T10:30:00Z (years 1970 to 9998)",
                "fields": {"from": "\"yesterday\" is not a date such as 2026-11-01 or a time such as 2026-11-01T10:30:00Z (years 1970 to 9998)"}}})),
    ),
)]
pub async fn user_accounting(
    api: Api<Viewer>,
    OriginalUri(uri): OriginalUri,
    ApiPath(id): ApiPath<i32>,
    ApiQuery(range): ApiQuery<RangeQuery>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Response, AppError> {
    let user = crate::users::service::get_user(api.db(), id).await?;
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let range = DateRange::parse(range.from.as_deref(), range.to.as_deref(), &mut errors);
    check(errors)?;
    let data =
        accounting::get_accounting_data(&api.state.db.radius, &user.username, &range, page).await?;
    let now = Utc::now();
    let link = link_header(&uri, page, data.total_sessions);
    let body = UserAccounting {
        user_id: user.id,
        username: user.username,
        from: range.from,
        to: range.to,
        totals: data.totals.into(),
        daily: data.daily.into_iter().map(Into::into).collect(),
        monthly: data.monthly.into_iter().map(Into::into).collect(),
        sessions: Page {
            data: data
                .sessions
                .into_iter()
                .map(|s| SessionView::of(s, now))
                .collect(),
            meta: PageMeta {
                total: data.total_sessions,
                page: page.page,
                per_page: page.per_page,
            },
        },
    };
    let mut response = Json(body).into_response();
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

// ------------------------------------------------------------ online

/// Filters and order of `GET /radius/online`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OnlineQuery {
    /// Part of the username, the framed IP address or the MAC address
    /// (Calling-Station-Id, with or without separators), any case.
    #[param(example = "alice")]
    pub q: Option<String>,
    /// Only sessions on this NAS (its IP address).
    #[param(example = "192.0.2.1")]
    pub nas: Option<String>,
    /// `-started` (default, newest first), `started`, `username`,
    /// `last_update` (longest without an update first) or `nas`.
    #[param(example = "-started")]
    pub sort: Option<String>,
}

/// Who is online: the open RADIUS sessions (radacct rows without a stop
/// time), with the age of their last accounting update.
#[utoipa::path(
    get,
    path = "/radius/online",
    tag = "radius",
    operation_id = "list_online_sessions",
    params(PageParams, OnlineQuery),
    responses(
        (status = 200, description = "One page of open sessions.", body = Page<SessionView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"radacctid": 42, "acct_session_id": "81a00003",
                "acct_unique_id": "4f2c0d9e1b7a6c55", "username": "alice@isp.example",
                "nas_ip": "192.0.2.1", "nas_port_id": "pppoe-in1", "framed_ip": "100.64.0.7",
                "calling_station_id": "AA:BB:CC:DD:EE:FF", "started_at": "2026-11-28T08:00:00Z",
                "updated_at": "2026-11-28T09:00:00Z", "stopped_at": null, "open": true,
                "duration_secs": 3720, "session_time_secs": 3600, "interval_secs": 300,
                "last_update_age_secs": 120, "input_octets": 5000000000_i64, "output_octets": 81920,
                "terminate_cause": null}], "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn list_online(
    api: Api<Viewer>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(paging): ApiQuery<PageParams>,
    ApiQuery(query): ApiQuery<OnlineQuery>,
) -> Result<Paged<SessionView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let filter = OnlineFilter::parse(query.q.as_deref(), query.nas.as_deref(), &mut errors);
    let sort = OnlineSort::parse(query.sort.as_deref(), &mut errors);
    check(errors)?;
    let (rows, total) =
        accounting::online_sessions(&api.state.db.radius, &filter, sort, page).await?;
    let now = Utc::now();
    Ok(Paged::new(&uri, page, total, rows).map(|s| SessionView::of(s, now)))
}

// ------------------------------------------------------------- usage

/// Filters of `GET /radius/usage`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Part of the username, any case.
    pub q: Option<String>,
}

/// The accounting report: usage per username over a range (sessions that
/// started in it), most traffic first.
#[utoipa::path(
    get,
    path = "/radius/usage",
    tag = "radius",
    operation_id = "radius_usage_report",
    params(RangeQuery, UsageQuery, PageParams),
    responses(
        (status = 200, description = "One page of usernames with their usage.", body = Page<UserUsageView>,
            headers(("Link" = String, description = "RFC 8288 links to the first, previous, next and last pages.")),
            example = json!({"data": [{"username": "alice@isp.example", "sessions": 3,
                "input_octets": 5000000000_i64, "output_octets": 12000000000_i64,
                "total_octets": 17000000000_i64, "session_time_secs": 86400}],
                "meta": {"total": 1, "page": 1, "per_page": 50}})),
    ),
)]
pub async fn usage_report(
    api: Api<Viewer>,
    OriginalUri(uri): OriginalUri,
    ApiQuery(range): ApiQuery<RangeQuery>,
    ApiQuery(query): ApiQuery<UsageQuery>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Paged<UserUsageView>, AppError> {
    let mut errors = FieldErrors::new();
    let page = paging.validate(&mut errors);
    let range = DateRange::parse(range.from.as_deref(), range.to.as_deref(), &mut errors);
    let q = filters::text("q", query.q.as_deref(), 100, &mut errors);
    check(errors)?;
    let (rows, total) =
        accounting::usage_by_user(&api.state.db.radius, &range, q.as_deref(), Some(page)).await?;
    Ok(Paged::new(&uri, page, total, rows).map(UserUsageView::from))
}

// -------------------------------------------------------------- stale

/// Options of `POST /radius/close-stale`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CloseStaleQuery {
    /// `true`: count the stale sessions, write nothing.
    #[param(value_type = Option<bool>, example = false)]
    pub dry_run: Option<String>,
    /// The interim interval assumed for sessions whose row has none, in
    /// seconds (60 to 86400); default 300, the Acct-Interim-Interval ispd
    /// sends.
    #[param(value_type = Option<i64>, minimum = 60, maximum = 86400, example = 300)]
    pub default_interval_secs: Option<String>,
}

/// Reads `--default-interval` / `default_interval_secs`.
pub fn stale_settings(raw: Option<&str>, errors: &mut FieldErrors) -> StaleSettings {
    let mut settings = StaleSettings::default();
    if let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) {
        match text.parse::<i64>() {
            Ok(n) if (60..=86_400).contains(&n) => settings.default_interval_secs = n,
            _ => {
                errors.insert(
                    "default_interval_secs".into(),
                    "must be a whole number of seconds from 60 to 86400".into(),
                );
            }
        }
    }
    settings
}

/// Close stale sessions: open sessions with no accounting update for three
/// interim intervals (the row's `acctinterval`, else
/// `default_interval_secs`; never under 60 s) get `acctstoptime` = their
/// last update and `acctterminatecause` = `Stale-Session`. Safe to repeat
/// and to run concurrently: each session is closed once. The scheduled job
/// `radius-close-stale` and `ispd radius close-stale` do the same.
#[utoipa::path(
    post,
    path = "/radius/close-stale",
    tag = "radius",
    operation_id = "close_stale_sessions",
    params(CloseStaleQuery),
    responses(
        (status = 200, description = "What was closed (or would be, in a dry run).", body = StaleReportView),
    ),
)]
pub async fn close_stale_sessions(
    api: Api<Operator>,
    ApiQuery(query): ApiQuery<CloseStaleQuery>,
) -> Result<Json<StaleReportView>, AppError> {
    let mut errors = FieldErrors::new();
    let dry_run = filters::boolean("dry_run", query.dry_run.as_deref(), &mut errors);
    let settings = stale_settings(query.default_interval_secs.as_deref(), &mut errors);
    check(errors)?;
    let report = accounting::close_stale(
        api.db(),
        &api.state.db.radius,
        &api.actor,
        settings,
        dry_run.unwrap_or(false),
    )
    .await?;
    Ok(Json(StaleReportView {
        open_sessions: report.open_sessions,
        closed: report.closed,
        dry_run: report.dry_run,
    }))
}
