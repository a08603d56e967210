//! The dashboard page, and its live panels that htmx fetches again every
//! few seconds.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use chrono::Utc;

use crate::access::SignedIn;
use crate::app::AppState;
use crate::dashboard;
use crate::error::AppError;
use crate::radius::accounting::human_bytes;
use crate::web::layout::Chrome;
use crate::web::listing::when_opt;

/// The dashboard's routes; `app::build_router` merges them into the pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard))
        .route("/dashboard/figures", get(dashboard_figures))
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    chrome: Chrome,
    counts: Vec<(&'static str, u64, &'static str)>,
    /// The last `ispd network health-check`, if one has run.
    health: Option<crate::network::health::HealthReport>,
    figures: FiguresView,
}

/// The live panels alone, which htmx fetches again every few seconds.
#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html", block = "figures")]
pub struct FiguresFragment {
    figures: FiguresView,
}

pub async fn dashboard(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
) -> Result<DashboardPage, AppError> {
    let db = &state.db.main;
    let totals = dashboard::record_counts(db).await?;
    let counts = vec![
        ("IP pools", totals.pools, "/ipam/pools"),
        ("Subnets", totals.subnets, "/ipam/subnets"),
        (
            "Active allocations",
            totals.active_allocations,
            "/ipam/allocations",
        ),
        ("Network users", totals.network_users, "/users"),
        (
            "Router sessions (last sync)",
            totals.router_sessions,
            "/mikrotik/sessions",
        ),
        ("Routers", totals.routers, "/mikrotik/routers"),
    ];
    let figures = dashboard::figures(db, &state.db.radius, Utc::now()).await?;
    Ok(DashboardPage {
        chrome: chrome.at("dashboard", "Dashboard"),
        counts,
        health: crate::network::health::latest(db).await?,
        figures: FiguresView::of(&figures),
    })
}

/// `GET /dashboard/figures`: the live panels, for htmx's refresh.
pub async fn dashboard_figures(
    _user: SignedIn,
    State(state): State<AppState>,
) -> Result<FiguresFragment, AppError> {
    let figures = dashboard::figures(&state.db.main, &state.db.radius, Utc::now()).await?;
    Ok(FiguresFragment {
        figures: FiguresView::of(&figures),
    })
}

/// The live panels, formatted for the template.
pub struct FiguresView {
    updated_at: String,
    /// The fullest pools first, at most [`POOLS_SHOWN`].
    pools: Vec<PoolRow>,
    /// Pools left out of `pools`.
    pools_more: usize,
    router_sessions: u64,
    radius: Option<RadiusView>,
    routers: dashboard::RouterFigures,
    users: Vec<(&'static str, u64)>,
    users_total: u64,
    sync_pending: u64,
    jobs: Vec<JobRow>,
    /// Session changes of enforcement not confirmed in time.
    enforcement_unconfirmed: u64,
}

/// Pools the dashboard lists; the pool list has the others.
const POOLS_SHOWN: usize = 8;

/// A pool's bar turns amber at this utilization and red when full.
const POOL_WARN_PERCENT: f64 = 80.0;

struct PoolRow {
    id: i32,
    name: String,
    used: String,
    total: String,
    percent: String,
    /// The bar's width in the 0-100 box of its SVG.
    bar: String,
    /// ok, warn or full: the bar's colour.
    level: &'static str,
}

struct RadiusView {
    online_now: u64,
    online_day_ago: u64,
    /// `+3`, `-2` or `±0`.
    change: String,
    sparkline: Sparkline,
    today_sessions: u64,
    download: String,
    upload: String,
}

struct JobRow {
    name: &'static str,
    /// succeeded, failed, timed_out, or None before the first run.
    status: Option<String>,
    succeeded: bool,
    finished: String,
}

/// An inline SVG line of the online trend (server-drawn: the page allows
/// no inline script).
pub struct Sparkline {
    pub width: u32,
    pub height: u32,
    /// The `points` of the polyline.
    pub points: String,
    pub peak: u64,
    /// What the line shows, for screen readers and the tooltip.
    pub label: String,
}

impl Sparkline {
    const WIDTH: u32 = 240;
    const HEIGHT: u32 = 48;
    /// Room above and below the line, so that the stroke is not clipped.
    const PAD: f64 = 2.0;

