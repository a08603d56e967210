//! Network users and service packages: the staff pages. Every handler
//! parses the form, calls one function of [`super::service`] and builds a
//! view; the rules live in the service.
//!
//! Forms post normally: a redirect with a flash message on success, the
//! same page with inline messages (422) or a notice (409) otherwise. The
//! users list's search form also carries `hx-get`: htmx then swaps only the
//! results (the `results` block of `users/users.html`).
//!
//! A user's password never appears in a page, not even in a form sent
//! back with errors, except on the answer to "Reveal password" (operator
//! and up, a POST with the CSRF token, audited by the service), which is
//! sent with `Cache-Control: no-store`.

use std::collections::HashMap;

use axum::routing::{get, post};
use axum::Router;
use sea_orm::Order;

use super::domain::mikrotik_rate_limit;
use super::entities::service_package;
use super::service::{self, PackageFilter, UsersError};
use crate::app::AppState;
use crate::error::{AppError, FieldErrors};
use crate::ipam::entities::ip_subnet;
use crate::ipam::service::{self as ipam, SubnetFilter};
use crate::query::{PageRequest, Sort, MAX_PER_PAGE};
use crate::web::forms::{self, Choice};

pub use crate::users::packages::html::*;
pub use crate::users::subscribers::html::*;

/// The users and packages pages; merged into the staff router (behind its
/// auth, CSRF and error layers) by `web::router`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users.csv", get(export_users))
        .route("/users/new", get(new_user))
        .route("/users/{id}", get(show_user).post(update_user))
        .route("/users/{id}/delete", post(delete_user))
        .route("/users/{id}/reveal-password", post(reveal_password))
        .route("/packages", get(list_packages).post(create_package))
        .route("/packages/{id}", get(show_package).post(update_package))
        .route("/packages/{id}/delete", post(delete_package))
}

pub(crate) const STATUSES: [&str; 3] = ["active", "suspended", "disabled"];
pub(crate) const SERVICE_TYPES: [&str; 3] = ["pppoe", "hotspot", "static"];

// ------------------------------------------------------------ view helpers

/// The field messages of a service check that failed.
pub(crate) fn problems<T>(checked: Result<T, UsersError>) -> FieldErrors {
    match checked {
        Err(UsersError::Invalid(fields)) => fields,
        _ => FieldErrors::new(),
    }
}

/// Messages found reading the form, plus the service's own.
pub(crate) fn merged(early: FieldErrors, later: FieldErrors) -> UsersError {
    UsersError::Invalid(forms::merged(early, later))
}

fn all() -> PageRequest {
    PageRequest {
        page: 1,
        per_page: MAX_PER_PAGE,
    }
}

/// Every package, by name.
async fn all_packages(state: &AppState) -> Result<Vec<service_package::Model>, AppError> {
    let (packages, _) = service::list_packages(
        &state.db.main,
        &PackageFilter::default(),
        &Sort::by(vec![(service_package::Column::Name, Order::Asc)]),
        all(),
    )
    .await?;
    Ok(packages)
}

pub(crate) async fn package_names(state: &AppState) -> Result<HashMap<i32, String>, AppError> {
    let packages = all_packages(state).await?;
    Ok(packages.into_iter().map(|p| (p.id, p.name)).collect())
}

pub(crate) async fn package_choices(
    state: &AppState,
    current: &str,
) -> Result<Vec<Choice>, AppError> {
    Ok(all_packages(state)
        .await?
        .into_iter()
        .map(|p| {
            let label = format!("{} ({})", p.name, mikrotik_rate_limit(&p));
            Choice::new(p.id.to_string(), label, current)
        })
        .collect())
}

pub(crate) async fn subnet_choices(
    state: &AppState,
    current: &str,
) -> Result<Vec<Choice>, AppError> {
    let (subnets, _) = ipam::list_subnets(
        &state.db.main,
        &SubnetFilter::default(),
        &Sort::by(vec![(ip_subnet::Column::NetworkKey, Order::Asc)]),
        all(),
    )
    .await?;
    Ok(subnets
        .into_iter()
        .map(|s| {
            let label = match &s.description {
                Some(d) if !d.is_empty() => format!("{} ({d})", ipam::subnet_label(&s)),
                _ => ipam::subnet_label(&s),
            };
            Choice::new(s.id.to_string(), label, current)
        })
        .collect())
}
