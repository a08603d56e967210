//! One user's accounting page: sessions, usage per day and month.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::super::accounting::{self, Usage};
use super::charts::{UsageChart, UsageRow};
use super::online::SessionActions;
use super::report::{chart_days, range_text, report_range, ReportQuery};
use super::rows::{session_rows, SessionRow};
use super::with_query;
use crate::error::{AppError, FieldErrors};
use crate::query::{PageRequest, MAX_PER_PAGE};
use crate::staff::Viewer;
use crate::web::csv;
use crate::web::forms::{path_id, Staff};
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, Pager};

/// A network user's id from the path (spaces around it allowed).
pub(super) fn user_id(raw: &str) -> Result<i32, AppError> {
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
    staff: Staff<Viewer>,
    Path(id): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, AppError> {
    let chrome = staff.chrome().await?;
    let state = &staff.state;
    let user = crate::users::service::get_user(staff.db(), user_id(&id)?).await?;
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
    let sessions = session_rows(state, sessions, false).await?;
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
    staff: Staff<Viewer>,
    Path(id): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, AppError> {
    let state = &staff.state;
    let user = crate::users::service::get_user(staff.db(), user_id(&id)?).await?;
    let mut errors = FieldErrors::new();
    let (range, _, _) = report_range(&query.from, &query.to, &mut errors);
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let mut out = String::new();
    csv::line(
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
            csv::line(
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
    Ok(csv::download(&format!("sessions-{safe}.csv"), out))
}
