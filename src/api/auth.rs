//! Who is calling the API: an API token, else a signed-in staff member.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::app::{AppState, RequestSpan};
use crate::audit::{Actor, ActorKind};
use crate::error::AppError;
use crate::staff::Role;
use crate::web::auth::AuthSession;
use crate::web::rate_limit::{bearer_token, client_address};

/// The authenticated caller of an API route.
///
/// `Authorization: Bearer <token>` wins: a request that carries one is
/// judged by it alone (a wrong token is a 401 even with a session cookie).
/// Without the header, the staff session counts. Neither: 401 with
/// `WWW-Authenticate: Bearer`.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub role: Role,
    pub actor: Actor,
}

impl ApiCaller {
    /// 403 unless the caller's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<(), AppError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(AppError::forbidden_for_role())
        }
    }

    /// `token` or `staff`.
    pub fn kind(&self) -> &'static str {
        match self.actor.kind {
            ActorKind::Token => "token",
            ActorKind::Staff => "staff",
            ActorKind::Cli => "cli",
            ActorKind::System => "system",
        }
    }
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(caller) = parts.extensions.get::<ApiCaller>() {
            return Ok(caller.clone());
        }
        let ip = client_address(&parts.headers, &parts.extensions, state.config.trust_proxy)
            .map(|ip| ip.to_string());
        let caller = if parts.headers.contains_key(header::AUTHORIZATION) {
            let token = bearer_token(&parts.headers).ok_or(AppError::Unauthenticated)?;
            let token = crate::staff::service::authenticate_token(&state.db.main, token)
                .await?
                .ok_or(AppError::Unauthenticated)?;
            let Ok(role) = token.role.parse::<Role>() else {
                tracing::warn!(token.id = token.id, role = %token.role, "API token has an unknown role");
                return Err(AppError::Unauthenticated);
            };
            ApiCaller {
                role,
                actor: Actor {
                    kind: ActorKind::Token,
                    id: Some(token.id),
                    name: token.name,
                    ip_address: ip,
                },
            }
        } else {
            let session = AuthSession::from_request_parts(parts, state)
                .await
                .map_err(|_| {
                    AppError::Internal(anyhow::anyhow!(
                        "the API router is not inside the authentication layer"
                    ))
                })?;
            let user = session.user.ok_or(AppError::Unauthenticated)?;
            ApiCaller {
                role: user.role,
                actor: user.actor(ip),
            }
        };
        // The request's span (app::request_span) declares this field.
        if let Some(RequestSpan(span)) = parts.extensions.get::<RequestSpan>() {
            span.record(
                "caller",
                tracing::field::display(format_args!(
                    "{}:{}",
                    caller.kind(),
                    caller.actor.id.unwrap_or_default()
                )),
            );
        }
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}
