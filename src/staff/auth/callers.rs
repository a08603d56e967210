//! API callers proved by their bearer token, once per request, before the
//! rate limit and the handler look at them.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::access::{Actor, ActorKind, Role};
use crate::api::auth::{caller_ip_of, ApiCaller, RejectedToken};
use crate::app::AppState;
use crate::error::AppError;
use crate::web::rate_limit::bearer_token;

/// Middleware of /api/v1 and /metrics, outside their rate limit: a request
/// with `Authorization` leaves the caller its token proves in the request's
/// extensions, or [`RejectedToken`] when it proves nobody. The rate limit
/// then counts a valid token in its own bucket and anything else against
/// the address; the extractor answers 401 for a rejected token without
/// looking it up again.
pub async fn prove_tokens(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !request.headers().contains_key(header::AUTHORIZATION) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    match of_token(&parts.headers, caller_ip_of(&parts, &state), &state).await {
        Ok(caller) => {
            parts.extensions.insert(caller);
        }
        Err(AppError::Unauthenticated) => {
            parts.extensions.insert(RejectedToken);
        }
        Err(other) => return other.into_response(),
    }
    next.run(Request::from_parts(parts, body)).await
}

/// The caller a bearer token proves, or 401.
async fn of_token(
    headers: &axum::http::HeaderMap,
    ip_address: Option<String>,
    state: &AppState,
) -> Result<ApiCaller, AppError> {
    let token = bearer_token(headers).ok_or(AppError::Unauthenticated)?;
    let token = crate::staff::service::authenticate_token(&state.db.main, token)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let Ok(role) = token.role.parse::<Role>() else {
        tracing::warn!(token.id = token.id, role = %token.role, "API token has an unknown role");
        return Err(AppError::Unauthenticated);
    };
    Ok(ApiCaller {
        role,
        actor: Actor {
            kind: ActorKind::Token,
            id: Some(token.id),
            name: token.name,
            ip_address,
        },
    })
}
