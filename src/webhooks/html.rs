//! The webhook pages (admins only): the list of endpoints with its new
//! form, and the page of one endpoint with its edit form and its latest
//! deliveries, each with a Replay button. Every handler reads the form,
//! calls one function of [`super::service`] and builds a view.
//!
//! Forms post normally: a redirect with a flash message on success, the
//! same page with inline messages (422) otherwise. The secret is never
//! put back into a form.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::domain::{EventType, Subscription};
use super::entities::{webhook_delivery, webhook_endpoint};
use super::service::{self, EndpointInput};
use super::WebhookError;
use crate::app::AppState;
use crate::crypto::Secret;
use crate::error::AppError;
use crate::staff::Admin;
use crate::web::forms::{again, dash, path_id, Errors, Staff};
use crate::web::layout::Chrome;
use crate::web::listing::{page_request, when, when_opt, Pager};

/// The webhook pages; merged into the staff router (behind its auth, CSRF
/// and error layers) by `app::pages`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list_webhooks).post(create_webhook))
        .route("/webhooks/{id}", get(show_webhook).post(update_webhook))
        .route("/webhooks/{id}/delete", post(delete_webhook))
        .route(
            "/webhooks/deliveries/{id}/replay",
            post(replay_webhook_delivery),
        )
}

/// The checkbox of an event type is named `event.<type>`.
const EVENT_PREFIX: &str = "event.";

/// The endpoint form; the same fields create and change an endpoint.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct EndpointForm {
    pub name: String,
    pub url: String,
    /// Empty on every page; on a change, empty keeps the current secret.
    pub secret: String,
    /// The "Every event" checkbox: sent (as "on") only when ticked.
    pub all_events: Option<String>,
    pub active: Option<String>,
    /// The ticked `event.<type>` checkboxes (and the CSRF token).
    #[serde(flatten)]
    pub rest: BTreeMap<String, String>,
}

const ENDPOINT_FIELDS: &[&str] = &["name", "url", "secret", "events"];

/// One event type's checkbox.
pub struct EventChoice {
    pub field: String,
    pub name: &'static str,
    pub checked: bool,
}

impl EndpointForm {
    fn new_endpoint() -> Self {
        Self {
            all_events: Some("on".into()),
            active: Some("on".into()),
            ..Default::default()
        }
    }

    fn of(e: &webhook_endpoint::Model) -> Self {
        let subscription = Subscription::from_column(&e.event_types);
        let rest = match &subscription {
            Subscription::All => BTreeMap::new(),
            Subscription::Only(types) => types
                .iter()
                .map(|t| (format!("{EVENT_PREFIX}{t}"), "on".to_string()))
                .collect(),
        };
        Self {
            name: e.name.clone(),
            url: e.url.clone(),
            secret: String::new(),
            all_events: (subscription == Subscription::All).then(|| "on".into()),
            active: e.active.then(|| "on".into()),
            rest,
        }
    }

    pub fn all_ticked(&self) -> bool {
        self.all_events.is_some()
    }

    pub fn active_ticked(&self) -> bool {
        self.active.is_some()
    }

    pub fn event_choices(&self) -> Vec<EventChoice> {
        EventType::ALL
            .iter()
            .map(|t| {
                let field = format!("{EVENT_PREFIX}{t}");
                EventChoice {
                    checked: self.rest.contains_key(&field),
                    field,
                    name: t.as_str(),
                }
            })
            .collect()
    }

    fn input(&self) -> EndpointInput {
        let events = if self.all_ticked() {
            vec!["*".to_string()]
        } else {
            self.rest
                .keys()
                .filter_map(|k| k.strip_prefix(EVENT_PREFIX))
                .map(str::to_string)
                .collect()
        };
        EndpointInput {
            name: self.name.clone(),
            url: self.url.clone(),
            secret: Some(Secret::new(self.secret.clone())).filter(|s| !s.expose().is_empty()),
            events: Some(events),
            active: self.active_ticked(),
        }
    }

    /// The form without the secret typed into it, to be shown again.
    fn without_secret(mut self) -> Self {
        self.secret.clear();
        self
    }
}

pub struct EndpointRow {
    pub id: i32,
    pub name: String,
    pub url: String,
    pub events: String,
    pub active: bool,
}

fn events_text(e: &webhook_endpoint::Model) -> String {
    match Subscription::from_column(&e.event_types) {
        Subscription::All => "every event".into(),
        only => only.names().join(", "),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    page: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "webhooks/endpoints.html")]
pub struct EndpointsPage {
    chrome: Chrome,
    rows: Vec<EndpointRow>,
    pager: Pager,
    form: EndpointForm,
    errors: Errors,
}

async fn endpoints_page(
    state: &AppState,
    chrome: Chrome,
    query: &PageQuery,
    form: EndpointForm,
    errors: Errors,
) -> Result<EndpointsPage, AppError> {
    let page = page_request(&query.page);
    let (endpoints, total) = service::list_endpoints(&state.db.main, page).await?;
    let rows: Vec<EndpointRow> = endpoints
        .iter()
        .map(|e| EndpointRow {
            id: e.id,
            name: e.name.clone(),
            url: e.url.clone(),
            events: events_text(e),
            active: e.active,
        })
        .collect();
    Ok(EndpointsPage {
        chrome: chrome.at("webhooks", "Webhooks"),
        pager: Pager::new("/webhooks", vec![], page.page, total, rows.len()),
        rows,
        form,
        errors,
    })
}

pub async fn list_webhooks(
    staff: Staff<Admin>,
    Query(query): Query<PageQuery>,
) -> Result<EndpointsPage, AppError> {
    let chrome = staff.chrome().await?;
    let form = EndpointForm::new_endpoint();
    endpoints_page(&staff.state, chrome, &query, form, Errors::default()).await
}

