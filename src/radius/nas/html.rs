//! The NAS pages (`/radius/nas`) and the session action "Disconnect"
//! (`POST /radius/sessions/{radacctid}/disconnect`).
//!
//! Handlers parse the form, call one function of [`super::service`] or
//! [`crate::radius::coa`] and build a view. Forms post normally: a redirect with a
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
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use sea_orm::Order;
use serde::Deserialize;

use super::service::{self, coa_port, NasError, NasFilter, NasInput, NAS_TYPES};
use crate::app::AppState;
use crate::crypto::Secret;
use crate::error::{AppError, FieldErrors};
use crate::query::{PageRequest, Sort, MAX_PER_PAGE};
use crate::radius::coa::{self, CoaError, CoaSettings};
use crate::radius::entities::nas;
use crate::staff::{Operator, Role, Viewer};
use crate::web::csv;
use crate::web::flash;
use crate::web::forms::safe_next;
use crate::web::forms::{
    again, dash, is_htmx, merged, optional_number, optional_string, path_id, render_fragment,
    search_text, see_other, Choice, Errors, Staff,
};
use crate::web::layout::Chrome;
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
            .map(|t| Choice::new(*t, *t, &current))
            .collect()
    }

    /// The service's input, and what could not even be read.
    fn input(&self) -> (NasInput, FieldErrors) {
        let mut errors = FieldErrors::new();
        let ports = optional_number("ports", &self.ports, &mut errors);
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

impl NasForm {
    /// The service's input when the form reads as one, else every message
    /// the form and the service's own check have for it.
    fn parsed(&self, creating: bool) -> Result<NasInput, NasError> {
        let (input, early) = self.input();
        if early.is_empty() {
            return Ok(input);
        }
        let later = match input.validate(creating) {
            Err(NasError::Invalid(fields)) => fields,
            _ => FieldErrors::new(),
        };
        Err(NasError::Invalid(merged(early, later)))
    }
}

/// A create or update the service refused: its messages and their
/// status, 422 for fields, 409 (under the nasname) for a duplicate.
fn refused(err: NasError) -> Result<(StatusCode, Errors), AppError> {
    let (status, fields) = match err {
        NasError::Invalid(fields) => (StatusCode::UNPROCESSABLE_ENTITY, fields),
        NasError::Duplicate(message) => (
            StatusCode::CONFLICT,
            FieldErrors::from([("nasname".to_string(), message)]),
        ),
        e => return Err(e.into()),
    };
    Ok((status, Errors::from_fields(fields, NAS_FIELDS)))
}

const NOT_FOUND: &str = "There is no such NAS.";

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
    chrome: Chrome,
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
    chrome: Chrome,
    query: &NasListQuery,
    form: NasForm,
    errors: Errors,
) -> Result<NasListPage, AppError> {
    let q = search_text(&query.q);
    let page = page_request(&query.page);
    let (entries, total) = service::list_nas(
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
            coa_port: coa_port(n).to_string(),
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
    staff: Staff<Viewer>,
    Query(query): Query<NasListQuery>,
) -> Result<NasListPage, AppError> {
    let chrome = staff.chrome().await?;
    let (form, errors) = (NasForm::blank(), Errors::default());
    list_page(&staff.state, chrome, &query, form, errors).await
}

/// The (searched) NAS entries as CSV, never their secrets.
pub async fn export_nas(
    staff: Staff<Viewer>,
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
            service::list_nas(&staff.state.db.radius, &filter, &sort, request).await?;
        for n in &entries {
            let fields = [
                n.id.to_string(),
                n.nasname.clone(),
                n.shortname.clone().unwrap_or_default(),
                n.nas_type.clone().unwrap_or_default(),
                n.ports.map(|p| p.to_string()).unwrap_or_default(),
                coa_port(n).to_string(),
                n.server.clone().unwrap_or_default(),
                n.description.clone().unwrap_or_default(),
            ];
            csv::line(&mut out, &fields);
        }
        if entries.is_empty() || page * MAX_PER_PAGE >= total {
            break;
        }
        page += 1;
    }
    Ok(csv::download("nas.csv", out))
}

