//! The online users page, refreshed by htmx, with its filters and sorts.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use chrono::Utc;
use serde::Deserialize;

use super::super::accounting::{self, OnlineFilter, OnlineSort};
use super::rows::{session_rows, SessionRow};
use super::{problems, text, with_query};
use crate::error::{AppError, FieldErrors};
use crate::staff::{Operator, Role, Viewer};
use crate::web::forms::{is_htmx, render_fragment, with_vary, Choice, Staff};
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, Pager};

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
    staff: Staff<Viewer>,
    headers: HeaderMap,
    Query(query): Query<OnlineQuery>,
) -> Result<Response, AppError> {
    let chrome = staff.chrome().await?;
    let state = &staff.state;
    let mut errors = FieldErrors::new();
    let filter = OnlineFilter::parse(query.q.as_deref(), query.nas.as_deref(), &mut errors);
    let sort = OnlineSort::parse(query.sort.as_deref(), &mut errors);
    let page = page_request(&query.page);
    let (sessions, total) =
        accounting::online_sessions(&state.db.radius, &filter, sort, page).await?;
    let rows = session_rows(state, sessions, true).await?;
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
        return render_fragment(StatusCode::OK, &OnlineFragment { results });
    }
    let current_nas = filter.nas.map(|n| n.to_string()).unwrap_or_default();
    let nas_options = accounting::online_nas_addresses(&state.db.radius)
        .await?
        .into_iter()
        .map(|nas| Choice::new(nas.clone(), nas, &current_nas))
        .collect();
    let sort_options = SORT_LABELS
        .iter()
        .map(|(value, label)| Choice::new(*value, *label, sort.name()))
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
    staff: Staff<Operator>,
    Form(form): Form<CloseStaleForm>,
) -> Result<Response, AppError> {
    let dry_run = form.dry_run.as_deref() == Some("true");
    let report = accounting::close_stale(
        staff.db(),
        &staff.state.db.radius,
        &staff.actor,
        accounting::StaleSettings::default(),
        dry_run,
    )
    .await?;
    Ok(staff.done(report.to_string(), "/radius/online").await)
}