pub async fn create_webhook(
    staff: Staff<Admin>,
    Form(form): Form<EndpointForm>,
) -> Result<Response, AppError> {
    let created = service::create_endpoint(
        staff.db(),
        &staff.state.app_key,
        &staff.actor,
        &form.input(),
    )
    .await;
    match created {
        Ok(endpoint) => {
            let message = format!("Webhook endpoint “{}” created.", endpoint.name);
            Ok(staff
                .done(message, format!("/webhooks/{}", endpoint.id))
                .await)
        }
        Err(WebhookError::Invalid(fields)) => {
            let errors = Errors::from_fields(fields, ENDPOINT_FIELDS);
            let chrome = staff.chrome().await?;
            let form = form.without_secret();
            let page =
                endpoints_page(&staff.state, chrome, &PageQuery::default(), form, errors).await?;
            again(StatusCode::UNPROCESSABLE_ENTITY, page)
        }
        Err(e) => Err(e.into()),
    }
}

pub struct EndpointView {
    pub id: i32,
    pub name: String,
    pub url: String,
    pub events: String,
    pub active: bool,
    pub created: String,
    pub updated: String,
}

pub struct DeliveryRow {
    pub id: i64,
    pub event_type: String,
    pub event_id: String,
    pub status: String,
    pub attempts: i32,
    pub last_status_code: String,
    pub last_error: String,
    pub next_attempt: String,
    pub created: String,
    pub delivered: String,
}

impl From<&webhook_delivery::Model> for DeliveryRow {
    fn from(d: &webhook_delivery::Model) -> Self {
        Self {
            id: d.id,
            event_type: d.event_type.clone(),
            event_id: d.event_id.clone(),
            status: d.status.clone(),
            attempts: d.attempts,
            last_status_code: dash(&d.last_status_code),
            last_error: dash(&d.last_error),
            next_attempt: if d.status == "pending" {
                when_opt(&d.next_attempt_at)
            } else {
                "—".into()
            },
            created: when(&d.created_at),
            delivered: when_opt(&d.delivered_at),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "webhooks/endpoint.html")]
pub struct EndpointPage {
    chrome: Chrome,
    endpoint: EndpointView,
    deliveries: Vec<DeliveryRow>,
    pager: Pager,
    form: EndpointForm,
    errors: Errors,
}

async fn endpoint_page(
    state: &AppState,
    chrome: Chrome,
    id: i32,
    query: &PageQuery,
    form: Option<EndpointForm>,
    errors: Errors,
) -> Result<EndpointPage, AppError> {
    let e = service::get_endpoint(&state.db.main, id).await?;
    let page = page_request(&query.page);
    let (deliveries, total) = service::list_deliveries(&state.db.main, id, page).await?;
    let deliveries: Vec<DeliveryRow> = deliveries.iter().map(DeliveryRow::from).collect();
    Ok(EndpointPage {
        chrome: chrome.at("webhooks", format!("Webhook {}", e.name)),
        pager: Pager::new(
            format!("/webhooks/{id}"),
            vec![],
            page.page,
            total,
            deliveries.len(),
        ),
        deliveries,
        form: form.unwrap_or_else(|| EndpointForm::of(&e)),
        endpoint: EndpointView {
            id: e.id,
            events: events_text(&e),
            name: e.name,
            url: e.url,
            active: e.active,
            created: when(&e.created_at),
            updated: when(&e.updated_at),
        },
        errors,
    })
}

const NOT_FOUND: &str = "There is no such webhook endpoint.";

pub async fn show_webhook(
    staff: Staff<Admin>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<EndpointPage, AppError> {
    let chrome = staff.chrome().await?;
    let id = path_id(&id, NOT_FOUND)?;
    endpoint_page(&staff.state, chrome, id, &query, None, Errors::default()).await
}

pub async fn update_webhook(
    staff: Staff<Admin>,
    Path(id): Path<String>,
    Form(form): Form<EndpointForm>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let updated = service::update_endpoint(
        staff.db(),
        &staff.state.app_key,
        &staff.actor,
        id,
        &form.input(),
    )
    .await;
    match updated {
        Ok(endpoint) => {
            let message = format!("Webhook endpoint “{}” saved.", endpoint.name);
            Ok(staff.done(message, format!("/webhooks/{id}")).await)
        }
        Err(WebhookError::Invalid(fields)) => {
            let errors = Errors::from_fields(fields, ENDPOINT_FIELDS);
            let chrome = staff.chrome().await?;
            let form = Some(form.without_secret());
            let query = PageQuery::default();
            let page = endpoint_page(&staff.state, chrome, id, &query, form, errors).await?;
            again(StatusCode::UNPROCESSABLE_ENTITY, page)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_webhook(
    staff: Staff<Admin>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = path_id(&id, NOT_FOUND)?;
    let name = service::get_endpoint(staff.db(), id).await?.name;
    service::delete_endpoint(staff.db(), &staff.actor, id).await?;
    let message = format!("Webhook endpoint “{name}” and its deliveries deleted.");
    Ok(staff.done(message, "/webhooks").await)
}

pub async fn replay_webhook_delivery(
    staff: Staff<Admin>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id: i64 = path_id(&id, "There is no such webhook delivery.")?;
    let delivery = service::replay_delivery(staff.db(), &staff.actor, id).await?;
    let message = format!(
        "Delivery {} of event {} will be sent again within seconds.",
        delivery.id, delivery.event_id
    );
    Ok(staff
        .done(message, format!("/webhooks/{}", delivery.endpoint_id))
        .await)
}
