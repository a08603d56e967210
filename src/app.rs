//! The application: shared state, the router of every domain, and serving.

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::crypto::AppKey;
use crate::db::Databases;
use crate::web::assets::Assets;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Databases,
    pub app_key: AppKey,
    pub assets: Arc<Assets>,
}

impl AppState {
    pub fn new(config: Config, db: Databases, app_key: AppKey) -> Self {
        let assets = Assets::load(&config.static_dir);
        Self {
            config: Arc::new(config),
            db,
            app_key,
            assets: Arc::new(assets),
        }
    }
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

    let auth = crate::web::auth::auth_layer(&state);
    Router::new()
        .merge(crate::web::router(&state))
        .layer(auth)
        .with_state(state)
        .merge(hashed_assets)
        .merge(other_static)
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!("listening on http://{addr}");
    axum::serve(listener, build_router(state))
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
