//! One error type for every HTTP surface.
//!
//! `AppError` renders as the JSON body every /api/v1 client sees:
//! `{"error": {"code", "message", "fields"?}}`. The HTML routes pass error
//! responses through `web::error_pages::render_errors`, which reads the
//! [`ErrorInfo`] extension left on the response and shows a page instead.
//! Internal errors are logged once and never sent.

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Messages per field, for 422 answers.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request could not be read (malformed JSON, bad query).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid credentials.
    #[error("sign in or send a valid API token")]
    Unauthenticated,
    /// 403: signed in, but the role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    /// 409: the request conflicts with the current state.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413.
    #[error("the request body is too large (at most {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: the input was read but is not valid; one message per field.
    #[error("{message}")]
    Validation {
        message: String,
        fields: FieldErrors,
    },
    /// 429.
    #[error("too many requests: try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// 503 with Retry-After.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },
    /// 502: an upstream system (a router) failed or refused; the message
    /// names it.
    #[error("{message}")]
    BadGateway { code: &'static str, message: String },
    /// 504: an upstream system (a router) did not answer in time.
    #[error("{message}")]
    GatewayTimeout { code: &'static str, message: String },
    /// 500: details are logged, not sent.
    #[error("something went wrong on our side; it has been logged")]
    Internal(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        AppError::Internal(err.into())
    }
}

impl From<crate::staff::service::StaffError> for AppError {
    fn from(err: crate::staff::service::StaffError) -> Self {
        use crate::staff::service::StaffError;
        match err {
            StaffError::UsernameTaken(_) => AppError::Conflict {
                code: "username_taken",
                message: err.to_string(),
            },
            StaffError::NoSuchUser(_) | StaffError::NoSuchToken(_) => {
                AppError::NotFound(err.to_string())
            }
            StaffError::TokenLifetime(message) => AppError::invalid("expires_at", message),
            // Two requests raced past the service's check; the unique
            // index on staff_users.username settled it.
            StaffError::Db(db)
                if matches!(
                    db.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                AppError::Conflict {
                    code: "conflict",
                    message: "the change conflicts with an existing record".into(),
                }
            }
            StaffError::Db(db) => db.into(),
        }
    }
}

impl AppError {
    pub fn not_found(what: impl Into<String>) -> Self {
        AppError::NotFound(what.into())
    }

    pub fn forbidden_for_role() -> Self {
        AppError::Forbidden("your role does not allow this".into())
    }

    /// A 422 with one field's message.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        AppError::Validation {
            message: format!("{field}: {message}"),
            fields: FieldErrors::from([(field.to_string(), message)]),
        }
    }

    /// A 422 with a message for each field in `fields` (none empty).
    pub fn validation(fields: FieldErrors) -> Self {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        let message = match names.as_slice() {
            [one] => format!("{one}: {}", fields[*one]),
            _ => format!("these fields are not valid: {}", names.join(", ")),
        };
        AppError::Validation { message, fields }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            AppError::GatewayTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthenticated => "unauthenticated",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::Conflict { code, .. } => code,
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::Validation { .. } => "validation_failed",
            AppError::TooManyRequests { .. } => "rate_limited",
            AppError::Unavailable { .. } => "unavailable",
            AppError::BadGateway { code, .. } | AppError::GatewayTimeout { code, .. } => code,
            AppError::Internal(_) => "internal",
        }
    }
}

/// Left on every error response, so that the HTML layer can render a page
/// for it without parsing the JSON body.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: FieldErrors,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(err) = &self {
            tracing::error!(error = format!("{err:#}"), "request failed");
        }
        let status = self.status();
        let message = self.to_string();
        let fields = match &self {
            AppError::Validation { fields, .. } => fields.clone(),
            _ => FieldErrors::new(),
        };
        let mut error = json!({ "code": self.code(), "message": message });
        if !fields.is_empty() {
            error["fields"] = json!(fields);
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        let headers = response.headers_mut();
        match &self {
            AppError::Unauthenticated => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"ispd\""),
                );
            }
            AppError::TooManyRequests { retry_after_secs }
            | AppError::Unavailable {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response.extensions_mut().insert(ErrorInfo {
            status,
            code: self.code(),
            message,
            fields,
        });
        response
    }
}
