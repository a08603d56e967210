//! The staff pages of the shell: the dashboard, one list per area, and
//! error pages. Each area's own issue replaces its list with full pages.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use tower_sessions::Session;

use crate::app::AppState;
use crate::audit::entities::audit_log;
use crate::error::{AppError, ErrorInfo};
use crate::ipam::entities::{ip_allocation, ip_pool, ip_subnet};
use crate::mikrotik::entities::mikrotik_router;
use crate::users::entities::{network_user, network_user_session};
use crate::web::auth::{AuthSession, SignedIn};
use crate::web::layout::Chrome;
use crate::web::listing::{when, ListQuery, Listing};
use crate::web::pagination::{contains, fetch_page};

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    chrome: Chrome,
    counts: Vec<(&'static str, u64, &'static str)>,
    /// The last `ispd network health-check`, if one has run.
    health: Option<crate::network::health::HealthReport>,
}

pub async fn dashboard(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
) -> Result<DashboardPage, AppError> {
    let db = &state.db.main;
    let counts = vec![
        (
            "IP pools",
            ip_pool::Entity::find().count(db).await?,
            "/ipam/pools",
        ),
        (
            "Subnets",
            ip_subnet::Entity::find().count(db).await?,
            "/ipam/subnets",
        ),
        (
            "Active allocations",
            ip_allocation::Entity::find()
                .filter(ip_allocation::Column::Active.eq(true))
                .count(db)
                .await?,
            "/ipam/allocations",
        ),
        (
            "Network users",
            network_user::Entity::find().count(db).await?,
            "/users",
        ),
        (
            "Router sessions (last sync)",
            network_user_session::Entity::find()
                .filter(network_user_session::Column::Status.eq("active"))
                .count(db)
                .await?,
            "/mikrotik/sessions",
        ),
        (
            "Routers",
            mikrotik_router::Entity::find().count(db).await?,
            "/mikrotik/routers",
        ),
    ];
    Ok(DashboardPage {
        chrome: chrome.at("dashboard", "Dashboard"),
        counts,
        health: crate::network::health::latest(db).await?,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "list.html")]
pub struct ListPage {
    chrome: Chrome,
    heading: &'static str,
    description: &'static str,
    searchable: bool,
    empty_title: &'static str,
    empty_hint: &'static str,
    base_path: &'static str,
    listing: Listing,
}

/// What differs between the list pages.
struct ListSpec {
    nav: &'static str,
    heading: &'static str,
    description: &'static str,
    base_path: &'static str,
    searchable: bool,
    empty_title: &'static str,
    empty_hint: &'static str,
    columns: Vec<&'static str>,
}

impl ListSpec {
    fn render(
        self,
        chrome: Chrome,
        query: &ListQuery,
        rows: Vec<Vec<String>>,
        total: u64,
    ) -> ListPage {
        ListPage {
            chrome: chrome.at(self.nav, self.heading),
            heading: self.heading,
            description: self.description,
            searchable: self.searchable,
            empty_title: self.empty_title,
            empty_hint: self.empty_hint,
            base_path: self.base_path,
            listing: Listing {
                columns: self.columns,
                rows,
                total,
                page: query.page(),
                q: query.search(),
                base_path: self.base_path,
            },
        }
    }
}

pub async fn audit(
    _user: SignedIn,
    chrome: Chrome,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<ListPage, AppError> {
    let mut select = audit_log::Entity::find()
        .order_by_desc(audit_log::Column::CreatedAt)
        .order_by_desc(audit_log::Column::Id);
    let q = query.search();
    if !q.is_empty() {
        select = select.filter(
            sea_orm::Condition::any()
                .add(contains(audit_log::Column::Action, &q))
                .add(contains(audit_log::Column::ActorName, &q))
                .add(contains(audit_log::Column::EntityType, &q)),
        );
    }
    let (entries, total) = fetch_page(&state.db.main, select, query.page_request()).await?;
    let rows = entries
        .into_iter()
        .map(|e| {
            vec![
                when(&e.created_at),
                format!("{} ({})", e.actor_name, e.actor_kind),
                e.action,
                match e.entity_id {
                    Some(id) => format!("{} #{id}", e.entity_type),
                    None => e.entity_type,
                },
                e.details.unwrap_or_default(),
            ]
        })
        .collect();
    Ok(ListSpec {
        nav: "audit",
        heading: "Audit log",
        description: "Every change, who made it and when; newest first.",
        base_path: "/audit",
        searchable: true,
        empty_title: "Nothing has changed yet.",
        empty_hint: "Changes made in the UI, the API and the CLI are recorded here.",
        columns: vec!["When", "Who", "Action", "What", "Details"],
    }
    .render(chrome, &query, rows, total))
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    chrome: Chrome,
    status: u16,
    heading: &'static str,
    message: String,
}

#[derive(Template)]
#[template(path = "partials/error_fragment.html")]
struct ErrorFragment {
    message: String,
}

pub async fn not_found() -> AppError {
    AppError::not_found(
        "There is no page at this address. It may have moved, or the link is mistyped.",
    )
}

/// Turns error responses of the HTML routes into pages: a sign-in redirect
/// for 401, an inline message for htmx requests, a full page otherwise.
pub async fn render_errors(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let session = request.extensions().get::<Session>().cloned();
    let auth = request.extensions().get::<AuthSession>().cloned();
    let is_htmx = request.headers().contains_key("hx-request");
    let method = request.method().clone();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".into());

    let response = next.run(request).await;
    let Some(info) = response.extensions().get::<ErrorInfo>().cloned() else {
        return response;
    };
    let mut headers = response.headers().clone();
    headers.remove(header::CONTENT_TYPE);
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::WWW_AUTHENTICATE);

    if info.status == StatusCode::UNAUTHORIZED {
        let next = if method == Method::GET {
            path_and_query
        } else {
            "/".into()
        };
        let target = format!(
            "/login?next={}",
            form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        if is_htmx {
            let mut response = StatusCode::UNAUTHORIZED.into_response();
            if let Ok(value) = HeaderValue::from_str(&target) {
                response.headers_mut().insert("hx-redirect", value);
            }
            return response;
        }
        return Redirect::to(&target).into_response();
    }

    let mut rendered = if is_htmx {
        let html = ErrorFragment {
            message: info.message.clone(),
        }
        .render()
        .unwrap_or_else(|_| info.message.clone());
        let mut response = (info.status, axum::response::Html(html)).into_response();
        // Show the message in the page's message area, whatever the target.
        response
            .headers_mut()
            .insert("hx-retarget", HeaderValue::from_static("#flash-area"));
        response
            .headers_mut()
            .insert("hx-reswap", HeaderValue::from_static("innerHTML"));
        response
    } else {
        let chrome = match Chrome::build(&state, session.as_ref(), auth.as_ref()).await {
            Ok(chrome) => chrome,
            Err(_) => return (info.status, info.message).into_response(),
        };
        let heading = match info.status {
            StatusCode::NOT_FOUND => "Page not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            StatusCode::INTERNAL_SERVER_ERROR => "Something went wrong",
            s if s.is_client_error() => "This request could not be handled",
            _ => "The service is unavailable",
        };
        let page = ErrorPage {
            chrome: chrome.at("", heading),
            status: info.status.as_u16(),
            heading,
            message: info.message.clone(),
        };
        (info.status, page).into_response()
    };
    for (name, value) in headers.iter() {
        if name == header::RETRY_AFTER || name.as_str().starts_with("x-") || name == header::VARY {
            rendered.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rendered
}
