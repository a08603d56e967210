//! Setting a subscriber's status alone (suspend, resume), as a billing
//! system does: no other field is read or written, so a status change
//! never races with an edit of the rest.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;
use tracing::instrument;

use super::service::find_user;
use crate::audit::{self, Actor};
use crate::db::begin_write;
use crate::users::domain::UserStatus;
use crate::users::entities::network_user;
use crate::users::service::UsersError;

/// Sets the user's status and marks it for RADIUS sync; the audit entry is
/// `network_user.suspend` (or `.resume`, `.disable`) with the reason. A
/// user already in that status is left as is (and audited all the same:
/// the caller asked).
#[instrument(skip_all, fields(network_user.id = id, status = status.as_str()))]
pub async fn set_status(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
    status: UserStatus,
    reason: Option<&str>,
) -> Result<network_user::Model, UsersError> {
    let txn = begin_write(db).await?;
    let user = find_user(&txn, id).await?;
    if user.status != status.as_str() {
        network_user::Entity::update_many()
            .col_expr(network_user::Column::Status, Expr::value(status.as_str()))
            .col_expr(network_user::Column::RadiusSyncPending, Expr::value(true))
            .col_expr(
                network_user::Column::UpdatedAt,
                Expr::value(Utc::now().fixed_offset()),
            )
            .filter(network_user::Column::Id.eq(id))
            .exec(&txn)
            .await?;
    }
    let action = match status {
        UserStatus::Active => "network_user.resume",
        UserStatus::Suspended => "network_user.suspend",
        UserStatus::Disabled => "network_user.disable",
    };
    audit::record(
        &txn,
        actor,
        action,
        "network_user",
        Some(id.to_string()),
        json!({"username": user.username, "from": user.status, "to": status.as_str(), "reason": reason}),
    )
    .await?;
    let user = find_user(&txn, id).await?;
    txn.commit().await?;
    Ok(user)
}