pub async fn create_nas(
    staff: Staff<Operator>,
    Form(form): Form<NasForm>,
) -> Result<Response, AppError> {
    let radius = &staff.state.db.radius;
    let created = match form.parsed(true) {
        Ok(input) => service::create_nas(staff.db(), radius, &staff.actor, &input).await,
        Err(early) => Err(early),
    };
    let (status, errors) = match created {
        Ok(created) => {
            let added = format!(
                "NAS “{}” added. Restart or reload FreeRADIUS so that it accepts the new client.",
                created.nasname
            );
            let location = format!("/radius/nas/{}", created.id);
            return Ok(staff.done(added, location).await);
        }
        Err(e) => refused(e)?,
    };
    let chrome = staff.chrome().await?;
    let query = NasListQuery::default();
    let page = list_page(&staff.state, chrome, &query, form, errors).await?;
    again(status, page)
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
    chrome: Chrome,
    can_edit: bool,
    nas: NasDetails,
    form: NasForm,
    errors: Errors,
}

async fn nas_page(
    state: &AppState,
    chrome: Chrome,
    id: i32,
    form: Option<NasForm>,
    errors: Errors,
) -> Result<NasPage, AppError> {
    let n = service::get_nas(&state.db.radius, id).await?;
    let details = NasDetails {
        id: n.id,
        nasname: n.nasname.clone(),
        shortname: dash(&n.shortname),
        nas_type: dash(&n.nas_type),
        ports: dash(&n.ports),
        coa_port: coa_port(&n).to_string(),
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

pub async fn show_nas(staff: Staff<Viewer>, Path(id): Path<String>) -> Result<NasPage, AppError> {
    let chrome = staff.chrome().await?;
    let id = path_id(&id, NOT_FOUND)?;
    nas_page(&staff.state, chrome, id, None, Errors::default()).await
}

pub async fn update_nas(
    staff: Staff<Operator>,
    Path(id): Path<String>,
    Form(form): Form<NasForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let radius = &staff.state.db.radius;
    let updated = match form.parsed(false) {
        Ok(input) => service::update_nas(staff.db(), radius, &staff.actor, id, &input).await,
        Err(early) => Err(early),
    };
    let (status, errors) = match updated {
        Ok(updated) => {
            let saved = format!("NAS “{}” saved.", updated.nasname);
            return Ok(staff.done(saved, format!("/radius/nas/{id}")).await);
        }
        Err(e) => refused(e)?,
    };
    let chrome = staff.chrome().await?;
    let page = nas_page(&staff.state, chrome, id, Some(form), errors).await?;
    again(status, page)
}

pub async fn delete_nas(
    staff: Staff<Operator>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let radius = &staff.state.db.radius;
    let deleted = service::delete_nas(staff.db(), radius, &staff.actor, id).await?;
    let message = format!("NAS “{}” deleted.", deleted.nasname);
    Ok(staff.done(message, "/radius/nas").await)
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
    staff: Staff<Operator>,
    headers: HeaderMap,
    Path(radacctid): Path<String>,
    Form(form): Form<DisconnectForm>,
) -> Result<Response, AppError> {
    let radacctid: i64 = path_id(&radacctid, "There is no such session.")?;
    let state = &staff.state;
    let settings = CoaSettings::from_config(&state.config);
    let result = coa::disconnect_session(
        staff.db(),
        &state.db.radius,
        settings,
        &staff.actor,
        radacctid,
    )
    .await;
    let (ok, message) = match result {
        Ok(result) => (result.acknowledged(), result.summary()),
        Err(CoaError::Db(db)) => return Err(db.into()),
        Err(e) => (false, e.to_string()),
    };
    if is_htmx(&headers) {
        return render_fragment(StatusCode::OK, &ActionFragment { ok, message });
    }
    flash::push(
        &staff.session,
        if ok { "success" } else { "error" },
        message,
    )
    .await;
    let back = match form.back.as_deref().filter(|b| !b.is_empty()) {
        Some(back) => safe_next(Some(back)),
        None => "/radius/online".to_string(),
    };
    Ok(see_other(back))
}
