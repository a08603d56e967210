//! The PPP secrets of network users (subscribers) on the routers their
//! package names: pushed, recorded and undone by the users service when a
//! subscriber changes.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use tracing::instrument;

use crate::mikrotik::entities::{mikrotik_pppoe_user, mikrotik_router};
use crate::mikrotik::link::RouterLink;
use crate::mikrotik::pool::RouterPool;
use crate::mikrotik::pppoe::service::{
    fill_row, locate_secret, secret_refused, NetworkUserSecret, SecretValues, PPPOE_STATUS_DISABLED,
};
use crate::mikrotik::routers::service::find_router;
use crate::mikrotik::service::MikrotikError;

/// One secret changed for a network user, remembered so that it can be
/// recorded with the user's write or undone if that write fails.
#[derive(Debug)]
struct LinkedChange {
    row: mikrotik_pppoe_user::Model,
    router: mikrotik_router::Model,
    item_id: String,
    old: SecretValues,
    /// None: the secret was removed.
    new: Option<SecretValues>,
    /// The new password, encrypted for the row.
    sealed_password: Option<String>,
}

/// The secrets a network user's change pushed to its routers. Pass it to
/// [`record_network_user_secrets`] inside the user's transaction, or to
/// [`undo_network_user_secrets`] if that transaction fails.
#[derive(Debug, Default)]
#[must_use]
pub struct PushedSecrets {
    changes: Vec<LinkedChange>,
}

impl PushedSecrets {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Brings the secrets of a network user on its routers (the PPPoE users
/// linked to it) in line with `desired`, or removes them when `desired` is
/// None (the user is being deleted). Routers first: if one fails, those
/// already changed are set back, and nothing is recorded. Secrets removed
/// from a router by hand are added back on an update.
#[instrument(skip_all, fields(network_user.id = network_user_id))]
pub async fn push_network_user_secrets(
    db: &impl ConnectionTrait,
    routers: &RouterPool,
    network_user_id: i32,
    desired: Option<&NetworkUserSecret>,
) -> Result<PushedSecrets, MikrotikError> {
    let key = routers.key();
    let rows = mikrotik_pppoe_user::Entity::find()
        .filter(mikrotik_pppoe_user::Column::NetworkUserId.eq(network_user_id))
        .all(db)
        .await?;
    let mut pushed = PushedSecrets::default();
    for row in rows {
        let router = find_router(db, row.router_id).await?;
        match push_one(routers, &router, &row, desired).await {
            Ok(Some(change)) => pushed.changes.push(LinkedChange {
                sealed_password: change
                    .2
                    .as_ref()
                    .map(|new| key.encrypt(new.password.expose())),
                row,
                router,
                item_id: change.0,
                old: change.1,
                new: change.2,
            }),
            Ok(None) => {}
            Err(err) => {
                undo_network_user_secrets(routers, pushed).await;
                return Err(secret_refused(err));
            }
        }
    }
    Ok(pushed)
}

type OneChange = (String, SecretValues, Option<SecretValues>);

async fn push_one(
    routers: &RouterPool,
    router: &mikrotik_router::Model,
    row: &mikrotik_pppoe_user::Model,
    desired: Option<&NetworkUserSecret>,
) -> Result<Option<OneChange>, MikrotikError> {
    let key = routers.key();
    let mut link = RouterLink::new(router, routers);
    async {
        let found = locate_secret(&mut link, row).await?;
        match (desired, found) {
            (None, None) => Ok(None),
            (None, Some((item_id, old))) => {
                link.remove_or_nothing(&item_id, &old).await?;
                Ok(Some((item_id, old, None)))
            }
            (Some(desired), found) => {
                let base = match &found {
                    Some((_, old)) => old.clone(),
                    None => SecretValues {
                        name: row.username.clone(),
                        password: key.decrypt(&row.password_encrypted)?,
                        service: row.service.clone(),
                        profile: row.profile.clone(),
                        local_address: row.local_address.as_deref().and_then(|a| a.parse().ok()),
                        remote_address: row.remote_address.as_deref().and_then(|a| a.parse().ok()),
                        disabled: row.status == PPPOE_STATUS_DISABLED,
                    },
                };
                let mut new = base.clone();
                new.name = desired.username.clone();
                if let Some(password) = &desired.password {
                    new.password = password.clone();
                }
                new.profile = desired.profile.clone();
                new.disabled = desired.disabled;
                match found {
                    Some((item_id, old)) => {
                        if old != new {
                            link.set_or_nothing(&item_id, &old, &new).await?;
                        }
                        Ok(Some((item_id, old, Some(new))))
                    }
                    None => {
                        // Gone from the router: put it back. Its undo is a
                        // removal, recorded as "old = new, item added".
                        let item_id = link.add_or_nothing(&new).await?;
                        Ok(Some((item_id, new.clone(), Some(new))))
                    }
                }
            }
        }
    }
    .await
}

/// Records the pushed secrets on their rows, inside the network user's
/// transaction (deletes the rows when the secrets were removed).
pub async fn record_network_user_secrets(
    txn: &impl ConnectionTrait,
    pushed: &PushedSecrets,
) -> Result<(), DbErr> {
    for change in &pushed.changes {
        match &change.new {
            None => {
                mikrotik_pppoe_user::Entity::delete_by_id(change.row.id)
                    .exec(txn)
                    .await?;
            }
            Some(new) => {
                let mut row: mikrotik_pppoe_user::ActiveModel = change.row.clone().into();
                fill_row(
                    &mut row,
                    new,
                    &change.item_id,
                    change.sealed_password.clone(),
                );
                row.update(txn).await?;
            }
        }
    }
    Ok(())
}

/// Sets every pushed secret back as it was (re-adds removed ones, removes
/// re-added ones), after the network user's write failed. Failures are
/// logged: there is no one left to return them to. Tried even on a router
/// that is backed off: the changes were made moments ago.
pub async fn undo_network_user_secrets(routers: &RouterPool, pushed: PushedSecrets) {
    for change in pushed.changes.into_iter().rev() {
        let mut link = RouterLink::to_set_right(&change.router, routers);
        let undone = match &change.new {
            None => link.add_secret(&change.old).await.map(|_| ()),
            Some(new) if *new == change.old => link.remove_secret(&change.item_id).await,
            Some(new) => link.set_secret(&change.item_id, &change.old, new).await,
        };
        drop(link);
        if let Err(err) = undone {
            tracing::error!(
                mikrotik_router.id = change.router.id,
                router = %change.router.name,
                secret = %change.old.name,
                error = %err,
                "a network user's write failed and its PPP secret could not be set back on the router"
            );
        }
    }
}

/// The routers that keep a PPP secret of this network user.
pub async fn routers_of_network_user(
    db: &impl ConnectionTrait,
    network_user_id: i32,
) -> Result<Vec<i32>, DbErr> {
    let mut ids: Vec<i32> = mikrotik_pppoe_user::Entity::find()
        .filter(mikrotik_pppoe_user::Column::NetworkUserId.eq(network_user_id))
        .all(db)
        .await?
        .into_iter()
        .map(|row| row.router_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}
