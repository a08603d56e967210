//! The NAS pages (`/radius/nas`) and the session action "Disconnect"
//! (`POST /radius/sessions/{radacctid}/disconnect`).
//!
//! Handlers parse the form, call one function of [`super::nas`] or
//! [`super::coa`] and build a view. Forms post normally: a redirect with a
//! flash message on success, the same page with inline messages (422) or a
//! message under the nasname (409) otherwise.
//!
//! A NAS's secret never appears in a page: the form's secret field is
//! always sent out empty (on the edit form, empty keeps the stored one).
//!
//! The disconnect action is for the online-sessions and user pages: a form
//! with the CSRF token, `data-confirm`, and a hidden `back` path. Without
//! htmx it redirects to `back` (a local path, else `/radius/online`) with a flash
//! message; with htmx (`HX-Request`) it answers with a small status
//! fragment to swap in place of the button.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use sea_orm::Order;
use serde::Deserialize;
use tower_sessions::Session;

use super::coa::{self, CoaError, CoaSettings, DEFAULT_COA_PORT};
use super::entities::nas;
use super::nas::{NasError, NasFilter, NasInput, NAS_TYPES};
use crate::access::SignedIn;
use crate::app::AppState;
use crate::crypto::Secret;
use crate::error::{AppError, FieldErrors};
use crate::query::{PageRequest, Sort, MAX_PER_PAGE};
use crate::staff::Role;
use crate::web::flash;
use crate::web::forms::{dash, is_htmx, optional_string, path_id, see_other, with_vary, Errors};
use crate::web::forms::{safe_next, RequestParts};
use crate::web::listing::{page_request, Pager};

/// Merged into the staff router (behind its auth, CSRF and error layers)
/// by `web::router`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/radius/nas", get(list_nas).post(create_nas))
        .route("/radius/nas.csv", get(export_nas))
        .route("/radius/nas/{id}", get(show_nas).post(update_nas))
        .route("/radius/nas/{id}/delete", post(delete_nas))
        .route(
            "/radius/sessions/{radacctid}/disconnect",
            post(disconnect_session),
        )
}

const NAS_FIELDS: &[&str] = &[
    "nasname",
    "shortname",
    "type",
    "ports",
    "secret",
    "server",
    "community",
    "description",
];

// ------------------------------------------------------------ view helpers

/// One `<option>`.
pub struct Choice {
    pub value: &'static str,
    pub selected: bool,
}

fn search_text(raw: &Option<String>) -> String {
    raw.as_deref()
        .unwrap_or("")
        .trim()
        .chars()
        .take(100)
        .collect()
}

/// The NAS form. No `Debug`: it holds a secret.
#[derive(Default, Clone, Deserialize)]
#[serde(default)]
pub struct NasForm {
    pub nasname: String,
    pub shortname: String,
    #[serde(rename = "type")]
    pub nas_type: String,
    pub ports: String,
    /// Never sent back to the browser.
    pub secret: String,
    pub server: String,
    /// Never sent back to the browser either.
    pub community: String,
    pub description: String,
}

impl NasForm {
    fn blank() -> Self {
        Self {
            nas_type: "other".into(),
            ..Default::default()
        }
    }

    fn of(n: &nas::Model) -> Self {
        Self {
            nasname: n.nasname.clone(),
            shortname: n.shortname.clone().unwrap_or_default(),
            nas_type: n.nas_type.clone().unwrap_or_else(|| "other".into()),
            ports: n.ports.map(|p| p.to_string()).unwrap_or_default(),
            secret: String::new(),
            server: n.server.clone().unwrap_or_default(),
            community: String::new(),
            description: n.description.clone().unwrap_or_default(),
        }
    }

    /// The form as it goes back to the browser: without the secret and
    /// the community.
    fn without_secret(mut self) -> Self {
        self.secret = String::new();
        self.community = String::new();
        self
    }

    pub fn type_options(&self) -> Vec<Choice> {
        let current = self.nas_type.trim().to_ascii_lowercase();
        NAS_TYPES
            .iter()
            .map(|t| Choice {
                value: t,
                selected: *t == current,
            })
            .collect()
    }

