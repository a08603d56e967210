//! What every page shares: the signed-in staff member, the navigation, the
//! CSRF token, flash messages and the asset links.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tower_sessions::Session;

use crate::access::Role;
use crate::access::StaffUser;
use crate::app::AppState;
use crate::error::AppError;
use crate::web::assets::Assets;
use crate::web::flash::{self, Flash};

pub struct NavItem {
    pub key: &'static str,
    pub label: &'static str,
    pub href: &'static str,
    pub min_role: Role,
}

/// The side navigation, in order. Items above a member's role are hidden.
pub const NAV: &[NavItem] = &[
    nav("dashboard", "Dashboard", "/", Role::Viewer),
    nav("pools", "IP Pools", "/ipam/pools", Role::Viewer),
    nav("subnets", "Subnets", "/ipam/subnets", Role::Viewer),
    nav(
        "allocations",
        "Allocations",
        "/ipam/allocations",
        Role::Viewer,
    ),
    nav("history", "Address history", "/ipam/history", Role::Viewer),
    nav("users", "Network Users", "/users", Role::Viewer),
    nav("packages", "Packages", "/packages", Role::Viewer),
    nav("policies", "Policies", "/policies", Role::Viewer),
    nav(
        "accounting",
        "RADIUS Accounting",
        "/radius/accounting",
        Role::Viewer,
    ),
    nav("online", "Online users", "/radius/online", Role::Viewer),
    nav("nas", "NAS", "/radius/nas", Role::Viewer),
    nav("routers", "Routers", "/mikrotik/routers", Role::Viewer),
    nav("pppoe", "PPPoE Users", "/mikrotik/pppoe", Role::Viewer),
    nav(
        "live-sessions",
        "Live Sessions",
        "/mikrotik/sessions",
        Role::Viewer,
    ),
    nav("jobs", "Jobs", "/jobs", Role::Viewer),
    nav("audit", "Audit log", "/audit", Role::Viewer),
    nav("webhooks", "Webhooks", "/webhooks", Role::Admin),
    nav("tokens", "API tokens", "/tokens", Role::Admin),
    nav("staff", "Staff", "/staff", Role::Admin),
];

const fn nav(
    key: &'static str,
    label: &'static str,
    href: &'static str,
    min_role: Role,
) -> NavItem {
    NavItem {
        key,
        label,
        href,
        min_role,
    }
}

/// The page frame. Handlers take it as an extractor and name the active
/// navigation item with [`Chrome::at`].
pub struct Chrome {
    pub assets: Arc<Assets>,
    pub user: Option<StaffUser>,
    pub csrf_token: String,
    pub flashes: Vec<Flash>,
    pub active: &'static str,
    pub title: String,
}

impl Chrome {
    pub fn at(mut self, active: &'static str, title: impl Into<String>) -> Self {
        self.active = active;
        self.title = title.into();
        self
    }

    pub fn nav(&self) -> impl Iterator<Item = &'static NavItem> + '_ {
        let role = self.user.as_ref().map(|u| u.role);
        NAV.iter()
            .filter(move |item| role.is_some_and(|role| role >= item.min_role))
    }

    pub fn can(&self, role: Role) -> bool {
        self.user.as_ref().is_some_and(|u| u.role >= role)
    }

    pub async fn build(
        state: &AppState,
        session: Option<&Session>,
        user: Option<StaffUser>,
    ) -> Result<Self, AppError> {
        // Only a signed-in member's page makes a token (and so a session
        // row): an anonymous page view stores nothing, and the login page
        // asks for its token itself (account::login_page).
        let (csrf_token, flashes) = match session {
            Some(session) if user.is_some() => (
                crate::web::csrf::token_for(session).await?,
                flash::take(session).await,
            ),
            Some(session) => (
                crate::web::csrf::existing_token(session)
                    .await?
                    .unwrap_or_default(),
                Vec::new(),
            ),
            None => (String::new(), Vec::new()),
        };
        Ok(Self {
            assets: state.assets.clone(),
            user,
            csrf_token,
            flashes,
            active: "",
            title: String::new(),
        })
    }
}

impl FromRequestParts<AppState> for Chrome {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = parts.extensions.get::<Session>().cloned();
        let user = parts.extensions.get::<StaffUser>().cloned();
        Self::build(state, session.as_ref(), user).await
    }
}
