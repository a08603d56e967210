//! Outbound webhooks: events pushed to billing and CRM systems.
//!
//! An operator registers **endpoints** (a URL, a secret, the event types it
//! takes). When something happens, [`service::emit`] writes one
//! **delivery** row per active endpoint that takes the event; the
//! `webhook-delivery` job ([`delivery::deliver_due`], every 10 seconds)
//! POSTs each signed payload ([`signature`]) and retries with back-off
//! until the receiver answers 2xx. Delivery is at least once: a receiver
//! deduplicates by the event id (`X-Ispd-Delivery`, the payload's `id`).
//!
//! Emitting is called by the rooms where events happen (enforcement) and
//! never fails them: [`service::emit_logged`] logs and goes on. This room
//! knows nothing of them: an event is a type and a JSON `data`.
//!
//! [`service`] holds the rules; [`api`] and [`html`] are the two surfaces
//! over them, both for admins only: the URL can be a credential of the
//! receiver's, and the secret signs what receivers trust.

pub mod api;
pub mod client;
pub mod delivery;
pub mod domain;
pub mod entities;
pub mod html;
pub mod service;
pub mod signature;

use sea_orm::DbErr;

use crate::error::{AppError, FieldErrors};

pub use domain::{
    EventType, QuotaTierCrossed, SessionChangeSettled, SessionEvent, StateChanged, Subscription,
    WebhookEvent,
};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 422, one message per field.
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl WebhookError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        WebhookError::Invalid(FieldErrors::from([(field.to_string(), message.into())]))
    }
}

impl From<WebhookError> for AppError {
    fn from(err: WebhookError) -> Self {
        match err {
            WebhookError::NotFound(what) => AppError::NotFound(what),
            WebhookError::Invalid(fields) => AppError::validation(fields),
            WebhookError::Db(db) => db.into(),
            WebhookError::Internal(err) => AppError::Internal(err),
        }
    }
}
