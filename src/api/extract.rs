//! Extractors whose rejections are `AppError`s, so that every refusal of
//! the API has the one JSON error shape.

use axum::extract::rejection::{
    BytesRejection, FailedToBufferBody, JsonRejection, PathRejection, QueryRejection,
};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{AppError, FieldErrors};

/// A JSON body. Without `Content-Type: application/json`: 415. Not JSON:
/// 400. JSON of the wrong shape (a missing field, a string for a number):
/// 422 naming the field. Over the body limit: 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match <axum::Json<T> as FromRequest<S>>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// An optional JSON body (`Option<ApiJson<T>>`): none when the request has
/// no `Content-Type` (a bare `POST`), else read as [`ApiJson`] reads it.
impl<S, T> OptionalFromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if !req.headers().contains_key(axum::http::header::CONTENT_TYPE) {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

fn json_rejection(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType(
            "send the body as JSON, with Content-Type: application/json".into(),
        ),
        JsonRejection::JsonSyntaxError(err) => AppError::BadRequest(format!(
            "the body is not valid JSON: {}",
            serde_detail(&err)
        )),
        JsonRejection::JsonDataError(err) => data_error(&err),
        JsonRejection::BytesRejection(BytesRejection::FailedToBufferBody(
            FailedToBufferBody::LengthLimitError(_),
        )) => AppError::PayloadTooLarge {
            limit: super::MAX_BODY_BYTES,
        },
        JsonRejection::BytesRejection(_) => {
            AppError::BadRequest("the request body could not be read".into())
        }
        other => AppError::BadRequest(other.body_text()),
    }
}

/// The serde_path_to_error error inside an axum JSON rejection.
fn path_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a serde_path_to_error::Error<serde_json::Error>> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(found) = e.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>() {
            return Some(found);
        }
        source = e.source();
    }
    None
}

/// serde_json's message without the position, which means little to a
/// client that did not lay out the JSON by hand.
fn serde_detail(err: &(dyn std::error::Error + 'static)) -> String {
    let message = match path_error(err) {
        Some(e) => e.inner().to_string(),
        None => err.to_string(),
    };
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    }
}

fn data_error(err: &(dyn std::error::Error + 'static)) -> AppError {
    let detail = serde_detail(err);
    let path = path_error(err)
        .map(|e| e.path().to_string())
        .filter(|p| p != ".");
    // A missing field is reported at the object that lacks it.
    let missing = detail
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .map(|name| match &path {
            Some(parent) => format!("{parent}.{name}"),
            None => name.to_string(),
        });
    match missing.or(path) {
        Some(field) => {
            let message = if detail.starts_with("missing field") {
                "is required".to_string()
            } else {
                detail
            };
            AppError::validation(FieldErrors::from([(field, message)]))
        }
        None => AppError::Validation {
            message: format!("the body does not have the expected shape: {detail}"),
            fields: FieldErrors::new(),
        },
    }
}

/// Query parameters; a query that cannot be read at all is a 400 (values
/// are validated by the handlers, which answer 422 per parameter).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|rejection: QueryRejection| {
                AppError::BadRequest(format!(
                    "the query string could not be read: {}",
                    serde_detail(&rejection)
                ))
            })
    }
}

/// Path parameters; a segment of the wrong type (`/tokens/abc`) names no
/// resource, so it is a 404.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|rejection: PathRejection| match rejection {
                PathRejection::FailedToDeserializePathParams(_) => {
                    AppError::not_found("there is nothing at this address")
                }
                other => AppError::Internal(anyhow::anyhow!("path parameters: {other}")),
            })
    }
}
