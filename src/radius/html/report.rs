//! The accounting report: usage per user over a date range.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};

use serde::Deserialize;

use super::super::accounting::{self, DailyUsage, DateRange};
use super::charts::{UsageChart, UsageRow};
use super::rows::user_links;
use super::{text, with_query, CHART_DAYS};
use crate::error::{AppError, FieldErrors};
use crate::staff::Viewer;
use crate::web::csv;
use crate::web::forms::Staff;
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, when, Pager};

#[derive(Debug, Default, Deserialize)]
pub struct ReportQuery {
    pub(super) page: Option<String>,
    q: Option<String>,
    pub(super) from: Option<String>,
    pub(super) to: Option<String>,
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
pub(super) fn report_range(
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

pub(super) fn range_text(range: &DateRange) -> String {
    let show = |at: &Option<DateTime<Utc>>| at.as_ref().map(when);
    match (show(&range.from), show(&range.to)) {
        (Some(f), Some(t)) => format!("from {f} to {t}"),
        (Some(f), None) => format!("since {f}"),
        (None, Some(t)) => format!("before {t}"),
        (None, None) => "all time".into(),
    }
}

/// The chart's days: the range's, at most the last 400 of it.
pub(super) fn chart_days(range: &DateRange, days: &[DailyUsage]) -> (NaiveDate, NaiveDate) {
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
    staff: Staff<Viewer>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, AppError> {
    let chrome = staff.chrome().await?;
    let state = &staff.state;
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

/// The usage report as CSV: one line per username, exact octet counts.
pub async fn export_accounting(
    staff: Staff<Viewer>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, AppError> {
    let state = &staff.state;
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
    csv::line(
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
        csv::line(
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
    Ok(csv::download("radius-usage.csv", out))
}
