//! `/metrics` in the Prometheus text format: request counts and latency
//! histograms per matched route, method and status.
//!
//! A small registry of our own: one mutex-guarded map, touched once per
//! request, rendered on scrape. Routes are labelled by their template
//! (`/api/v1/tokens/{id}`), never by the raw path, so that the number of
//! series stays bounded; requests that matched no route share the label
//! `unmatched`.
//!
//! The route itself, which adds the dashboard's figures as gauges, is the
//! dashboard's (`crate::dashboard::metrics`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

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
pub fn escape(value: &str) -> String {
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
}