    pub fn of(points: &[dashboard::TrendPoint]) -> Self {
        let peak = points.iter().map(|p| p.online).max().unwrap_or(0);
        let (width, height) = (f64::from(Self::WIDTH), f64::from(Self::HEIGHT));
        let step = if points.len() > 1 {
            width / (points.len() - 1) as f64
        } else {
            0.0
        };
        let drawn: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let x = step * i as f64;
                let share = if peak == 0 {
                    0.0
                } else {
                    p.online as f64 / peak as f64
                };
                let y = height - Self::PAD - share * (height - 2.0 * Self::PAD);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let label = points
            .iter()
            .map(|p| format!("{} {}", p.at.format("%H:%M"), p.online))
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            width: Self::WIDTH,
            height: Self::HEIGHT,
            points: drawn.join(" "),
            peak,
            label: format!("Sessions online (UTC): {label}"),
        }
    }
}

/// A count with thousands separated by a thin space: `12 345`.
fn grouped(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out
}

impl FiguresView {
    fn of(figures: &dashboard::DashboardFigures) -> Self {
        let mut pools: Vec<&dashboard::PoolFigure> = figures.pools.iter().collect();
        pools.sort_by(|a, b| {
            b.percent
                .total_cmp(&a.percent)
                .then_with(|| a.name.cmp(&b.name))
        });
        let pools_more = pools.len().saturating_sub(POOLS_SHOWN);
        let pools = pools
            .into_iter()
            .take(POOLS_SHOWN)
            .map(|p| PoolRow {
                id: p.id,
                name: p.name.clone(),
                used: grouped(p.used),
                total: grouped(p.total),
                percent: format!("{:.1}", p.percent),
                bar: format!("{:.2}", p.percent.clamp(0.0, 100.0)),
                level: if p.total > 0 && p.used >= p.total {
                    "full"
                } else if p.percent >= POOL_WARN_PERCENT {
                    "warn"
                } else {
                    "ok"
                },
            })
            .collect();
        let radius = figures.radius.as_ref().map(|r| {
            let change = r.online_now as i64 - r.online_day_ago() as i64;
            RadiusView {
                online_now: r.online_now,
                online_day_ago: r.online_day_ago(),
                change: match change {
                    0 => "±0".into(),
                    c if c > 0 => format!("+{c}"),
                    c => format!("−{}", c.unsigned_abs()),
                },
                sparkline: Sparkline::of(&r.trend),
                today_sessions: r.traffic_today.sessions,
                download: human_bytes(r.traffic_today.download_octets),
                upload: human_bytes(r.traffic_today.upload_octets),
            }
        });
        let jobs = figures
            .jobs
            .iter()
            .map(|j| JobRow {
                name: j.name,
                status: j.last_run.as_ref().map(|r| r.status.clone()),
                succeeded: j.last_run.as_ref().is_some_and(|r| r.succeeded()),
                finished: j
                    .last_run
                    .as_ref()
                    .map(|r| when_opt(&r.finished_at))
                    .unwrap_or_default(),
            })
            .collect();
        Self {
            updated_at: figures.computed_at.format("%H:%M:%S UTC").to_string(),
            pools,
            pools_more,
            router_sessions: figures.router_sessions,
            radius,
            routers: figures.routers.clone(),
            users: figures.users.by_status.clone(),
            users_total: figures.users.total(),
            sync_pending: figures.users.sync_pending,
            jobs,
            enforcement_unconfirmed: figures.enforcement_unconfirmed,
        }
    }

    fn any_job_ran(&self) -> bool {
        self.jobs.iter().any(|j| j.status.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn point(hour: u32, online: u64) -> dashboard::TrendPoint {
        dashboard::TrendPoint {
            at: Utc.with_ymd_and_hms(2026, 11, 20, hour, 0, 0).unwrap(),
            online,
        }
    }

    #[test]
    fn the_sparkline_spans_the_box_with_the_peak_at_the_top() {
        let line = Sparkline::of(&[point(8, 0), point(10, 4), point(12, 2)]);
        assert_eq!(line.points, "0.0,46.0 120.0,2.0 240.0,24.0");
        assert_eq!(line.peak, 4);
        assert_eq!(
            line.label,
            "Sessions online (UTC): 08:00 0, 10:00 4, 12:00 2"
        );
        let flat = Sparkline::of(&[point(8, 0), point(10, 0)]);
        assert_eq!(
            flat.points, "0.0,46.0 240.0,46.0",
            "nothing online: along the bottom"
        );
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1\u{2009}000");
        assert_eq!(grouped(65_534), "65\u{2009}534");
        assert_eq!(grouped(1_234_567), "1\u{2009}234\u{2009}567");
    }
}
