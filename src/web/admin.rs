//! Admin pages: API tokens and staff accounts.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use sea_orm::{EntityTrait, Order};
use serde::Deserialize;
use tower_sessions::Session;

use crate::app::AppState;
use crate::crypto::{random_password, Secret};
use crate::error::{AppError, FieldErrors};
use crate::query::{PageRequest, Sort, MAX_PER_PAGE};
use crate::staff::entities::{api_token, staff_user};
use crate::staff::service::{self as staff, StaffError};
use crate::staff::{Role, StaffUsername};
use crate::web::account::RequestParts;
use crate::web::auth::SignedIn;
use crate::web::flash;
use crate::web::layout::Chrome;
use crate::web::listing::{when, when_opt};

/// Token and staff lists are short; one page holds them.
const ADMIN_LIST_PAGE: PageRequest = PageRequest {
    page: 1,
    per_page: MAX_PER_PAGE,
};

pub struct TokenRow {
    id: i32,
    name: String,
    prefix: String,
    role: String,
    created: String,
    expires: String,
    last_used: String,
    status: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/tokens.html")]
pub struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenRow>,
    /// (name, plaintext) of a token just created: shown once.
    created: Option<(String, String)>,
    errors: FieldErrors,
    form_name: String,
    form_role: String,
}

async fn tokens_page(
    state: &AppState,
    chrome: Chrome,
    created: Option<(String, String)>,
    errors: FieldErrors,
    form: Option<&TokenForm>,
) -> Result<TokensPage, AppError> {
    let now = chrono::Utc::now();
    let newest_first = Sort::by(vec![
        (api_token::Column::CreatedAt, Order::Desc),
        (api_token::Column::Id, Order::Desc),
    ]);
    let (tokens, _) = staff::list_tokens(
        &state.db.main,
        &staff::TokenFilter::default(),
        &newest_first,
        ADMIN_LIST_PAGE,
    )
    .await?;
    let tokens = tokens
        .into_iter()
        .map(|t| TokenRow {
            status: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at.is_some_and(|at| at <= now) {
                "expired"
            } else {
                "active"
            },
            id: t.id,
            name: t.name,
            prefix: t.token_prefix,
            role: t.role,
            created: when(&t.created_at),
            expires: t
                .expires_at
                .as_ref()
                .map(when)
                .unwrap_or_else(|| "never".into()),
            last_used: when_opt(&t.last_used_at),
        })
        .collect();
    Ok(TokensPage {
        chrome: chrome.at("tokens", "API tokens"),
        tokens,
        created,
        errors,
        form_name: form.map(|f| f.name.clone()).unwrap_or_default(),
        form_role: form
            .map(|f| f.role.clone())
            .unwrap_or_else(|| "viewer".into()),
    })
}

pub async fn list_tokens(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
) -> Result<TokensPage, AppError> {
    user.require(Role::Admin)?;
    tokens_page(&state, chrome, None, FieldErrors::new(), None).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    name: String,
    role: String,
    expires: String,
}

pub async fn create_token(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    State(state): State<AppState>,
    Form(form): Form<TokenForm>,
) -> Result<Response, AppError> {
    user.require(Role::Admin)?;
    let mut errors = FieldErrors::new();
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.insert(
            "name".into(),
            "Give the token a name of 1 to 100 characters.".into(),
        );
    }
    let role: Option<Role> = form.role.parse().ok();
    if role.is_none() {
        errors.insert("role".into(), "Choose admin, operator or viewer.".into());
    }
    let expires_at = match form.expires.as_str() {
        "never" => Ok(None),
        other => staff::parse_lifetime(other).map(|d| Some(chrono::Utc::now() + d)),
    };
    match (&expires_at, role) {
        (Err(e), _) => {
            errors.insert("expires".into(), e.clone());
        }
        (Ok(at), Some(role)) => {
            if let Err(e) = staff::token_expiry(role, *at, chrono::Utc::now()) {
                errors.insert("expires".into(), e);
            }
        }
        (Ok(_), None) => {}
    }
    let (Some(role), Ok(expires_at), true) = (role, expires_at, errors.is_empty()) else {
        let page = tokens_page(&state, chrome, None, errors, Some(&form)).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let issued = staff::create_token(
        &state.db.main,
        &user.actor(parts.address),
        name,
        role,
        expires_at,
    )
    .await?;
    let created = Some((
        issued.token.name.clone(),
        issued.plaintext.expose().to_string(),
    ));
    Ok(
        tokens_page(&state, chrome, created, FieldErrors::new(), None)
            .await?
            .into_response(),
    )
}

pub async fn revoke_token(
    SignedIn(user): SignedIn,
    session: Session,
    parts: RequestParts,
    State(state): State<AppState>,
    Path(id): Path<i32>,
) -> Result<Redirect, AppError> {
    user.require(Role::Admin)?;
    let token = staff::revoke_token(&state.db.main, &user.actor(parts.address), id).await?;
    flash::success(&session, format!("Token “{}” revoked.", token.name)).await;
    Ok(Redirect::to("/tokens"))
}

