//! RADIUS accounting pages: who is online (refreshed every 5 s with
//! htmx), the usage report with its CSV export, a user's accounting, and
//! the RADIUS panels of the user page.
//!
//! Every handler reads its query, calls [`super::accounting`] (the same
//! functions the API calls) and builds a view. Times are shown in UTC.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use serde::Deserialize;
use tower_sessions::Session;

use super::accounting::{
    self, human_bytes, human_duration, DailyUsage, DateRange, OnlineSort, Session as RadSession,
    Usage, STALE_CAUSE,
};
use super::service::{self as radius, AttrRow};
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::query::{PageRequest, MAX_PER_PAGE};
use crate::staff::Role;
use crate::users::entities::network_user;
use crate::web::account::RequestParts;
use crate::web::auth::SignedIn;
use crate::web::flash;
use crate::web::forms::{is_htmx, path_id, see_other, with_vary};
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, when, Pager};

/// The RADIUS accounting pages; merged into the staff router by
/// `web::router`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/radius/online", get(online_users))
        .route("/radius/close-stale", post(close_stale))
        .route("/radius/accounting", get(accounting_report))
        .route("/radius/accounting.csv", get(export_accounting))
        .route("/users/{id}/accounting", get(user_accounting))
        .route("/users/{id}/accounting.csv", get(export_user_sessions))
}

/// Sessions shown on the user page.
pub const USER_PAGE_SESSIONS: u64 = 10;
/// Days in the user page's usage chart.
pub const CHART_DAYS: i64 = 30;

// ------------------------------------------------------------ helpers

fn text(raw: &Option<String>) -> String {
    raw.as_deref().unwrap_or("").trim().to_string()
}

