//! Security headers on every response.
//!
//! HTML pages get a Content-Security-Policy that allows scripts and styles
//! only from our own origin: every script is the Vite bundle (htmx set-up
//! and the CSRF header live in frontend/main.js), so an injected
//! `<script>` or `onerror=` attribute does not run even if escaping ever
//! failed. Pages cannot be framed (clickjacking), and browsers neither sniff
//! content types nor send our URLs to other sites. HSTS is sent when the
//! public URL is https, so browsers stop trying plain http.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of our own pages.
pub const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The API explorer (vendored swagger-ui) sets element styles from its
/// script, so it needs inline styles; its scripts still come only from us.
const API_DOCS_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; \
     connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
     frame-ancestors 'none'";

const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Whether the headers include Strict-Transport-Security.
#[derive(Clone, Copy, Debug)]
pub struct Hsts(pub bool);

pub async fn add(State(hsts): State<Hsts>, request: Request, next: Next) -> Response {
    let api_docs = request.uri().path().starts_with("/api/docs");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    if is_html(headers) {
        let policy = if api_docs {
            API_DOCS_POLICY
        } else {
            PAGE_POLICY
        };
        set(headers, header::CONTENT_SECURITY_POLICY, policy);
        // For browsers that predate frame-ancestors.
        set(headers, header::X_FRAME_OPTIONS, "DENY");
    }
    if hsts.0 {
        set(headers, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    response
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    headers.insert(name, HeaderValue::from_static(value));
}
