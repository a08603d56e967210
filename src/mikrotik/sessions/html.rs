//! The live sessions page: who is connected on each router right now,
//! read live through the connection pool.
//!
//! The list (the `live` block of `mikrotik/sessions.html`) reloads itself
//! every 5 s with htmx (`hx-trigger="every 5s"`), keeping the filters; the
//! rates are the counter differences between two readings. Without
//! JavaScript the page still shows the list as of loading it.
//!
//! Operators and admins see a "Disconnect" button per session: a normal
//! form post with the CSRF token, after a confirmation (`data-confirm`).
//! Viewers see no button, and the handler refuses them anyway.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::{LiveFilter, LiveSessionId, RouterSessions};
use crate::app::AppState;
use crate::error::AppError;
use crate::mikrotik::routeros::mock::format_uptime;
use crate::mikrotik::routers::service::all_routers;
use crate::mikrotik::service::MikrotikError;
use crate::mikrotik::sessions;
use crate::staff::{Operator, Role, Viewer};
use crate::web::flash;
use crate::web::forms::{is_htmx, render_fragment, see_other, with_vary, Staff};
use crate::web::layout::Chrome;

/// The page's routes; merged into the staff router by `web::router`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mikrotik/sessions", get(live_sessions_page))
        .route(
            "/mikrotik/sessions/{id}/disconnect",
            post(disconnect_session),
        )
}

/// More rows than this make the page slow to swap every 5 s: the rest is
/// left out, with a note to search or filter.
pub const MAX_ROWS: usize = 500;

#[derive(Debug, Default, Deserialize)]
pub struct LiveQuery {
    pub router_id: Option<String>,
    pub q: Option<String>,
}

pub struct RouterChoice {
    pub id: i32,
    pub name: String,
    pub selected: bool,
}

/// One router's line above the table.
pub struct RouterLine {
    pub name: String,
    pub ok: bool,
    pub sessions: usize,
    pub error: String,
    /// "Retrying in 10 s (3 failures in a row)" while backed off.
    pub backoff: String,
}

pub struct SessionRow {
    pub id: String,
    pub router: String,
    pub username: String,
    pub address: String,
    pub caller_id: String,
    pub uptime: String,
    pub download: String,
    pub upload: String,
    pub download_rate: String,
    pub upload_rate: String,
}

/// The part htmx reloads.
pub struct Live {
    pub refresh_href: String,
    /// The filters, for the disconnect forms to come back to.
    pub filter_router: String,
    pub filter_q: String,
    pub can_disconnect: bool,
    pub csrf_token: String,
    pub problem: Option<String>,
    pub no_routers: bool,
    pub filtered: bool,
    pub routers: Vec<RouterLine>,
    pub rows: Vec<SessionRow>,
    pub total: usize,
    pub read_at: String,
}

impl Live {
    pub fn truncated(&self) -> bool {
        self.total > self.rows.len()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "mikrotik/sessions.html")]
pub struct LiveSessionsPage {
    chrome: Chrome,
    q: String,
    router_options: Vec<RouterChoice>,
    live: Live,
}

#[derive(Template)]
#[template(path = "mikrotik/sessions.html", block = "live")]
pub struct LiveFragment {
    live: Live,
}

/// 1536 -> "1.5 KiB".
pub fn bytes(value: Option<u64>) -> String {
    let Some(value) = value else {
        return "—".into();
    };
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut amount = value as f64;
    let mut unit = 0;
    while amount >= 1024.0 && unit < UNITS.len() - 1 {
        amount /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{amount:.1} {}", UNITS[unit])
    }
}

/// 320000 -> "320 kbit/s".
pub fn rate(bps: Option<u64>) -> String {
    match bps {
        None => "—".into(),
        Some(b) if b >= 1_000_000_000 => format!("{:.2} Gbit/s", b as f64 / 1e9),
        Some(b) if b >= 1_000_000 => format!("{:.1} Mbit/s", b as f64 / 1e6),
        Some(b) if b >= 1_000 => format!("{} kbit/s", b / 1_000),
        Some(b) => format!("{b} bit/s"),
    }
}

fn href(router_id: Option<i32>, q: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(id) = router_id {
        query.append_pair("router_id", &id.to_string());
    }
    if !q.is_empty() {
        query.append_pair("q", q);
    }
    let query = query.finish();
    if query.is_empty() {
        "/mikrotik/sessions".into()
    } else {
        format!("/mikrotik/sessions?{query}")
    }
}