fn problems(errors: &FieldErrors) -> Option<String> {
    (!errors.is_empty()).then(|| {
        errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn query_string(params: &[(&'static str, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()))
        .finish()
}

fn with_query(path: &str, params: &[(&'static str, String)]) -> String {
    let q = query_string(params);
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{q}")
    }
}

fn render_fragment(template: &impl Template) -> Result<Response, AppError> {
    let html = template
        .render()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("rendering a fragment: {e}")))?;
    Ok(with_vary(Html(html).into_response()))
}

/// One `<option>`.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

// ------------------------------------------------------- session rows

/// A session as the tables show it. It carries what a row action (the
/// Disconnect button) needs: `radacctid`, `acct_session_id`,
/// `acct_unique_id`, `username`, `nas_ip` and `framed_ip`.
pub struct SessionRow {
    pub radacctid: i64,
    pub acct_session_id: String,
    pub acct_unique_id: String,
    pub username: String,
    /// The network user's page, when the username is one of ours.
    pub user_href: Option<String>,
    pub nas_ip: String,
    pub framed_ip: String,
    pub mac: String,
    pub started: String,
    pub stopped: String,
    pub duration: String,
    pub input: String,
    pub output: String,
    pub input_octets: i64,
    pub output_octets: i64,
    pub cause: String,
    pub open: bool,
    /// Closed by ispd's stale-session cleanup.
    pub stale: bool,
    /// Open sessions: time since the last accounting packet.
    pub last_update_age: String,
    /// Open sessions: more than two default intervals without an update.
    pub overdue: bool,
}

fn dash_str(value: &Option<String>) -> String {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .unwrap_or("—")
        .to_string()
}

impl SessionRow {
    pub fn of(s: RadSession, now: DateTime<Utc>, user_href: Option<String>) -> Self {
        let open = s.is_open();
        let age = if open {
            s.last_update_age_secs(now)
        } else {
            None
        };
        let default_interval = accounting::StaleSettings::default().default_interval_secs;
        Self {
            radacctid: s.radacctid,
            user_href,
            nas_ip: if s.nas_ip.is_empty() {
                "—".into()
            } else {
                s.nas_ip.clone()
            },
            framed_ip: dash_str(&s.framed_ip),
            mac: dash_str(&s.calling_station_id),
            started: s
                .started_at
                .as_ref()
                .map(when)
                .unwrap_or_else(|| "—".into()),
            stopped: match &s.stopped_at {
                Some(at) => when(at),
                None => "online".into(),
            },
            duration: s
                .duration_secs(now)
                .map(human_duration)
                .unwrap_or_else(|| "—".into()),
            input: human_bytes(s.input_octets),
            output: human_bytes(s.output_octets),
            input_octets: s.input_octets,
            output_octets: s.output_octets,
            cause: dash_str(&s.terminate_cause),
            stale: s.terminate_cause.as_deref() == Some(STALE_CAUSE),
            open,
            last_update_age: age
                .map(|a| format!("{} ago", human_duration(a)))
                .unwrap_or_else(|| "—".into()),
            overdue: age.is_some_and(|a| a > 2 * default_interval),
            acct_session_id: s.acct_session_id,
            acct_unique_id: s.acct_unique_id,
            username: s.username,
        }
    }
}

/// Links to the network users among these usernames.
async fn user_links(
    main_db: &impl ConnectionTrait,
    usernames: impl Iterator<Item = String>,
) -> Result<HashMap<String, String>, AppError> {
    let mut names: Vec<String> = usernames.filter(|u| !u.is_empty()).collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let found: Vec<(i32, String)> = network_user::Entity::find()
        .select_only()
        .column(network_user::Column::Id)
        .column(network_user::Column::Username)
        .filter(network_user::Column::Username.is_in(names))
        .into_tuple()
        .all(main_db)
        .await?;
    Ok(found
        .into_iter()
        .map(|(id, name)| (name, format!("/users/{id}")))
        .collect())
}

async fn session_rows(
    state: &AppState,
    sessions: Vec<RadSession>,
    link_users: bool,
) -> Result<Vec<SessionRow>, AppError> {
    let links = if link_users {
        user_links(&state.db.main, sessions.iter().map(|s| s.username.clone())).await?
    } else {
        HashMap::new()
    };
    let now = Utc::now();
    Ok(sessions
        .into_iter()
        .map(|s| {
            let href = links.get(&s.username).cloned();
            SessionRow::of(s, now, href)
        })
        .collect())
}

// ------------------------------------------------------------ charts

/// One day's bar: download below, upload stacked on it.
pub struct ChartBar {
    pub x: String,
    pub width: String,
    pub down_y: String,
    pub down_h: String,
    pub up_y: String,
    pub up_h: String,
    /// What a pointer hovering the bar reads.
    pub title: String,
}

/// Daily traffic as a server-drawn SVG bar chart (no JavaScript), with
/// the same figures as text for screen readers.
pub struct UsageChart {
    pub bars: Vec<ChartBar>,
    pub width: u32,
    pub height: u32,
    pub plot_bottom: u32,
    pub first_day: String,
    pub last_day: String,
    pub max_label: String,
    /// The figures in words (the SVG's `<desc>`).
    pub description: String,
    pub empty: bool,
}

impl UsageChart {
    const WIDTH: u32 = 600;
    const HEIGHT: u32 = 160;
    const BOTTOM: u32 = 140;
    const TOP: u32 = 12;

    /// Bars for every day from `first` to `last` (days without usage are
    /// zero).
    pub fn new(days: &[DailyUsage], first: NaiveDate, last: NaiveDate) -> Self {
        let by_day: HashMap<NaiveDate, Usage> = days.iter().map(|d| (d.day, d.usage)).collect();
        let count = ((last - first).num_days() + 1).clamp(1, 400) as usize;
        let all: Vec<(NaiveDate, Usage)> = (0..count)
            .map(|i| {
                let day = first + Duration::days(i as i64);
                (day, by_day.get(&day).copied().unwrap_or_default())
            })
            .collect();
        let max = all
            .iter()
            .map(|(_, u)| u.total_octets())
            .max()
            .unwrap_or(0)
            .max(1);
        let plot = f64::from(Self::BOTTOM - Self::TOP);
        let slot = f64::from(Self::WIDTH) / count as f64;
        let width = (slot * 0.8).max(1.0);
        let mut bars = Vec::with_capacity(count);
        let mut words = Vec::new();
        for (i, (day, usage)) in all.iter().enumerate() {
            let down_h = plot * usage.output_octets.max(0) as f64 / max as f64;
            let up_h = plot * usage.input_octets.max(0) as f64 / max as f64;
            let down_y = f64::from(Self::BOTTOM) - down_h;
            let up_y = down_y - up_h;
            let title = format!(
                "{day}: {} down, {} up, {} session(s)",
                human_bytes(usage.output_octets),
                human_bytes(usage.input_octets),
                usage.sessions
            );
            if usage.sessions > 0 {
                words.push(title.clone());
            }
            bars.push(ChartBar {
                x: format!("{:.1}", i as f64 * slot + (slot - width) / 2.0),
                width: format!("{width:.1}"),
                down_y: format!("{down_y:.1}"),
                down_h: format!("{down_h:.1}"),
                up_y: format!("{up_y:.1}"),
                up_h: format!("{up_h:.1}"),
                title,
            });
        }
        let empty = words.is_empty();
        Self {
            bars,
            width: Self::WIDTH,
            height: Self::HEIGHT,
            plot_bottom: Self::BOTTOM,
            first_day: first.to_string(),
            last_day: last.to_string(),
            max_label: human_bytes(max),
            description: if empty {
                "No traffic in these days.".into()
            } else {
                words.join(". ")
            },
            empty,
        }
    }
}

/// A usage summary as the pages show it.
pub struct UsageRow {
    pub label: String,
    pub sessions: u64,
    pub download: String,
    pub upload: String,
    pub total: String,
    pub time: String,
}

impl UsageRow {
    fn of(label: String, u: &Usage) -> Self {
        Self {
            label,
            sessions: u.sessions,
            download: human_bytes(u.output_octets),
            upload: human_bytes(u.input_octets),
            total: human_bytes(u.total_octets()),
            time: human_duration(u.session_time_secs),
        }
    }
}

// ------------------------------------------------------ online users

#[derive(Debug, Default, Deserialize)]
pub struct OnlineQuery {
    page: Option<String>,
    q: Option<String>,
    nas: Option<String>,
    sort: Option<String>,
}

/// What a Disconnect button in a sessions table needs; `None` for staff
/// who may not disconnect (viewers).
pub struct SessionActions {
    pub csrf_token: String,
    /// Where the form returns to (the page it is on).
    pub back: String,
}

impl SessionActions {
    pub fn for_staff(chrome: &Chrome, back: impl Into<String>) -> Option<SessionActions> {
        chrome.can(Role::Operator).then(|| SessionActions {
            csrf_token: chrome.csrf_token.clone(),
            back: back.into(),
        })
    }
}

/// The online table, refreshed by htmx every 5 s.
pub struct OnlineResults {
    pub rows: Vec<SessionRow>,
    pub pager: Pager,
    pub filtered: bool,
    pub problem: Option<String>,
    /// The URL the refresh polls: this page with the same filters.
    pub refresh_href: String,
    pub refreshed: String,
    pub actions: Option<SessionActions>,
}

#[derive(Template, WebTemplate)]
#[template(path = "radius/online.html")]
pub struct OnlinePage {
    chrome: Chrome,
    q: String,
    nas_options: Vec<Choice>,
    sort_options: Vec<Choice>,
    can_close_stale: bool,
    default_interval_secs: i64,
    results: OnlineResults,
}

#[derive(Template)]
#[template(path = "radius/online.html", block = "results")]
pub struct OnlineFragment {
    results: OnlineResults,
}

const SORT_LABELS: [(&str, &str); 5] = [
    ("-started", "Newest first"),
    ("started", "Oldest first"),
    ("username", "Username"),
    ("last_update", "Longest without update"),
    ("nas", "NAS"),
];

pub async fn online_users(
    _user: SignedIn,
    chrome: Chrome,
    headers: HeaderMap,
    State(state): State<AppState>,
    Query(query): Query<OnlineQuery>,
) -> Result<Response, AppError> {
    let mut errors = FieldErrors::new();
    let filter = super::api::online_filter(query.q.as_deref(), query.nas.as_deref(), &mut errors);
    let sort = OnlineSort::parse(query.sort.as_deref(), &mut errors);
    let page = page_request(&query.page);
    let (sessions, total) =
        accounting::online_sessions(&state.db.radius, &filter, sort, page).await?;
    let rows = session_rows(&state, sessions, true).await?;
    let params = vec![
        ("q", text(&query.q)),
        ("nas", filter.nas.map(|n| n.to_string()).unwrap_or_default()),
        (
            "sort",
            if sort == OnlineSort::default() {
                String::new()
            } else {
                sort.name().to_string()
            },
        ),
    ];
    let mut refresh = params.clone();
    refresh.push(("page", page.page.to_string()));
    let results = OnlineResults {
        filtered: filter.q.is_some() || filter.nas.is_some(),
        pager: Pager::new("/radius/online", params, page.page, total, rows.len())
            .per_page(page.per_page),
        rows,
        problem: problems(&errors),
        refresh_href: with_query("/radius/online", &refresh),
        refreshed: Utc::now().format("%H:%M:%S UTC").to_string(),
        actions: SessionActions::for_staff(&chrome, "/radius/online"),
    };
    if is_htmx(&headers) {
        return render_fragment(&OnlineFragment { results });
    }
    let current_nas = filter.nas.map(|n| n.to_string()).unwrap_or_default();
    let nas_options = accounting::online_nas_addresses(&state.db.radius)
        .await?
        .into_iter()
        .map(|nas| Choice {
            selected: nas == current_nas,
            label: nas.clone(),
            value: nas,
        })
        .collect();
    let sort_options = SORT_LABELS
        .iter()
        .map(|(value, label)| Choice {
            value: value.to_string(),
            label: label.to_string(),
            selected: *value == sort.name(),
        })
        .collect();
    let page = OnlinePage {
        can_close_stale: chrome.can(Role::Operator),
        chrome: chrome.at("online", "Online users"),
        q: text(&query.q),
        nas_options,
        sort_options,
        default_interval_secs: accounting::StaleSettings::default().default_interval_secs,
        results,
    };
    Ok(with_vary(page.into_response()))
}

#[derive(Debug, Default, Deserialize)]
pub struct CloseStaleForm {
    #[serde(default)]
    dry_run: Option<String>,
}

/// Closes stale sessions now (operators and admins), as the scheduled job
/// does, and says how many.
pub async fn close_stale(
    SignedIn(user): SignedIn,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Form(form): Form<CloseStaleForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let dry_run = form.dry_run.as_deref() == Some("true");
    let report = accounting::close_stale(
        &state.db.main,
        &state.db.radius,
        &user.actor(parts.address),
        accounting::StaleSettings::default(),
        dry_run,
    )
    .await?;
    flash::success(&session, report.to_string()).await;
    Ok(see_other("/radius/online".into()))
}

// ------------------------------------------------- accounting report

#[derive(Debug, Default, Deserialize)]
pub struct ReportQuery {
    page: Option<String>,
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub struct ReportUserRow {
    pub username: String,
    pub accounting_href: Option<String>,
    pub usage: UsageRow,
}

#[derive(Template, WebTemplate)]
#[template(path = "radius/accounting.html")]
pub struct ReportPage {
    chrome: Chrome,
    from: String,
    to: String,
    q: String,
    errors: FieldErrors,
    range_text: String,
    totals: UsageRow,
    chart: UsageChart,
    monthly: Vec<UsageRow>,
    rows: Vec<ReportUserRow>,
    pager: Pager,
    csv_href: String,
}

/// The report's range: the form's, else the last 30 days.
fn report_range(
    from: &Option<String>,
    to: &Option<String>,
    errors: &mut FieldErrors,
) -> (DateRange, String, String) {
    let (from_text, to_text) = (text(from), text(to));
    if from_text.is_empty() && to_text.is_empty() {
        let now = Utc::now();
        let range = DateRange::last_days(CHART_DAYS, now);
        let today = now.date_naive();
        return (
            range,
            (today - Duration::days(CHART_DAYS - 1)).to_string(),
            today.to_string(),
        );
    }
    let range = DateRange::parse(Some(&from_text), Some(&to_text), errors);
    (range, from_text, to_text)
}

fn range_text(range: &DateRange) -> String {
    let show = |at: &Option<DateTime<Utc>>| at.as_ref().map(when);
    match (show(&range.from), show(&range.to)) {
        (Some(f), Some(t)) => format!("from {f} to {t}"),
        (Some(f), None) => format!("since {f}"),
        (None, Some(t)) => format!("before {t}"),
        (None, None) => "all time".into(),
    }
}

/// The chart's days: the range's, at most the last 400 of it.
fn chart_days(range: &DateRange, days: &[DailyUsage]) -> (NaiveDate, NaiveDate) {
    let today = Utc::now().date_naive();
    let last = range
        .to
        .map(|t| (t - Duration::seconds(1)).date_naive())
        .or_else(|| days.last().map(|d| d.day))
        .unwrap_or(today);
    let first = range
        .from
        .map(|f| f.date_naive())
        .or_else(|| days.first().map(|d| d.day))
        .unwrap_or(last);
    let first = first.max(last - Duration::days(399));
    (first.min(last), last)
}

pub async fn accounting_report(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, AppError> {
    let mut errors = FieldErrors::new();
    let (range, from, to) = report_range(&query.from, &query.to, &mut errors);
    let q = text(&query.q);
    let page = page_request(&query.page);
    let params = vec![("from", from.clone()), ("to", to.clone()), ("q", q.clone())];
    let csv_href = with_query("/radius/accounting.csv", &params);
    let status = if errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let (days, users, total) = if errors.is_empty() {
        let days = accounting::usage_by_day(&state.db.radius, None, &range).await?;
        let q_filter = (!q.is_empty()).then_some(q.as_str());
        let (users, total) =
            accounting::usage_by_user(&state.db.radius, &range, q_filter, Some(page)).await?;
        (days, users, total)
    } else {
        (Vec::new(), Vec::new(), 0)
    };
    let links = user_links(&state.db.main, users.iter().map(|u| u.username.clone())).await?;
    let (first, last) = chart_days(&range, &days);
    let rows: Vec<ReportUserRow> = users
        .into_iter()
        .map(|u| ReportUserRow {
            accounting_href: links.get(&u.username).map(|h| format!("{h}/accounting")),
            usage: UsageRow::of(u.username.clone(), &u.usage),
            username: u.username,
        })
        .collect();
    let page_view = ReportPage {
        chrome: chrome.at("accounting", "RADIUS Accounting"),
        range_text: range_text(&range),
        totals: UsageRow::of("Total".into(), &accounting::total_of(&days)),
        chart: UsageChart::new(&days, first, last),
        monthly: accounting::months_of(&days)
            .iter()
            .map(|m| UsageRow::of(m.month.clone(), &m.usage))
            .collect(),
        pager: Pager::new("/radius/accounting", params, page.page, total, rows.len())
            .per_page(page.per_page),
        rows,
        from,
        to,
        q,
        errors,
        csv_href,
    };
    Ok((status, page_view).into_response())
}

fn csv_response(filename: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

fn csv_line(out: &mut String, fields: &[String]) {
    let cells: Vec<String> = fields.iter().map(|f| crate::web::csv::cell(f)).collect();
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

/// The usage report as CSV: one line per username, exact octet counts.
pub async fn export_accounting(
    _user: SignedIn,
    State(state): State<AppState>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, AppError> {
    let mut errors = FieldErrors::new();
    let (range, _, _) = report_range(&query.from, &query.to, &mut errors);
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let q = text(&query.q);
    let (users, _) = accounting::usage_by_user(
        &state.db.radius,
        &range,
        (!q.is_empty()).then_some(q.as_str()),
        None,
    )
    .await?;
    let mut out = String::new();
    csv_line(
        &mut out,
        &[
            "username",
            "sessions",
            "download_octets",
            "upload_octets",
            "total_octets",
            "session_time_secs",
        ]
        .map(String::from),
    );
    for u in users {
        csv_line(
            &mut out,
            &[
                u.username.clone(),
                u.usage.sessions.to_string(),
                u.usage.output_octets.to_string(),
                u.usage.input_octets.to_string(),
                u.usage.total_octets().to_string(),
                u.usage.session_time_secs.to_string(),
            ],
        );
    }
    Ok(csv_response("radius-usage.csv", out))
}

// --------------------------------------------------- user accounting

/// A network user's id from the path (spaces around it allowed).
fn user_id(raw: &str) -> Result<i32, AppError> {
    path_id(raw.trim(), format!("there is no network user {raw}"))
}

#[derive(Template, WebTemplate)]
#[template(path = "radius/user_accounting.html")]
pub struct UserAccountingPage {
    chrome: Chrome,
    user_id: i32,
    username: String,
    from: String,
    to: String,
    errors: FieldErrors,
    range_text: String,
    totals: UsageRow,
    chart: UsageChart,
    monthly: Vec<UsageRow>,
    daily: Vec<UsageRow>,
    sessions: Vec<SessionRow>,
    pager: Pager,
    csv_href: String,
    actions: Option<SessionActions>,
}

/// A user's sessions and usage over a range (default the last 30 days).
pub async fn user_accounting(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, AppError> {
    let user = crate::users::service::get_user(&state.db.main, user_id(&id)?).await?;
    let mut errors = FieldErrors::new();
    let (range, from, to) = report_range(&query.from, &query.to, &mut errors);
    let page = page_request(&query.page);
    let params = vec![("from", from.clone()), ("to", to.clone())];
    let (status, data) = if errors.is_empty() {
        (
            axum::http::StatusCode::OK,
            Some(
                accounting::get_accounting_data(&state.db.radius, &user.username, &range, page)
                    .await?,
            ),
        )
    } else {
        (axum::http::StatusCode::UNPROCESSABLE_ENTITY, None)
    };
    let (sessions, total, daily, monthly, totals) = match data {
        Some(d) => (d.sessions, d.total_sessions, d.daily, d.monthly, d.totals),
        None => (Vec::new(), 0, Vec::new(), Vec::new(), Usage::default()),
    };
    let (first, last) = chart_days(&range, &daily);
    let sessions = session_rows(&state, sessions, false).await?;
    let page_view = UserAccountingPage {
        actions: SessionActions::for_staff(&chrome, format!("/users/{}/accounting", user.id)),
        chrome: chrome.at("users", format!("Accounting of {}", user.username)),
        user_id: user.id,
        csv_href: with_query(&format!("/users/{}/accounting.csv", user.id), &params),
        username: user.username,
        range_text: range_text(&range),
        totals: UsageRow::of("Total".into(), &totals),
        chart: UsageChart::new(&daily, first, last),
        monthly: monthly
            .iter()
            .map(|m| UsageRow::of(m.month.clone(), &m.usage))
            .collect(),
        daily: daily
            .iter()
            .rev()
            .map(|d| UsageRow::of(d.day.to_string(), &d.usage))
            .collect(),
        pager: Pager::new(
            format!("/users/{}/accounting", user.id),
            params,
            page.page,
            total,
            sessions.len(),
        )
        .per_page(page.per_page),
        sessions,
        from,
        to,
        errors,
    };
    Ok((status, page_view).into_response())
}

/// A user's sessions in the range as CSV, exact octet counts.
pub async fn export_user_sessions(
    _user: SignedIn,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, AppError> {
    let user = crate::users::service::get_user(&state.db.main, user_id(&id)?).await?;
    let mut errors = FieldErrors::new();
    let (range, _, _) = report_range(&query.from, &query.to, &mut errors);
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let mut out = String::new();
    csv_line(
        &mut out,
        &[
            "radacctid",
            "acct_session_id",
            "started_at",
            "stopped_at",
            "duration_secs",
            "download_octets",
            "upload_octets",
            "framed_ip",
            "nas_ip",
            "calling_station_id",
            "terminate_cause",
        ]
        .map(String::from),
    );
    let now = Utc::now();
    let mut page = 1;
    loop {
        let request = PageRequest {
            page,
            per_page: MAX_PER_PAGE,
        };
        let (sessions, total) =
            accounting::user_sessions(&state.db.radius, &user.username, &range, request).await?;
        for s in &sessions {
            csv_line(
                &mut out,
                &[
                    s.radacctid.to_string(),
                    s.acct_session_id.clone(),
                    s.started_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    s.stopped_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    s.duration_secs(now)
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    s.output_octets.to_string(),
                    s.input_octets.to_string(),
                    s.framed_ip.clone().unwrap_or_default(),
                    s.nas_ip.clone(),
                    s.calling_station_id.clone().unwrap_or_default(),
                    s.terminate_cause.clone().unwrap_or_default(),
                ],
            );
        }
        if sessions.is_empty() || page * MAX_PER_PAGE >= total {
            break;
        }
        page += 1;
    }
    let safe: String = user
        .username
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    Ok(csv_response(&format!("sessions-{safe}.csv"), out))
}

// ------------------------------------------------- user page panels

/// One `attribute op value` row; a password's value is masked.
pub struct AttrView {
    pub attribute: String,
    pub op: String,
    pub value: String,
}

impl AttrView {
    fn of(row: &AttrRow) -> Self {
        Self {
            attribute: row.attribute.clone(),
            op: row.op.clone(),
            value: if row.is_password() {
                "••••••••".into()
            } else {
                row.value.clone()
            },
        }
    }
}

/// A group of the user, with its rows.
pub struct GroupView {
    pub name: String,
    pub priority: i32,
    pub check: Vec<AttrView>,
    pub reply: Vec<AttrView>,
}

/// The RADIUS panels of the user page: the rows FreeRADIUS will read for
/// this user, and the latest sessions with a usage chart.
pub struct UserRadiusPanels {
    pub user_id: i32,
    pub check: Vec<AttrView>,
    pub reply: Vec<AttrView>,
    pub groups: Vec<GroupView>,
    /// The package's group when radusergroup does not name it (not synced).
    pub expected_group: Option<String>,
    pub no_rows: bool,
    pub sessions: Vec<SessionRow>,
    pub total_sessions: u64,
    pub chart: UsageChart,
    pub chart_totals: UsageRow,
    pub accounting_href: String,
    /// Set by the user page for staff who may disconnect.
    pub actions: Option<SessionActions>,
}

/// Reads what the user page's RADIUS panels show. `package_group` is the
/// RADIUS group of the user's package, if any.
pub async fn user_panels(
    state: &AppState,
    user_id: i32,
    username: &str,
    package_group: Option<&str>,
) -> Result<UserRadiusPanels, AppError> {
    let db = &state.db.radius;
    let rows = radius::current_user_rows(db, username).await?;
    let mut groups = Vec::new();
    for (name, priority) in &rows.groups {
        let group = radius::current_group_rows(db, name).await?;
        groups.push(GroupView {
            name: name.clone(),
            priority: *priority,
            check: group.check.iter().map(AttrView::of).collect(),
            reply: group.reply.iter().map(AttrView::of).collect(),
        });
    }
    let expected_group = package_group
        .filter(|g| !rows.groups.iter().any(|(name, _)| name == g))
        .map(str::to_string);
    let now = Utc::now();
    let range = DateRange::last_days(CHART_DAYS, now);
    let (sessions, total_sessions) = accounting::user_sessions(
        db,
        username,
        &DateRange::default(),
        PageRequest {
            page: 1,
            per_page: USER_PAGE_SESSIONS,
        },
    )
    .await?;
    let days = accounting::usage_by_day(db, Some(username), &range).await?;
    let today = now.date_naive();
    Ok(UserRadiusPanels {
        user_id,
        no_rows: rows.is_empty(),
        check: rows.check.iter().map(AttrView::of).collect(),
        reply: rows.reply.iter().map(AttrView::of).collect(),
        groups,
        expected_group,
        sessions: session_rows(state, sessions, false).await?,
        total_sessions,
        chart: UsageChart::new(&days, today - Duration::days(CHART_DAYS - 1), today),
        chart_totals: UsageRow::of(
            format!("Last {CHART_DAYS} days"),
            &accounting::total_of(&days),
        ),
        accounting_href: format!("/users/{user_id}/accounting"),
        actions: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_a_bar_per_day_scaled_to_the_busiest() {
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        let days = vec![DailyUsage {
            day: day("2026-11-03"),
            usage: Usage {
                sessions: 2,
                input_octets: 1_000,
                output_octets: 3_000,
                session_time_secs: 60,
            },
        }];
        let chart = UsageChart::new(&days, day("2026-11-01"), day("2026-11-04"));
        assert_eq!(chart.bars.len(), 4);
        assert!(!chart.empty);
        // The busiest day fills the plot: 128 units, 3/4 of them download.
        assert_eq!(chart.bars[2].down_h, "96.0");
        assert_eq!(chart.bars[2].up_h, "32.0");
        assert_eq!(chart.bars[0].down_h, "0.0");
        assert!(chart.description.contains("2026-11-03: 3.00 kB down"));
        let empty = UsageChart::new(&[], day("2026-11-01"), day("2026-11-01"));
        assert!(empty.empty);
    }

    #[test]
    fn passwords_are_masked_in_the_radius_panel() {
        let row = AttrRow::set(radius::CLEARTEXT_PASSWORD, "hunter2");
        assert_eq!(AttrView::of(&row).value, "••••••••");
        let other = AttrRow::set("Framed-IP-Address", "10.0.0.1");
        assert_eq!(AttrView::of(&other).value, "10.0.0.1");
    }
}