    /// The service's input, and what could not even be read.
    fn input(&self) -> (NasInput, FieldErrors) {
        let mut errors = FieldErrors::new();
        let ports = match self.ports.trim() {
            "" => None,
            text => match text.parse::<i64>() {
                Ok(p) => Some(p),
                Err(_) => {
                    errors.insert("ports".into(), format!("\"{text}\" is not a whole number"));
                    None
                }
            },
        };
        let input = NasInput {
            nasname: self.nasname.clone(),
            shortname: optional_string(&self.shortname),
            nas_type: optional_string(&self.nas_type),
            ports,
            secret: Some(self.secret.clone())
                .filter(|s| !s.is_empty())
                .map(Secret::new),
            server: optional_string(&self.server),
            community: optional_string(&self.community).map(Secret::new),
            clear_community: false,
            description: optional_string(&self.description),
        };
        (input, errors)
    }
}

/// The early (form) errors merged with the service's own.
fn merged(mut early: FieldErrors, input: &NasInput, creating: bool) -> NasError {
    if let Err(NasError::Invalid(fields)) = input.validate(creating) {
        for (k, v) in fields {
            early.entry(k).or_insert(v);
        }
    }
    NasError::Invalid(early)
}

fn coa_port(n: &nas::Model) -> String {
    n.ports
        .filter(|p| (1..=65535).contains(p))
        .unwrap_or(i32::from(DEFAULT_COA_PORT))
        .to_string()
}

// ----------------------------------------------------------------- list

#[derive(Debug, Default, Deserialize)]
pub struct NasListQuery {
    page: Option<String>,
    q: Option<String>,
}

pub struct NasRow {
    pub id: i32,
    pub nasname: String,
    pub shortname: String,
    pub nas_type: String,
    pub coa_port: String,
    pub server: String,
    pub description: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "radius/nas/list.html")]
pub struct NasListPage {
    chrome: crate::web::layout::Chrome,
    can_edit: bool,
    rows: Vec<NasRow>,
    pager: Pager,
    q: String,
    csv_href: String,
    form: NasForm,
    errors: Errors,
}

async fn list_page(
    state: &AppState,
    chrome: crate::web::layout::Chrome,
    query: &NasListQuery,
    form: NasForm,
    errors: Errors,
) -> Result<NasListPage, AppError> {
    let q = search_text(&query.q);
    let page = page_request(&query.page);
    let (entries, total) = super::nas::list_nas(
        &state.db.radius,
        &NasFilter {
            q: Some(q.clone()).filter(|q| !q.is_empty()),
        },
        &Sort::by(vec![(nas::Column::Nasname, Order::Asc)]),
        page,
    )
    .await?;
    let rows: Vec<NasRow> = entries
        .iter()
        .map(|n| NasRow {
            id: n.id,
            nasname: n.nasname.clone(),
            shortname: dash(&n.shortname),
            nas_type: dash(&n.nas_type),
            coa_port: coa_port(n),
            server: dash(&n.server),
            description: n.description.clone().unwrap_or_default(),
        })
        .collect();
    let csv_href = if q.is_empty() {
        "/radius/nas.csv".to_string()
    } else {
        format!(
            "/radius/nas.csv?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("q", &q)
                .finish()
        )
    };
    Ok(NasListPage {
        can_edit: chrome.can(Role::Operator),
        chrome: chrome.at("nas", "NAS"),
        pager: Pager::new(
            "/radius/nas",
            vec![("q", q.clone())],
            page.page,
            total,
            rows.len(),
        ),
        rows,
        q,
        csv_href,
        form: form.without_secret(),
        errors,
    })
}

pub async fn list_nas(
    _user: SignedIn,
    chrome: crate::web::layout::Chrome,
    State(state): State<AppState>,
    Query(query): Query<NasListQuery>,
) -> Result<NasListPage, AppError> {
    list_page(&state, chrome, &query, NasForm::blank(), Errors::default()).await
}

