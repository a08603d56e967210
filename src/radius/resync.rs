//! Syncing users on demand and retrying the ones still flagged.
//!
//! Every change to a network user sets `radius_sync_pending` in the main
//! DB; a successful sync clears it (see [`super::service`]). When the
//! RADIUS database refuses a write, the flag stays set, so the user shows
//! as "waiting for sync" and is picked up again:
//!
//! - [`sync_user_now`] (`POST /api/v1/users/{id}/sync-radius`) syncs one
//!   user at once and says what changed, or fails with the RADIUS error
//!   (the user stays flagged);
//! - [`sync_pending_users`] (the `radius-retry` job and `ispd radius
//!   retry`) syncs every flagged user, in batches by id.

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;
use tracing::instrument;

use super::service::{self, Outcome, RadiusError};
use crate::audit::{self, Actor};
use crate::crypto::AppKey;
use crate::error::AppError;
use crate::users::entities::network_user;

/// Flagged users read per batch by [`sync_pending_users`].
pub const RETRY_BATCH_SIZE: u64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum SyncNowError {
    #[error("{0}")]
    NotFound(String),
    /// The RADIUS database failed; the user keeps its flag.
    #[error("the RADIUS database did not take the user's rows: {0}")]
    Radius(#[source] sea_orm::DbErr),
    /// The main database failed, or the password does not decrypt.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<SyncNowError> for AppError {
    fn from(err: SyncNowError) -> Self {
        match err {
            SyncNowError::NotFound(what) => AppError::NotFound(what),
            SyncNowError::Radius(db) => {
                // Logged in full here; the client gets no database text.
                tracing::error!(error = %db, "RADIUS sync failed");
                AppError::BadGateway {
                    code: "radius_unavailable",
                    message: "the RADIUS database did not accept the write; the user stays \
                              flagged for sync and the radius-retry job will try again"
                        .into(),
                }
            }
            SyncNowError::Internal(e) => AppError::Internal(e),
        }
    }
}

/// Syncs one user now: its package's group, then its rows. Audited
/// (`network_user.sync_radius`) with the outcome.
#[instrument(skip_all, fields(network_user.id = id))]
pub async fn sync_user_now(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    key: &AppKey,
    actor: &Actor,
    id: i32,
) -> Result<(network_user::Model, Outcome), SyncNowError> {
    // Read first, so that a main-DB failure is not taken for a RADIUS one.
    let user = network_user::Entity::find_by_id(id)
        .one(main_db)
        .await
        .map_err(|e| SyncNowError::Internal(e.into()))?
        .ok_or_else(|| SyncNowError::NotFound(format!("there is no network user {id}")))?;
    let outcome = match service::sync_user_by_id(main_db, radius_db, key, id).await {
        Ok(outcome) => outcome,
        Err(RadiusError::NotFound(what)) => return Err(SyncNowError::NotFound(what)),
        Err(RadiusError::Db(db)) => {
            audit::record(
                main_db,
                actor,
                "network_user.sync_radius",
                "network_user",
                Some(id.to_string()),
                json!({"username": user.username, "outcome": "failed"}),
            )
            .await
            .map_err(|e| SyncNowError::Internal(e.into()))?;
            return Err(SyncNowError::Radius(db));
        }
        Err(err @ RadiusError::Crypto { .. }) => return Err(SyncNowError::Internal(err.into())),
    };
    audit::record(
        main_db,
        actor,
        "network_user.sync_radius",
        "network_user",
        Some(id.to_string()),
        json!({"username": user.username, "outcome": outcome_name(outcome)}),
    )
    .await
    .map_err(|e| SyncNowError::Internal(e.into()))?;
    let user = network_user::Entity::find_by_id(id)
        .one(main_db)
        .await
        .map_err(|e| SyncNowError::Internal(e.into()))?
        .unwrap_or(user);
    Ok((user, outcome))
}

pub fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Created => "created",
        Outcome::Updated => "updated",
        Outcome::Unchanged => "unchanged",
    }
}

/// What [`sync_pending_users`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryReport {
    /// Flagged users found.
    pub pending: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Users whose password does not decrypt (they stay flagged).
    pub failed: u64,
    /// Set when the RADIUS database failed and the run stopped early; the
    /// remaining users stay flagged for the next run.
    pub stopped_by: Option<String>,
}

impl std::fmt::Display for RetryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} user(s) waiting for RADIUS sync: {} created, {} updated, {} unchanged, {} failed",
            self.pending, self.created, self.updated, self.unchanged, self.failed
        )?;
        if let Some(why) = &self.stopped_by {
            write!(f, "; stopped early: {why}")?;
        }
        Ok(())
    }
}

/// Syncs every user flagged `radius_sync_pending`, [`RETRY_BATCH_SIZE`]
/// at a time in id order. A user whose password does not decrypt is
/// counted as failed and skipped; a RADIUS database error stops the run
/// (the database is most likely down: the rest stay flagged for the next
/// run).
#[instrument(skip_all)]
pub async fn sync_pending_users(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    key: &AppKey,
    batch_size: u64,
) -> Result<RetryReport, sea_orm::DbErr> {
    let mut report = RetryReport::default();
    let mut last_id = i32::MIN;
    'batches: loop {
        let ids: Vec<i32> = network_user::Entity::find()
            .select_only()
            .column(network_user::Column::Id)
            .filter(network_user::Column::RadiusSyncPending.eq(true))
            .filter(network_user::Column::Id.gt(last_id))
            .order_by_asc(network_user::Column::Id)
            .limit(batch_size.max(1))
            .into_tuple()
            .all(main_db)
            .await?;
        let Some(&last) = ids.last() else { break };
        last_id = last;
        report.pending += ids.len() as u64;
        for id in ids {
            match service::sync_user_by_id(main_db, radius_db, key, id).await {
                Ok(Outcome::Created) => report.created += 1,
                Ok(Outcome::Updated) => report.updated += 1,
                Ok(Outcome::Unchanged) => report.unchanged += 1,
                // Deleted since it was read: nothing to sync.
                Err(RadiusError::NotFound(_)) => report.pending -= 1,
                Err(err @ RadiusError::Crypto { .. }) => {
                    tracing::error!(network_user.id = id, error = %err, "RADIUS retry skipped a user");
                    report.failed += 1;
                }
                Err(RadiusError::Db(db)) => {
                    tracing::error!(network_user.id = id, error = %db, "RADIUS retry stopped");
                    report.stopped_by = Some(db.to_string());
                    break 'batches;
                }
            }
        }
    }
    tracing::info!(
        pending = report.pending,
        created = report.created,
        updated = report.updated,
        unchanged = report.unchanged,
        failed = report.failed,
        stopped_early = report.stopped_by.is_some(),
        "RADIUS retry finished"
    );
    Ok(report)
}
