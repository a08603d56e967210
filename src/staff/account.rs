//! Signing in and out, and changing one's own password.

use std::sync::Arc;

use crate::web::forms::{safe_next, RequestParts};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tower_sessions::Session;

use crate::access::SignedIn;
use crate::app::AppState;
use crate::crypto::Secret;
use crate::error::{AppError, FieldErrors};
use crate::staff::auth::throttle::LoginThrottle;
use crate::staff::auth::{AuthSession, Credentials};
use crate::web::layout::Chrome;
use crate::web::rate_limit::{client_bucket, ClientKey};
use crate::web::{csrf, flash};

/// Signing in and out and the password page; `app::build_router` merges
/// them into the pages (the login page is the only one open to all).
pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route(
            "/account/password",
            get(password_page).post(change_password),
        )
}

#[derive(Template, WebTemplate)]
#[template(path = "account/login.html")]
pub struct LoginPage {
    chrome: Chrome,
    next: String,
    username: String,
    error: Option<String>,
    signed_out: bool,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

pub async fn login_page(
    auth: AuthSession,
    mut chrome: Chrome,
    Query(query): Query<LoginQuery>,
) -> Result<Response, AppError> {
    let next = safe_next(query.next.as_deref());
    if auth.user.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    // The form's token: the only page that starts a session before
    // signing in.
    chrome.csrf_token = csrf::token_for(&auth.session).await?;
    Ok(LoginPage {
        chrome: chrome.at("", "Sign in"),
        next,
        username: String::new(),
        error: None,
        signed_out: query.signed_out.is_some(),
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// The longest username a sign-in keeps: staff usernames are at most 64
/// characters, so anything longer is wrong anyway, and is neither stored in
/// the throttle nor logged at full length.
const MAX_USERNAME_CHARS: usize = 64;

/// The sign-in limiters of one application: the per-address rate limit
/// (None when LOGIN_RATE_LIMIT_PER_MINUTE is 0) and the back-off.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    pub rate: Option<crate::web::rate_limit::RateLimit>,
    pub throttle: Arc<LoginThrottle>,
}

pub async fn login(
    mut auth: AuthSession,
    parts: RequestParts,
    State(state): State<AppState>,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let limits = &state.login_limits;
    let address = parts.ip;
    if let Some(rate) = &limits.rate {
        rate.check(&ClientKey::of_ip(address))?;
    }
    let shown_address = address.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let username: String = form
        .username
        .trim()
        .chars()
        .take(MAX_USERNAME_CHARS)
        .collect();
    // Escaped: a username with a line break cannot forge log lines.
    let logged = username.escape_debug().to_string();
    let next = safe_next(form.next.as_deref());
    let attempt = match limits.throttle.begin(&username, address.map(client_bucket)) {
        Ok(attempt) => attempt,
        Err(wait) => {
            tracing::warn!(username = %logged, address = %shown_address, "sign-in refused: too many failures");
            return Err(AppError::TooManyRequests {
                retry_after_secs: wait.as_secs_f64().ceil() as u64,
            });
        }
    };
    let credentials = Credentials {
        username: username.clone(),
        password: Secret::new(form.password),
    };
    let user = auth
        .authenticate(credentials)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    let Some(user) = user else {
        tracing::warn!(username = %logged, address = %shown_address, "sign-in failed");
        let chrome = Chrome::build(&state, Some(&auth.session), auth.user.clone()).await?;
        let page = LoginPage {
            chrome: chrome.at("", "Sign in"),
            next,
            username,
            error: Some("Wrong username or password.".into()),
            signed_out: false,
        };
        return Ok((axum::http::StatusCode::UNAUTHORIZED, page).into_response());
    };
    limits.throttle.succeeded(attempt);
    // login() rotates the session id; a new CSRF token goes with it.
    auth.login(&user)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    csrf::rotate(&auth.session).await?;
    crate::staff::auth::start_session_clock(&auth.session).await?;
    crate::staff::service::record_login(&state.db.main, user.id).await?;
    tracing::info!(username = %user.username, address = %shown_address, "signed in");
    Ok(Redirect::to(&next).into_response())
}

pub async fn logout(mut auth: AuthSession) -> Result<Redirect, AppError> {
    auth.logout()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    Ok(Redirect::to("/login?signed_out=1"))
}

#[derive(Template, WebTemplate)]
#[template(path = "account/password.html")]
pub struct PasswordPage {
    chrome: Chrome,
    errors: FieldErrors,
}

impl PasswordPage {
    fn field_error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}

pub async fn password_page(_user: SignedIn, chrome: Chrome) -> PasswordPage {
    PasswordPage {
        chrome: chrome.at("", "Change my password"),
        errors: FieldErrors::new(),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

pub async fn change_password(
    SignedIn(user): SignedIn,
    mut auth: AuthSession,
    session: Session,
    State(state): State<AppState>,
    parts: RequestParts,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let mut errors = FieldErrors::new();
    if let Err(e) = crate::staff::validate_password(&form.new_password) {
        errors.insert("new_password".into(), format!("The new password {e}."));
    }
    if form.new_password != form.confirm_password {
        errors.insert(
            "confirm_password".into(),
            "The two new passwords differ.".into(),
        );
    }
    let verified = auth
        .backend
        .verify_password(user.id, &Secret::new(form.current_password))
        .await?;
    if !verified {
        errors.insert(
            "current_password".into(),
            "This is not your current password.".into(),
        );
    }
    if !errors.is_empty() {
        let chrome = Chrome::build(&state, Some(&session), auth.user.clone()).await?;
        let page = PasswordPage {
            chrome: chrome.at("", "Change my password"),
            errors,
        };
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let actor = user.actor(parts.address);
    crate::staff::service::reset_password(
        &state.db.main,
        &actor,
        &user.username,
        &Secret::new(form.new_password),
    )
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    // Every other session of this person ends; this one is re-signed with
    // the new password's hash so that it stays valid.
    let store = crate::staff::auth::session_store::DbSessionStore::new(state.db.main.clone());
    let ended = store
        .delete_sessions_of(user.id, session.id().as_ref())
        .await?;
    let updated = auth
        .backend
        .get_user_by_id(user.id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    auth.login(&updated)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    flash::success(
        &session,
        format!("Password changed. {ended} other session(s) signed out."),
    )
    .await;
    Ok(Redirect::to("/").into_response())
}