/// The (searched) NAS entries as CSV, never their secrets.
pub async fn export_nas(
    _user: SignedIn,
    State(state): State<AppState>,
    Query(query): Query<NasListQuery>,
) -> Result<Response, AppError> {
    let q = search_text(&query.q);
    let filter = NasFilter {
        q: Some(q).filter(|q| !q.is_empty()),
    };
    let sort = Sort::by(vec![(nas::Column::Nasname, Order::Asc)]);
    let mut out = String::from("id,nasname,shortname,type,ports,coa_port,server,description\r\n");
    let mut page = 1;
    loop {
        let request = PageRequest {
            page,
            per_page: MAX_PER_PAGE,
        };
        let (entries, total) =
            super::nas::list_nas(&state.db.radius, &filter, &sort, request).await?;
        for n in &entries {
            let fields = [
                n.id.to_string(),
                n.nasname.clone(),
                n.shortname.clone().unwrap_or_default(),
                n.nas_type.clone().unwrap_or_default(),
                n.ports.map(|p| p.to_string()).unwrap_or_default(),
                coa_port(n),
                n.server.clone().unwrap_or_default(),
                n.description.clone().unwrap_or_default(),
            ];
            let line: Vec<String> = fields.iter().map(|f| crate::web::csv::cell(f)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        if entries.is_empty() || page * MAX_PER_PAGE >= total {
            break;
        }
        page += 1;
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"nas.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

pub async fn create_nas(
    SignedIn(user): SignedIn,
    chrome: crate::web::layout::Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Form(form): Form<NasForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let (input, early) = form.input();
    let created = if early.is_empty() {
        super::nas::create_nas(
            &state.db.main,
            &state.db.radius,
            &user.actor(parts.address),
            &input,
        )
        .await
    } else {
        Err(merged(early, &input, true))
    };
    let (status, fields) = match created {
        Ok(created) => {
            flash::success(
                &session,
                format!(
                    "NAS “{}” added. Restart or reload FreeRADIUS so that it accepts the new client.",
                    created.nasname
                ),
            )
            .await;
            return Ok(see_other(format!("/radius/nas/{}", created.id)));
        }
        Err(NasError::Invalid(fields)) => (StatusCode::UNPROCESSABLE_ENTITY, fields),
        Err(NasError::Duplicate(message)) => (
            StatusCode::CONFLICT,
            FieldErrors::from([("nasname".to_string(), message)]),
        ),
        Err(e) => return Err(e.into()),
    };
    let page = list_page(
        &state,
        chrome,
        &NasListQuery::default(),
        form,
        Errors::from_fields(fields, NAS_FIELDS),
    )
    .await?;
    Ok((status, page).into_response())
}

// ------------------------------------------------------------------ one

pub struct NasDetails {
    pub id: i32,
    pub nasname: String,
    pub shortname: String,
    pub nas_type: String,
    pub ports: String,
    pub coa_port: String,
    pub server: String,
    pub community: String,
    pub description: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "radius/nas/show.html")]
pub struct NasPage {
    chrome: crate::web::layout::Chrome,
    can_edit: bool,
    nas: NasDetails,
    form: NasForm,
    errors: Errors,
}

async fn nas_page(
    state: &AppState,
    chrome: crate::web::layout::Chrome,
    id: i32,
    form: Option<NasForm>,
    errors: Errors,
) -> Result<NasPage, AppError> {
    let n = super::nas::get_nas(&state.db.radius, id).await?;
    let details = NasDetails {
        id: n.id,
        nasname: n.nasname.clone(),
        shortname: dash(&n.shortname),
        nas_type: dash(&n.nas_type),
        ports: dash(&n.ports),
        coa_port: coa_port(&n),
        server: dash(&n.server),
        community: if n.community.is_some() {
            "set (never shown)".into()
        } else {
            "—".into()
        },
        description: dash(&n.description),
    };
    Ok(NasPage {
        can_edit: chrome.can(Role::Operator),
        chrome: chrome.at("nas", format!("NAS {}", n.nasname)),
        form: form.unwrap_or_else(|| NasForm::of(&n)).without_secret(),
        nas: details,
        errors,
    })
}

pub async fn show_nas(
    _user: SignedIn,
    chrome: crate::web::layout::Chrome,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<NasPage, AppError> {
    nas_page(
        &state,
        chrome,
        path_id(&id, "There is no such NAS.")?,
        None,
        Errors::default(),
    )
    .await
}

pub async fn update_nas(
    SignedIn(user): SignedIn,
    chrome: crate::web::layout::Chrome,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<NasForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let id = path_id(&id, "There is no such NAS.")?;
    let (input, early) = form.input();
    let updated = if early.is_empty() {
        super::nas::update_nas(
            &state.db.main,
            &state.db.radius,
            &user.actor(parts.address),
            id,
            &input,
        )
        .await
    } else {
        Err(merged(early, &input, false))
    };
    let (status, fields) = match updated {
        Ok(updated) => {
            flash::success(&session, format!("NAS “{}” saved.", updated.nasname)).await;
            return Ok(see_other(format!("/radius/nas/{id}")));
        }
        Err(NasError::Invalid(fields)) => (StatusCode::UNPROCESSABLE_ENTITY, fields),
        Err(NasError::Duplicate(message)) => (
            StatusCode::CONFLICT,
            FieldErrors::from([("nasname".to_string(), message)]),
        ),
        Err(e) => return Err(e.into()),
    };
    let page = nas_page(
        &state,
        chrome,
        id,
        Some(form),
        Errors::from_fields(fields, NAS_FIELDS),
    )
    .await?;
    Ok((status, page).into_response())
}

pub async fn delete_nas(
    SignedIn(user): SignedIn,
    parts: RequestParts,
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let id = path_id(&id, "There is no such NAS.")?;
    let deleted = super::nas::delete_nas(
        &state.db.main,
        &state.db.radius,
        &user.actor(parts.address),
        id,
    )
    .await?;
    flash::success(&session, format!("NAS “{}” deleted.", deleted.nasname)).await;
    Ok(see_other("/radius/nas".into()))
}

// ------------------------------------------------------- session action

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DisconnectForm {
    /// Where to go afterwards: a local path.
    pub back: Option<String>,
}

/// The fragment htmx swaps in place of the Disconnect button.
#[derive(Template)]
#[template(
    source = r#"<p role="status" class="text-sm {% if ok %}text-green-800{% else %}text-red-700{% endif %}">{{ message }}</p>"#,
    ext = "html"
)]
struct ActionFragment {
    ok: bool,
    message: String,
}

/// Sends a Disconnect-Request for the session (same service call as the
/// API) and reports the NAS's answer.
pub async fn disconnect_session(
    SignedIn(user): SignedIn,
    parts: RequestParts,
    headers: HeaderMap,
    session: Session,
    State(state): State<AppState>,
    Path(radacctid): Path<String>,
    Form(form): Form<DisconnectForm>,
) -> Result<Response, AppError> {
    user.require(Role::Operator)?;
    let radacctid: i64 = radacctid
        .parse()
        .map_err(|_| AppError::not_found("There is no such session."))?;
    let result = coa::disconnect_session(
        &state.db.main,
        &state.db.radius,
        CoaSettings::from_config(&state.config),
        &user.actor(parts.address),
        radacctid,
    )
    .await;
    let (ok, message) = match result {
        Ok(result) => (result.acknowledged(), result.summary()),
        Err(CoaError::Db(db)) => return Err(db.into()),
        Err(e) => (false, e.to_string()),
    };
    if is_htmx(&headers) {
        let html = ActionFragment { ok, message }
            .render()
            .map_err(|e| AppError::Internal(anyhow::anyhow!("rendering a fragment: {e}")))?;
        return Ok(with_vary(Html(html).into_response()));
    }
    flash::push(&session, if ok { "success" } else { "error" }, message).await;
    let back = match form.back.as_deref().filter(|b| !b.is_empty()) {
        Some(back) => safe_next(Some(back)),
        None => "/radius/online".to_string(),
    };
    Ok(see_other(back))
}
