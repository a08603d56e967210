//! The JSON API under `/api/v1`, its OpenAPI document and the Swagger UI.
//!
//! Every route needs an API token or a staff session (see [`auth`]),
//! except `GET /api/v1/health`. Every answer that is not a success has the
//! body of [`crate::error::AppError`]; docs/API.md has the conventions.

pub mod auth;
pub mod docs;
pub mod extract;
pub mod merge_patch;
pub mod system;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header;
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json, Router};
use tower_sessions::Session;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::access::StaffUser;
use crate::app::AppState;
use crate::error::AppError;
use auth::ApiCaller;

/// Where the API lives.
pub const PREFIX: &str = "/api/v1";
/// Where the Swagger UI lives.
pub const DOCS_PATH: &str = "/api/docs";
/// Larger request bodies are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A staff role, as the API spells it (for the documentation).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum RoleName {
    Admin,
    Operator,
    Viewer,
}

/// The API's own routes (health, who am I, this document) around each
/// room's `rooms` (which `app::api_routes` brings together).
fn routes(rooms: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(system::health))
        .routes(routes!(system::me))
        .routes(routes!(openapi_json))
        .merge(rooms)
}

/// The OpenAPI 3.1 document of every `/api/v1` route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, paths) = routes(crate::app::api_routes()).split_for_parts();
    document(paths)
}

/// The document of these paths: nested under [`PREFIX`], with the standard
/// responses added to each operation.
fn document(paths: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut document = docs::ApiDoc::openapi().nest(PREFIX, paths);
    utoipa::Modify::modify(&docs::StandardResponses, &mut document);
    document
}

/// `/api/v1/...` (the rooms' endpoints) and the Swagger UI. Must sit
/// inside the session and authentication layer (`app::build_router` puts
/// it there).
pub fn router(state: &AppState, rooms: OpenApiRouter<AppState>) -> Router<AppState> {
    let (api, paths) = routes(rooms).split_for_parts();
    let document = Arc::new(document(paths));
    let mut api = api
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn(csrf_for_cookies))
        // Answers carry one-time tokens and subscriber data.
        .layer(crate::web::no_store())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(Extension(document));
    if state.rate_limit.is_some() {
        api = api.layer(from_fn_with_state(state.clone(), auth::limit_api));
    }
    let swagger = SwaggerUi::new(DOCS_PATH).config(
        utoipa_swagger_ui::Config::new([format!("{PREFIX}/openapi.json")])
            .persist_authorization(true)
            .display_operation_id(true),
    );
    let swagger = Router::from(swagger).route_layer(from_fn(docs_need_sign_in));
    Router::new().nest(PREFIX, api).merge(swagger)
}

/// The Swagger UI loads the document with the browser's session: send a
/// visitor who has none to the login page first, and back here after.
async fn docs_need_sign_in(request: Request, next: Next) -> Response {
    if request.extensions().get::<StaffUser>().is_some() {
        return next.run(request).await;
    }
    let back: String = form_urlencoded::byte_serialize(request.uri().path().as_bytes()).collect();
    Redirect::to(&format!("/login?next={back}")).into_response()
}

/// The OpenAPI document (3.1) of this API.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "system",
    operation_id = "get_openapi",
    responses(
        (status = 200, description = "This document.", content_type = "application/json",
            body = Object,
            example = json!({"openapi": "3.1.0", "info": {"title": "ispd API", "version": "0.1.0"},
                "paths": {"/api/v1/health": {"get": {"operationId": "health"}}}})),
    ),
)]
async fn openapi_json(
    _caller: ApiCaller,
    Extension(document): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<Arc<utoipa::openapi::OpenApi>> {
    Json(document)
}

/// Ok when reading the query or body found nothing wrong, else a 422 with
/// a message for each field.
pub fn check(errors: crate::error::FieldErrors) -> Result<(), AppError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::validation(errors))
    }
}

/// 201 with `Location: /api/v1{path}` and the new resource as the body.
pub fn created(path: &str, body: impl serde::Serialize) -> Response {
    (
        axum::http::StatusCode::CREATED,
        [(header::LOCATION, format!("{PREFIX}{path}"))],
        Json(body),
    )
        .into_response()
}

async fn not_found() -> AppError {
    AppError::not_found("there is no API endpoint at this path (see /api/v1/openapi.json)")
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

/// CSRF protection (the staff pages' own check) for requests that the
/// session cookie authenticates. A request with `Authorization` is judged
/// by its token alone (`api::auth`), whatever cookie it also carries, so
/// the cookie lends it nothing and it needs no CSRF token; one with
/// neither has no authority to borrow and goes on, to be refused with 401
/// by the route.
async fn csrf_for_cookies(session: Session, request: Request, next: Next) -> Response {
    let cookie_authenticated = request.headers().contains_key(header::COOKIE)
        && !request.headers().contains_key(header::AUTHORIZATION);
    if cookie_authenticated {
        crate::web::csrf::verify(session, request, next).await
    } else {
        next.run(request).await
    }
}
