//! `/metrics` in the Prometheus text format: request counts and latency
//! histograms per matched route, method and status.
//!
//! A small registry of our own: one mutex-guarded map, touched once per
//! request, rendered on scrape. Routes are labelled by their template
//! (`/api/v1/tokens/{id}`), never by the raw path, so that the number of
//! series stays bounded; requests that matched no route share the label
//! `unmatched`.
//!
//! Each scrape also reads the dashboard's figures
//! ([`crate::dashboard::figures`]) and appends them as gauges: pool
//! utilization, sessions online, routers and network users by status, the
//! last run of each job and today's traffic. When the RADIUS database
//! cannot be read, the gauges derived from it are left out (and
//! `ispd_radius_database_readable` is 0); when the main database cannot be
//! read, only the request metrics are served.
//!
//! Scraping needs the same credentials as the API: give Prometheus a
//! viewer token (`ispd token create --name prometheus --role viewer`) as
//! `authorization: { credentials: ... }` of its scrape config.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::app::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SeriesKey {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Default, Clone)]
struct Series {
    count: u64,
    sum_seconds: f64,
    /// Per bucket, not cumulative; cumulated when rendered.
    buckets: [u64; BUCKETS.len()],
}

#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<SeriesKey, Series>>,
}

/// The route template of a matched request, carried from the inside of the
/// router (where it is known) to the outer layer that measures.
#[derive(Debug, Clone)]
struct RouteLabel(MatchedPath);

impl Metrics {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn observe(&self, route: &str, method: &Method, status: u16, seconds: f64) {
        let key = SeriesKey {
            route: route.to_string(),
            method: method_label(method),
            status,
        };
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let entry = series.entry(key).or_default();
        entry.count += 1;
        entry.sum_seconds += seconds;
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            entry.buckets[i] += 1;
        }
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        let series = self
            .series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut out = String::new();
        out.push_str("# HELP ispd_build_info The running version of ispd.\n");
        out.push_str("# TYPE ispd_build_info gauge\n");
        let _ = writeln!(
            out,
            "ispd_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out.push_str(
            "# HELP ispd_http_requests_total HTTP requests answered, by route template, method and status.\n",
        );
        out.push_str("# TYPE ispd_http_requests_total counter\n");
        for (key, s) in &series {
            let _ = writeln!(
                out,
                "ispd_http_requests_total{{{}}} {}",
                labels(key),
                s.count
            );
        }
        out.push_str(
            "# HELP ispd_http_request_duration_seconds Time to answer an HTTP request (until the response headers), by route template, method and status.\n",
        );
        out.push_str("# TYPE ispd_http_request_duration_seconds histogram\n");
        for (key, s) in &series {
            let labels = labels(key);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "ispd_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "ispd_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "ispd_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_seconds
            );
            let _ = writeln!(
                out,
                "ispd_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out
    }
}

fn labels(key: &SeriesKey) -> String {
    format!(
        "route=\"{}\",method=\"{}\",status=\"{}\"",
        escape(&key.route),
        key.method,
        key.status
    )
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Methods outside the standard set share one label, so that a client
/// inventing methods cannot create series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Inner half (a route layer): hands the matched route template outwards.
pub async fn label_route(request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(RouteLabel(matched));
    }
    response
}

/// Outer half (a layer around everything): times the request and counts it.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map(|RouteLabel(m)| m.as_str())
        .filter(|route| !route.contains("__private__"))
        .unwrap_or("unmatched");
    metrics.observe(
        route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`, for any API token or signed-in staff member.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(_caller: crate::api::auth::ApiCaller, State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render();
    match crate::dashboard::figures(&state.db.main, &state.db.radius, chrono::Utc::now()).await {
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
pub fn render_figures(figures: &crate::dashboard::DashboardFigures) -> String {
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

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let metrics = Metrics::default();
        metrics.observe("/a", &Method::GET, 200, 0.003);
        metrics.observe("/a", &Method::GET, 200, 0.2);
        metrics.observe("/b\"", &Method::from_bytes(b"BREW").unwrap(), 418, 20.0);
        let text = metrics.render();
        assert!(
            text.contains("ispd_http_requests_total{route=\"/a\",method=\"GET\",status=\"200\"} 2")
        );
        assert!(text.contains(
            "ispd_http_request_duration_seconds_bucket{route=\"/a\",method=\"GET\",status=\"200\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "ispd_http_request_duration_seconds_bucket{route=\"/a\",method=\"GET\",status=\"200\",le=\"0.25\"} 2"
        ));
        assert!(text.contains("route=\"/b\\\"\",method=\"OTHER\",status=\"418\",le=\"10\"} 0"));
        assert!(text.contains("route=\"/b\\\"\",method=\"OTHER\",status=\"418\",le=\"+Inf\"} 1"));
    }

    #[test]
    fn figures_become_gauges_with_escaped_labels() {
        use crate::dashboard::*;
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
    }
}
