//! Admin pages: API tokens and staff accounts.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use sea_orm::Order;
use serde::Deserialize;

use crate::app::AppState;
use crate::crypto::{random_password, Secret};
use crate::error::{AppError, FieldErrors};
use crate::query::{PageRequest, Sort, MAX_PER_PAGE};
use crate::staff::entities::{api_token, staff_user};
use crate::staff::service::{self, StaffError};
use crate::staff::{Admin, Role, StaffUsername};
use crate::web::forms::{again, Staff};
use crate::web::layout::Chrome;
use crate::web::listing::{when, when_opt};

/// The admin pages' routes; `app::build_router` merges them into the pages.
pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}/revoke", post(revoke_token))
        .route("/staff", get(list_staff).post(create_staff))
        .route("/staff/{id}/reset-password", post(reset_staff_password))
        .route("/staff/{id}/{action}", post(set_staff_active))
}

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
    let (tokens, _) = service::list_tokens(
        &state.db.main,
        &service::TokenFilter::default(),
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

pub async fn list_tokens(staff: Staff<Admin>) -> Result<TokensPage, AppError> {
    let chrome = staff.chrome().await?;
    tokens_page(&staff.state, chrome, None, FieldErrors::new(), None).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    name: String,
    role: String,
    expires: String,
}

pub async fn create_token(
    staff: Staff<Admin>,
    Form(form): Form<TokenForm>,
) -> Result<Response, AppError> {
    let (state, chrome) = (&staff.state, staff.chrome().await?);
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
        other => service::parse_lifetime(other).map(|d| Some(chrono::Utc::now() + d)),
    };
    match (&expires_at, role) {
        (Err(e), _) => {
            errors.insert("expires".into(), e.clone());
        }
        (Ok(at), Some(role)) => {
            if let Err(e) = service::token_expiry(role, *at, chrono::Utc::now()) {
                errors.insert("expires".into(), e);
            }
        }
        (Ok(_), None) => {}
    }
    let (Some(role), Ok(expires_at), true) = (role, expires_at, errors.is_empty()) else {
        let page = tokens_page(state, chrome, None, errors, Some(&form)).await?;
        return again(StatusCode::UNPROCESSABLE_ENTITY, page);
    };
    let issued = service::create_token(staff.db(), &staff.actor, name, role, expires_at).await?;
    let created = Some((
        issued.token.name.clone(),
        issued.plaintext.expose().to_string(),
    ));
    Ok(
        tokens_page(state, chrome, created, FieldErrors::new(), None)
            .await?
            .into_response(),
    )
}

pub async fn revoke_token(staff: Staff<Admin>, Path(id): Path<i32>) -> Result<Response, AppError> {
    let token = service::revoke_token(staff.db(), &staff.actor, id).await?;
    Ok(staff
        .done(format!("Token “{}” revoked.", token.name), "/tokens")
        .await)
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
    let (members, _) = service::list_staff(
        &state.db.main,
        &service::StaffFilter::default(),
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

pub async fn list_staff(staff: Staff<Admin>) -> Result<StaffPage, AppError> {
    let chrome = staff.chrome().await?;
    staff_page(
        &staff.state,
        chrome,
        staff.user.id,
        None,
        FieldErrors::new(),
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct StaffForm {
    username: String,
    role: String,
}

pub async fn create_staff(
    staff: Staff<Admin>,
    Form(form): Form<StaffForm>,
) -> Result<Response, AppError> {
    let (state, chrome, self_id) = (&staff.state, staff.chrome().await?, staff.user.id);
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
            service::create_staff(staff.db(), &staff.actor, &username, role, &password).await
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
                staff_page(state, chrome, self_id, issued, FieldErrors::new(), None)
                    .await?
                    .into_response(),
            )
        }
        Err(StaffError::UsernameTaken(name)) => {
            errors.insert("username".into(), format!("“{name}” is taken."));
            let page = staff_page(state, chrome, self_id, None, errors, Some(&form)).await?;
            again(StatusCode::CONFLICT, page)
        }
        Err(StaffError::NoSuchUser(_)) => {
            let page = staff_page(state, chrome, self_id, None, errors, Some(&form)).await?;
            again(StatusCode::UNPROCESSABLE_ENTITY, page)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn reset_staff_password(
    staff: Staff<Admin>,
    Path(id): Path<i32>,
) -> Result<StaffPage, AppError> {
    let member = service::find_staff(staff.db(), id)
        .await?
        .ok_or_else(|| AppError::not_found("no such staff member"))?;
    let password = Secret::new(random_password(20));
    service::reset_password(staff.db(), &staff.actor, &member.username, &password).await?;
    crate::staff::auth::session_store::DbSessionStore::new(staff.db().clone())
        .delete_sessions_of(id, None)
        .await?;
    let issued = Some((
        format!(
            "New password for “{}”; their sessions ended",
            member.username
        ),
        password.expose().to_string(),
    ));
    let chrome = staff.chrome().await?;
    staff_page(
        &staff.state,
        chrome,
        staff.user.id,
        issued,
        FieldErrors::new(),
        None,
    )
    .await
}

pub async fn set_staff_active(
    staff: Staff<Admin>,
    Path((id, action)): Path<(i32, String)>,
) -> Result<Response, AppError> {
    let active = match action.as_str() {
        "enable" => true,
        "disable" => false,
        _ => return Err(AppError::not_found("no such action")),
    };
    if id == staff.user.id {
        return Err(AppError::Conflict {
            code: "cannot_disable_self",
            message: "You cannot disable your own account.".into(),
        });
    }
    let member = service::set_staff_active(staff.db(), &staff.actor, id, active).await?;
    let now = if active {
        "enabled"
    } else {
        "disabled and signed out"
    };
    Ok(staff
        .done(format!("“{}” is {now}.", member.username), "/staff")
        .await)
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
