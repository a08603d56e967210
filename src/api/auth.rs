//! Who is calling the API: an API token, else a signed-in staff member.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::access::{Actor, ActorKind, AtLeast, Role, StaffUser};
use crate::app::{AppState, RequestSpan};
use crate::error::AppError;
use crate::web::rate_limit::{client_address, ClientKey};

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

impl ApiCaller {
    /// The request's span (app::request_span) declares this field.
    fn record_in_span(&self, parts: &Parts) {
        if let Some(RequestSpan(span)) = parts.extensions.get::<RequestSpan>() {
            span.record(
                "caller",
                tracing::field::display(format_args!(
                    "{}:{}",
                    self.kind(),
                    self.actor.id.unwrap_or_default()
                )),
            );
        }
    }
}

/// The caller of an API route whose role is at least `R` (else 403, before
/// the handler runs), with the app state: what nearly every handler starts
/// from.
pub struct Api<R: AtLeast> {
    pub actor: Actor,
    pub role: Role,
    pub state: AppState,
    role_floor: std::marker::PhantomData<R>,
}

impl<R: AtLeast> FromRequestParts<AppState> for Api<R> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let caller = ApiCaller::from_request_parts(parts, state).await?;
        caller.require(R::ROLE)?;
        Ok(Self {
            actor: caller.actor,
            role: caller.role,
            state: state.clone(),
            role_floor: std::marker::PhantomData,
        })
    }
}

impl<R: AtLeast> Api<R> {
    /// The main database.
    pub fn db(&self) -> &sea_orm::DatabaseConnection {
        &self.state.db.main
    }
}

/// The client's address, as the audit log records it.
pub fn caller_ip_of(parts: &Parts, state: &AppState) -> Option<String> {
    client_address(&parts.headers, &parts.extensions, state.config.trust_proxy)
        .map(|ip| ip.to_string())
}

/// A bearer token that the sign-in layer (`staff::auth::callers`) found
/// wrong: the request counts against its address, and the extractor
/// answers 401 without looking the token up again.
#[derive(Debug, Clone, Copy)]
pub struct RejectedToken;

/// Middleware of /api/v1 and /metrics: the rate limit
/// ([`crate::web::rate_limit`]). A valid token (which the sign-in layer has
/// already proved, leaving its caller here) counts against its own bucket;
/// anything else (no token, a wrong one) counts against the client's
/// address, before a wrong token is refused, so made-up tokens cannot
/// dodge the limit.
pub async fn limit_api(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(limit) = state.rate_limit.clone() else {
        return next.run(request).await;
    };
    let key = match request.extensions().get::<ApiCaller>() {
        Some(caller) if caller.actor.kind == ActorKind::Token => {
            ClientKey::Token(caller.actor.id.unwrap_or_default())
        }
        _ => ClientKey::of_address(request.headers(), request.extensions(), limit.trust_proxy),
    };
    if let Err(refused) = limit.check(&key) {
        return refused.into_response();
    }
    next.run(request).await
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(caller) = parts.extensions.get::<ApiCaller>().cloned() {
            caller.record_in_span(parts);
            return Ok(caller);
        }
        if parts.extensions.get::<RejectedToken>().is_some() {
            return Err(AppError::Unauthenticated);
        }
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Err(AppError::Internal(anyhow::anyhow!(
                "the API router is not inside the layer that proves tokens"
            )));
        }
        let user = parts
            .extensions
            .get::<StaffUser>()
            .ok_or(AppError::Unauthenticated)?;
        let caller = ApiCaller {
            role: user.role,
            actor: user.actor(caller_ip_of(parts, state)),
        };
        caller.record_in_span(parts);
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}
