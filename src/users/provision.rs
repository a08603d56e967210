//! A network user's change, carried to FreeRADIUS's tables at once.
//!
//! The user service writes the main DB (and the user's PPP secrets on its
//! routers). The pages and the API call these wrappers instead, so that a
//! new, changed or deleted subscriber reaches FreeRADIUS without waiting
//! for a sync:
//!
//! - create and update (a partial change is an update): the main DB
//!   first, then the RADIUS rows. A RADIUS failure does not undo the saved
//!   change: the user keeps `radius_sync_pending` (the API and the user's
//!   page show it) and the `radius-retry` job writes the rows later.
//!   Nothing is lost silently.
//! - delete: the RADIUS rows first, so that a deleted subscriber can never
//!   log in again. If the RADIUS database refuses, nothing is deleted (502).
//!   If the delete itself then fails, the user is flagged so that the retry
//!   job puts its rows back.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::entities::network_user;
use super::service::{self, UserChanges, UserInput, UserWrite, UsersError};
use crate::audit::Actor;
use crate::crypto::AppKey;
use crate::db::Databases;
use crate::ipam::service::IpamSettings;
use crate::mikrotik::pool::RouterPool;

pub async fn create_user(
    db: &Databases,
    key: &AppKey,
    settings: IpamSettings,
    actor: &Actor,
    input: &UserInput,
) -> Result<network_user::Model, UsersError> {
    let user = service::create_user(&db.main, key, settings, actor, input).await?;
    Ok(push_to_radius(db, key, user).await)
}

pub async fn update_user(
    db: &Databases,
    key: &AppKey,
    routers: &RouterPool,
    settings: IpamSettings,
    actor: &Actor,
    id: i32,
    input: &UserInput,
) -> Result<UserWrite, UsersError> {
    let written = service::update_user(&db.main, key, routers, settings, actor, id, input).await?;
    Ok(UserWrite {
        user: push_to_radius(db, key, written.user).await,
        ..written
    })
}

/// Changes some of a user's settings: the user as it is now, with
/// `changes` merged over it, goes through [`update_user`], so a partial
/// change meets the same checks, in the same order of steps, as a full
/// replacement. The user is read outside the update's transaction: a
/// change made by someone else in between is overwritten, as it would be
/// by a full replacement built from an earlier read.
pub async fn patch_user(
    db: &Databases,
    key: &AppKey,
    routers: &RouterPool,
    settings: IpamSettings,
    actor: &Actor,
    id: i32,
    changes: UserChanges,
) -> Result<UserWrite, UsersError> {
    let current = service::get_user(&db.main, id).await?;
    let input = UserInput::unchanged(&current).changed(changes);
    update_user(db, key, routers, settings, actor, id, &input).await
}

pub async fn delete_user(
    db: &Databases,
    routers: &RouterPool,
    settings: IpamSettings,
    actor: &Actor,
    id: i32,
) -> Result<UserWrite, UsersError> {
    let user = service::get_user(&db.main, id).await?;
    crate::radius::service::remove_user(&db.radius, &user.username)
        .await
        .map_err(UsersError::Radius)?;
    match service::delete_user_with_router_secrets(&db.main, routers, settings, actor, id).await {
        Ok(written) => Ok(written),
        Err(err) => {
            let flagged = network_user::Entity::update_many()
                .col_expr(network_user::Column::RadiusSyncPending, Expr::value(true))
                .filter(network_user::Column::Id.eq(id))
                .exec(&db.main)
                .await;
            if let Err(flag_err) = flagged {
                tracing::error!(
                    network_user.id = id,
                    error = %flag_err,
                    "a user whose delete failed has no RADIUS rows and could not be flagged; run `ispd radius sync-users`"
                );
            }
            Err(err)
        }
    }
}

/// Writes the user's RADIUS rows now; returns the user as it now is (with
/// its flag cleared, or still set when RADIUS refused).
async fn push_to_radius(
    db: &Databases,
    key: &AppKey,
    user: network_user::Model,
) -> network_user::Model {
    match crate::radius::service::sync_user_by_id(&db.main, &db.radius, key, user.id).await {
        Ok(_) => service::get_user(&db.main, user.id).await.unwrap_or(user),
        Err(err) => {
            tracing::warn!(
                network_user.id = user.id,
                error = %err,
                "RADIUS write failed; the user stays flagged for the radius-retry job"
            );
            user
        }
    }
}
