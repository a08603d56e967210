//! `GET /metrics`: the request metrics of [`crate::web::metrics`], then
//! the dashboard's figures ([`super::figures`]) as gauges: pool
//! utilization, sessions online, routers and network users by status, the
//! last run of each job, today's traffic and the session changes of
//! enforcement not applied yet. When the RADIUS database
//! cannot be read, the gauges derived from it are left out (and
//! `ispd_radius_database_readable` is 0); when the main database cannot be
//! read, only the request metrics are served.
//!
//! Scraping needs the same credentials as the API: give Prometheus a
//! viewer token (`ispd token create --name prometheus --role viewer`) as
//! `authorization: { credentials: ... }` of its scrape config.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::DashboardFigures;
use crate::app::AppState;
use crate::web::metrics::escape;

/// `GET /metrics`, for any API token or signed-in staff member.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(_caller: crate::api::auth::ApiCaller, State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render();
    match super::figures(&state.db.main, &state.db.radius, chrono::Utc::now()).await {
        Ok(figures) => text.push_str(&render_figures(&figures)),
        Err(err) => {
            tracing::warn!(error = %err, "the dashboard gauges could not be read for /metrics");
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// One gauge: its HELP and TYPE lines, then one sample per labelled value.
struct Gauge<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl<'a> Gauge<'a> {
    fn new(out: &'a mut String, name: &'static str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        Self { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) -> &mut Self {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        if labels.is_empty() {
            let _ = writeln!(self.out, "{} {value}", self.name);
        } else {
            let _ = writeln!(self.out, "{}{{{}}} {value}", self.name, labels.join(","));
        }
        self
    }
}

/// The dashboard's figures as Prometheus gauges.
pub fn render_figures(figures: &DashboardFigures) -> String {
    let mut out = String::new();

    let mut g = Gauge::new(
        &mut out,
        "ispd_pool_utilization_ratio",
        "Active allocations over usable addresses of each IP pool (0 to 1).",
    );
    for pool in &figures.pools {
        g.sample(&[("pool", &pool.name)], pool.ratio());
    }
    let mut g = Gauge::new(
        &mut out,
        "ispd_pool_addresses_used",
        "Active allocations in each IP pool.",
    );
    for pool in &figures.pools {
        g.sample(&[("pool", &pool.name)], pool.used);
    }
    let mut g = Gauge::new(
        &mut out,
        "ispd_pool_addresses_total",
        "Usable addresses of each IP pool (less network, broadcast and gateway addresses).",
    );
    for pool in &figures.pools {
        g.sample(&[("pool", &pool.name)], pool.total);
    }

    Gauge::new(
        &mut out,
        "ispd_radius_database_readable",
        "1 when the RADIUS database answered this scrape, else 0 (and the RADIUS gauges are left out).",
    )
    .sample(&[], u8::from(figures.radius.is_some()));
    let mut g = Gauge::new(
        &mut out,
        "ispd_online_sessions",
        "Sessions online: open RADIUS accounting sessions (source radius), and PPP sessions the routers reported at their last sync (source router).",
    );
    if let Some(radius) = &figures.radius {
        g.sample(&[("source", "radius")], radius.online_now);
    }
    g.sample(&[("source", "router")], figures.router_sessions);

    let mut g = Gauge::new(
        &mut out,
        "ispd_routers",
        "MikroTik routers by the status of their last test or check.",
    );
    for (status, n) in figures.routers.by_status() {
        g.sample(&[("status", status)], n);
    }

    let mut g = Gauge::new(&mut out, "ispd_network_users", "Network users by status.");
    for (status, n) in &figures.users.by_status {
        g.sample(&[("status", status)], n);
    }
    Gauge::new(
        &mut out,
        "ispd_radius_sync_pending",
        "Network users whose RADIUS rows await a sync.",
    )
    .sample(&[], figures.users.sync_pending);

    let mut g = Gauge::new(
        &mut out,
        "ispd_job_last_run_timestamp_seconds",
        "When the latest finished run of each job finished, in Unix seconds (jobs that have never finished a run are left out).",
    );
    for job in &figures.jobs {
        if let Some(finished) = job.last_run.as_ref().and_then(|r| r.finished_at) {
            g.sample(&[("job", job.name)], finished.timestamp());
        }
    }
    let mut g = Gauge::new(
        &mut out,
        "ispd_job_last_run_success",
        "1 when the latest finished run of each job succeeded, 0 when it failed or timed out.",
    );
    for job in &figures.jobs {
        if let Some(run) = &job.last_run {
            g.sample(&[("job", job.name)], u8::from(run.succeeded()));
        }
    }

    Gauge::new(
        &mut out,
        "ispd_enforcement_unconfirmed",
        "Session changes of enforcement (suspend, resume, expiry) not confirmed within 5 minutes, plus those given up in the last 24 hours.",
    )
    .sample(&[], figures.enforcement_unconfirmed);

    if let Some(radius) = &figures.radius {
        Gauge::new(
            &mut out,
            "ispd_traffic_today_bytes",
            "Octets of the RADIUS sessions active today (UTC), whole sessions: download is what the NAS sent to subscribers, upload what it received.",
        )
        .sample(
            &[("direction", "download")],
            radius.traffic_today.download_octets,
        )
        .sample(&[("direction", "upload")], radius.traffic_today.upload_octets);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::*;

    #[test]
    fn figures_become_gauges_with_escaped_labels() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let figures = DashboardFigures {
            computed_at: at,
            pools: vec![PoolFigure {
                id: 1,
                name: "a \"b\"\\c\nd".into(),
                used: 2,
                total: 5,
                percent: 40.0,
            }],
            router_sessions: 4,
            radius: None,
            routers: RouterFigures {
                online: 1,
                offline: 2,
                unknown: 0,
                down: vec![],
            },
            users: UserFigures {
                by_status: vec![("active", 3), ("suspended", 1), ("disabled", 0)],
                sync_pending: 1,
            },
            jobs: vec![
                JobFigure {
                    name: "housekeeping",
                    last_run: Some(LastRun {
                        id: 9,
                        status: "failed".into(),
                        finished_at: Some(at),
                    }),
                },
                JobFigure {
                    name: "ipam-cleanup",
                    last_run: None,
                },
            ],
            enforcement_unconfirmed: 3,
        };
        let text = render_figures(&figures);
        assert!(text.contains("# TYPE ispd_pool_utilization_ratio gauge\n"));
        assert!(
            text.contains("ispd_pool_utilization_ratio{pool=\"a \\\"b\\\"\\\\c\\nd\"} 0.4\n"),
            "{text}"
        );
        assert!(text.contains("ispd_radius_database_readable 0\n"));
        assert!(!text.contains("source=\"radius\""));
        assert!(!text.contains("ispd_traffic_today_bytes{"));
        assert!(text.contains("ispd_online_sessions{source=\"router\"} 4\n"));
        assert!(text.contains("ispd_routers{status=\"offline\"} 2\n"));
        assert!(text.contains("ispd_network_users{status=\"disabled\"} 0\n"));
        assert!(
            text.contains("ispd_job_last_run_timestamp_seconds{job=\"housekeeping\"} 1800000000\n")
        );
        assert!(text.contains("ispd_job_last_run_success{job=\"housekeeping\"} 0\n"));
        assert!(!text.contains("job=\"ipam-cleanup\""));
        assert!(text.contains("# TYPE ispd_enforcement_unconfirmed gauge\n"));
        assert!(text.contains("\nispd_enforcement_unconfirmed 3\n"));
    }
}
