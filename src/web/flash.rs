//! One-time messages shown on the next page ("Token revoked.").

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

const SESSION_KEY: &str = "flash";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    /// success, error or info: picks the colour.
    pub kind: String,
    pub message: String,
}

pub async fn push(session: &Session, kind: &str, message: impl Into<String>) {
    let mut flashes: Vec<Flash> = session
        .get(SESSION_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    flashes.push(Flash {
        kind: kind.into(),
        message: message.into(),
    });
    if let Err(e) = session.insert(SESSION_KEY, flashes).await {
        tracing::warn!(error = %e, "could not store a flash message");
    }
}

pub async fn success(session: &Session, message: impl Into<String>) {
    push(session, "success", message).await
}

/// Takes the pending messages; they show once.
pub async fn take(session: &Session) -> Vec<Flash> {
    session
        .remove::<Vec<Flash>>(SESSION_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}
