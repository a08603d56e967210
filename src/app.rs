//! The application: shared state, the router of every domain, and serving.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, Request};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::crypto::AppKey;
use crate::db::Databases;
use crate::web::assets::Assets;
use crate::web::metrics::Metrics;
use crate::web::rate_limit::RateLimit;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Databases,
    pub app_key: AppKey,
    pub assets: Arc<Assets>,
    /// Request counts and latencies, for /metrics.
    pub metrics: Arc<Metrics>,
    /// The API's rate limiter; None when RATE_LIMIT_PER_SECOND is 0.
    pub rate_limit: Option<RateLimit>,
    /// The sign-in form's limits: per address, and the back-off.
    pub login_limits: crate::staff::account::LoginLimits,
    /// The last answer of /readyz and /api/v1/health.
    pub health: Arc<crate::api::system::HealthCache>,
    /// Logged-in RouterOS connections, reused per router, with back-off.
    pub router_pool: crate::mikrotik::pool::RouterPool,
    /// The previous counter reading of each live PPP session, for rates.
    pub session_rates: Arc<crate::mikrotik::sessions::SessionRates>,
}

impl AppState {
    pub fn new(config: Config, db: Databases, app_key: AppKey) -> Self {
        let assets = Assets::load(&config.static_dir);
        let rate_limit = RateLimit::from_config(&config);
        let login_limits = crate::staff::account::LoginLimits {
            rate: RateLimit::for_login(&config),
            throttle: Arc::default(),
        };
        let router_pool = crate::mikrotik::pool::RouterPool::new(
            app_key.clone(),
            crate::mikrotik::pool::PoolSettings::from_config(&config),
        );
        Self {
            config: Arc::new(config),
            db,
            app_key,
            assets: Arc::new(assets),
            metrics: Metrics::new(),
            rate_limit,
            login_limits,
            health: Arc::default(),
            router_pool,
            session_rates: Arc::default(),
        }
    }
}

/// The request id header: taken from the client (or a proxy) when present,
/// else generated; echoed on the response and recorded in the request's span.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Every room's pages; `web::router` puts them behind sign-in, CSRF and the
/// error pages.
fn pages() -> Router<AppState> {
    Router::new()
        .merge(crate::dashboard::html::router())
        .merge(crate::ipam::html::router())
        .merge(crate::users::html::router())
        .merge(crate::users::policies::html::router())
        .merge(crate::enforcement::html::router())
        .merge(crate::quotas::html::router())
        .merge(crate::radius::nas_html::router())
        .merge(crate::mikrotik::sessions_html::router())
        .merge(crate::radius::html::router())
        .merge(crate::mikrotik::html::router())
        .merge(crate::jobs::html::router())
        .merge(crate::webhooks::html::router())
        .merge(crate::audit::html::router())
        .merge(crate::staff::html::router())
        .merge(crate::staff::account::router())
}

/// Every room's `/api/v1` endpoints; `api::router` adds its own and the
/// document.
pub fn api_routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .merge(crate::staff::api::routes())
        .merge(crate::audit::api::routes())
        .merge(crate::ipam::api::routes())
        .merge(crate::users::api::routes())
        .merge(crate::users::policies::api::routes())
        .merge(crate::enforcement::api::routes())
        .merge(crate::quotas::api::routes())
        .merge(crate::radius::nas_api::routes())
        .merge(crate::radius::api::routes())
        .merge(crate::mikrotik::sessions_api::routes())
        .merge(crate::mikrotik::api::routes())
        .merge(crate::jobs::api::routes())
        .merge(crate::webhooks::api::routes())
}

pub fn build_router(state: AppState) -> Router {
    // Vite puts a content hash in every file name under assets/, so those
    // never change and can be cached for a year.
    let hashed_assets = Router::new()
        .nest_service(
            "/static/assets",
            ServeDir::new(state.config.static_dir.join("assets")),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ));
    let other_static = Router::new()
        .nest_service("/static", ServeDir::new(&state.config.static_dir))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ));

    let mut metrics_route = crate::dashboard::metrics::router();
    if state.rate_limit.is_some() {
        metrics_route = metrics_route.layer(from_fn_with_state(
            state.clone(),
            crate::api::auth::limit_api,
        ));
    }
    // Tokens are proved before the rate limit, which counts a valid one in
    // its own bucket.
    let prove_tokens = from_fn_with_state(state.clone(), crate::staff::auth::callers::prove_tokens);
    let metrics_route = metrics_route.layer(prove_tokens.clone());
    let api = crate::api::router(&state, api_routes()).layer(prove_tokens);

    let auth = crate::staff::auth::auth_layer(&state);
    let metrics = state.metrics.clone();
    let hsts = crate::web::security_headers::Hsts(state.config.is_https());
    Router::new()
        .merge(crate::web::router(&state, pages()))
        .merge(api)
        .merge(metrics_route)
        .layer(from_fn(crate::staff::auth::end_expired_sessions))
        .layer(auth)
        .with_state(state)
        .merge(hashed_assets)
        .merge(other_static)
        // Inside the router, where the matched route is known.
        .route_layer(from_fn(crate::web::metrics::label_route))
        .layer(CompressionLayer::new())
        .layer(from_fn_with_state(hsts, crate::web::security_headers::add))
        .layer(from_fn_with_state(metrics, crate::web::metrics::track))
        .layer(from_fn(remember_request_span))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(from_fn(drop_unusable_request_id))
}

/// A request id from outside ends up in every log line of the request:
/// keep it only if it is short and plain, else a new one is generated.
async fn drop_unusable_request_id(mut request: axum::extract::Request, next: Next) -> Response {
    let usable = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        (1..=128).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    };
    if request
        .headers()
        .get(REQUEST_ID_HEADER)
        .is_some_and(|value| !usable(value))
    {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    next.run(request).await
}

/// The span of a request, for handlers to record fields on: inner layers
/// (sessions, authentication) open spans of their own, so the current span
/// there is not this one.
#[derive(Debug, Clone)]
pub struct RequestSpan(pub tracing::Span);

async fn remember_request_span(mut request: axum::extract::Request, next: Next) -> Response {
    request
        .extensions_mut()
        .insert(RequestSpan(tracing::Span::current()));
    next.run(request).await
}

/// The span of one request: method, path (never the query, which may hold
/// search terms) and request id; the API fills in who called.
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
        caller = tracing::field::Empty,
    )
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    for warning in state.config.security_warnings() {
        tracing::warn!("SECURITY: {warning}");
    }
    tracing::info!("listening on http://{addr}");
    let limits: Vec<RateLimit> = [state.rate_limit.clone(), state.login_limits.rate.clone()]
        .into_iter()
        .flatten()
        .collect();
    if !limits.is_empty() {
        // Forget idle clients now and then, so that the limiters' tables
        // do not grow with every address they have ever seen.
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                for limit in &limits {
                    limit.forget_idle_clients();
                }
            }
        });
    }
    // Peer addresses reach the rate limiter and the audit log.
    let app = build_router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