/// Reads the routers and builds the list; a bad filter becomes a notice.
async fn live(state: &AppState, chrome: &Chrome, query: &LiveQuery) -> Result<Live, AppError> {
    let mut problem = None;
    let LiveFilter { router_id, q } =
        match LiveFilter::parse(query.router_id.as_deref(), query.q.as_deref()) {
            Ok(filter) => filter,
            Err(err) => {
                problem = Some(AppError::from(err).to_string());
                LiveFilter::default()
            }
        };
    let routers = match sessions::live_sessions(
        &state.db.main,
        &state.router_pool,
        &state.session_rates,
        router_id,
    )
    .await
    {
        Ok(routers) => routers,
        Err(MikrotikError::NotFound(message)) => {
            problem = Some(message);
            Vec::new()
        }
        Err(err) => return Err(err.into()),
    };
    let no_routers = routers.is_empty() && router_id.is_none() && problem.is_none();
    let mut lines = Vec::new();
    let mut rows = Vec::new();
    let mut total = 0;
    for RouterSessions {
        router_name,
        state: router_state,
        error,
        pool,
        sessions,
        ..
    } in routers
    {
        let matching: Vec<_> = sessions
            .into_iter()
            .filter(|s| sessions::matches_search(s, &q))
            .collect();
        total += matching.len();
        lines.push(RouterLine {
            name: router_name.clone(),
            ok: router_state == "ok",
            sessions: matching.len(),
            error: error.unwrap_or_default(),
            backoff: match pool.retry_in_secs {
                Some(secs) => format!(
                    "ispd tries it again in {secs} s ({} failure(s) in a row).",
                    pool.consecutive_failures
                ),
                None => String::new(),
            },
        });
        for s in matching {
            if rows.len() >= MAX_ROWS {
                continue;
            }
            rows.push(SessionRow {
                id: s.id,
                router: router_name.clone(),
                username: s.username,
                address: s.address.unwrap_or_else(|| "—".into()),
                caller_id: s.caller_id.unwrap_or_else(|| "—".into()),
                uptime: format_uptime(std::time::Duration::from_secs(s.uptime_secs)),
                download: bytes(s.download_bytes),
                upload: bytes(s.upload_bytes),
                download_rate: rate(s.download_bps),
                upload_rate: rate(s.upload_bps),
            });
        }
    }
    Ok(Live {
        refresh_href: href(router_id, &q),
        filter_router: router_id.map(|id| id.to_string()).unwrap_or_default(),
        filter_q: q.clone(),
        can_disconnect: chrome.can(Role::Operator),
        csrf_token: chrome.csrf_token.clone(),
        problem,
        no_routers,
        filtered: router_id.is_some() || !q.is_empty(),
        routers: lines,
        rows,
        total,
        read_at: chrono::Utc::now().format("%H:%M:%S UTC").to_string(),
    })
}

pub async fn live_sessions_page(
    staff: Staff<Viewer>,
    headers: HeaderMap,
    Query(query): Query<LiveQuery>,
) -> Result<Response, AppError> {
    let chrome = staff.chrome().await?;
    let live = live(&staff.state, &chrome, &query).await?;
    if is_htmx(&headers) {
        return render_fragment(StatusCode::OK, &LiveFragment { live });
    }
    let selected = query
        .router_id
        .as_deref()
        .and_then(|id| id.trim().parse::<i32>().ok());
    let router_options = all_routers(staff.db())
        .await?
        .into_iter()
        .map(|r| RouterChoice {
            selected: Some(r.id) == selected,
            id: r.id,
            name: r.name,
        })
        .collect();
    let page = LiveSessionsPage {
        chrome: chrome.at("live-sessions", "Live Sessions"),
        q: query.q.clone().unwrap_or_default(),
        router_options,
        live,
    };
    Ok(with_vary(page.into_response()))
}

#[derive(Debug, Default, Deserialize)]
pub struct DisconnectForm {
    /// Where to go back to: the list with its filters.
    #[serde(default)]
    pub router_id: String,
    #[serde(default)]
    pub q: String,
}

/// Disconnects one session (operators and admins), then back to the list
/// with a message. A session already gone, or a router that cannot be
/// reached, is a message on the list, not an error page.
pub async fn disconnect_session(
    staff: Staff<Operator>,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<DisconnectForm>,
) -> Result<Response, AppError> {
    let back = href(form.router_id.trim().parse().ok(), form.q.trim());
    let failed = match LiveSessionId::parse(&id) {
        Err(message) => message,
        Ok(id) => {
            let routers = &staff.state.router_pool;
            match sessions::disconnect(staff.db(), routers, &staff.actor, &id).await {
                Ok(done) => {
                    let message = format!(
                        "Disconnected “{}” from {}.",
                        done.username, done.router_name
                    );
                    return Ok(staff.done(message, back).await);
                }
                Err(err @ MikrotikError::NotFound(_)) => err.to_string(),
                Err(err) if err.is_router_error() => format!("Not disconnected: {err}"),
                Err(err) => return Err(err.into()),
            }
        }
    };
    flash::push(&staff.session, "error", failed).await;
    Ok(see_other(back))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates_read_like_people_write_them() {
        assert_eq!(bytes(None), "—");
        assert_eq!(bytes(Some(512)), "512 B");
        assert_eq!(bytes(Some(1536)), "1.5 KiB");
        assert_eq!(bytes(Some(5 * 1024 * 1024 * 1024)), "5.0 GiB");
        assert_eq!(rate(None), "—");
        assert_eq!(rate(Some(999)), "999 bit/s");
        assert_eq!(rate(Some(320_000)), "320 kbit/s");
        assert_eq!(rate(Some(40_000_000)), "40.0 Mbit/s");
        assert_eq!(rate(Some(2_500_000_000)), "2.50 Gbit/s");
    }

    #[test]
    fn links_keep_the_filters() {
        assert_eq!(href(None, ""), "/mikrotik/sessions");
        assert_eq!(
            href(Some(3), "a b&c"),
            "/mikrotik/sessions?router_id=3&q=a+b%26c"
        );
    }
}