pub struct StaffRow {
    id: i32,
    username: String,
    role: String,
    is_active: bool,
    last_login: String,
    created: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/staff.html")]
pub struct StaffPage {
    chrome: Chrome,
    staff: Vec<StaffRow>,
    self_id: i32,
    /// (what happened, password): shown once.
    issued: Option<(String, String)>,
    errors: FieldErrors,
    form_username: String,
    form_role: String,
}

async fn staff_page(
    state: &AppState,
    chrome: Chrome,
    self_id: i32,
    issued: Option<(String, String)>,
    errors: FieldErrors,
    form: Option<&StaffForm>,
) -> Result<StaffPage, AppError> {
    let (members, _) = staff::list_staff(
        &state.db.main,
        &staff::StaffFilter::default(),
        &Sort::by(vec![(staff_user::Column::Username, Order::Asc)]),
        ADMIN_LIST_PAGE,
    )
    .await?;
    let staff = members
        .into_iter()
        .map(|m| StaffRow {
            id: m.id,
            username: m.username,
            role: m.role,
            is_active: m.is_active,
            last_login: when_opt(&m.last_login_at),
            created: when(&m.created_at),
        })
        .collect();
    Ok(StaffPage {
        chrome: chrome.at("staff", "Staff"),
        staff,
        self_id,
        issued,
        errors,
        form_username: form.map(|f| f.username.clone()).unwrap_or_default(),
        form_role: form
            .map(|f| f.role.clone())
            .unwrap_or_else(|| "operator".into()),
    })
}

pub async fn list_staff(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
) -> Result<StaffPage, AppError> {
    user.require(Role::Admin)?;
    staff_page(&state, chrome, user.id, None, FieldErrors::new(), None).await
}

#[derive(Deserialize)]
pub struct StaffForm {
    username: String,
    role: String,
}

pub async fn create_staff(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    State(state): State<AppState>,
    Form(form): Form<StaffForm>,
) -> Result<Response, AppError> {
    user.require(Role::Admin)?;
    let mut errors = FieldErrors::new();
    let username = StaffUsername::parse(&form.username)
        .map_err(|e| errors.insert("username".into(), format!("The username {e}.")))
        .ok();
    let role: Option<Role> = form.role.parse().ok();
    if role.is_none() {
        errors.insert("role".into(), "Choose admin, operator or viewer.".into());
    }
    let password = Secret::new(random_password(20));
    let created = match (username, role) {
        (Some(username), Some(role)) => {
            staff::create_staff(
                &state.db.main,
                &user.actor(parts.address),
                &username,
                role,
                &password,
            )
            .await
        }
        _ => Err(StaffError::NoSuchUser(String::new())),
    };
    match created {
        Ok(member) => {
            let issued = Some((
                format!("Added {} “{}”", member.role, member.username),
                password.expose().to_string(),
            ));
            Ok(
                staff_page(&state, chrome, user.id, issued, FieldErrors::new(), None)
                    .await?
                    .into_response(),
            )
        }
        Err(StaffError::UsernameTaken(name)) => {
            errors.insert("username".into(), format!("“{name}” is taken."));
            let page = staff_page(&state, chrome, user.id, None, errors, Some(&form)).await?;
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(StaffError::NoSuchUser(_)) => {
            let page = staff_page(&state, chrome, user.id, None, errors, Some(&form)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn reset_staff_password(
    SignedIn(user): SignedIn,
    chrome: Chrome,
    parts: RequestParts,
    State(state): State<AppState>,
    Path(id): Path<i32>,
) -> Result<StaffPage, AppError> {
    user.require(Role::Admin)?;
    let member = staff_user::Entity::find_by_id(id)
        .one(&state.db.main)
        .await?
        .ok_or_else(|| AppError::not_found("no such staff member"))?;
    let password = Secret::new(random_password(20));
    staff::reset_password(
        &state.db.main,
        &user.actor(parts.address),
        &member.username,
        &password,
    )
    .await?;
    crate::web::auth::session_store::DbSessionStore::new(state.db.main.clone())
        .delete_sessions_of(id, None)
        .await?;
    let issued = Some((
        format!(
            "New password for “{}”; their sessions ended",
            member.username
        ),
        password.expose().to_string(),
    ));
    staff_page(&state, chrome, user.id, issued, FieldErrors::new(), None).await
}

pub async fn set_staff_active(
    SignedIn(user): SignedIn,
    session: Session,
    parts: RequestParts,
    State(state): State<AppState>,
    Path((id, action)): Path<(i32, String)>,
) -> Result<Redirect, AppError> {
    user.require(Role::Admin)?;
    let active = match action.as_str() {
        "enable" => true,
        "disable" => false,
        _ => return Err(AppError::not_found("no such action")),
    };
    if id == user.id {
        return Err(AppError::Conflict {
            code: "cannot_disable_self",
            message: "You cannot disable your own account.".into(),
        });
    }
    let member =
        staff::set_staff_active(&state.db.main, &user.actor(parts.address), id, active).await?;
    flash::success(
        &session,
        format!(
            "“{}” is {}.",
            member.username,
            if active {
                "enabled"
            } else {
                "disabled and signed out"
            }
        ),
    )
    .await;
    Ok(Redirect::to("/staff"))
}

impl TokensPage {
    fn field_error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}

impl StaffPage {
    fn field_error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}
