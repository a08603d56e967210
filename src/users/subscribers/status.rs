//! The audit entry of a status change made for a reason (suspend, resume,
//! disable), beside the update that made it.

use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::audit::{self, Actor};
use crate::users::domain::UserStatus;
use crate::users::service::{get_user, UsersError};

/// Records `network_user.suspend` (`.resume`, `.disable`) with the reason
/// the caller gave, for the status the user now has.
pub async fn record_status_change(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: i32,
    status: UserStatus,
    reason: Option<&str>,
) -> Result<(), UsersError> {
    let user = get_user(db, id).await?;
    let action = match status {
        UserStatus::Active => "network_user.resume",
        UserStatus::Suspended => "network_user.suspend",
        UserStatus::Disabled => "network_user.disable",
    };
    audit::record(
        db,
        actor,
        action,
        "network_user",
        Some(id.to_string()),
        json!({"username": user.username, "status": user.status, "reason": reason}),
    )
    .await?;
    Ok(())
}
