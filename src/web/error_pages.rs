//! Error answers of the pages: a sign-in redirect for 401, an inline
//! message for htmx, a full page otherwise; and the pages' 404.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::access::StaffUser;
use crate::app::AppState;
use crate::error::{AppError, ErrorInfo};
use crate::web::layout::Chrome;

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
    let user = request.extensions().get::<StaffUser>().cloned();
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
        let chrome = match Chrome::build(&state, session.as_ref(), user).await {
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
