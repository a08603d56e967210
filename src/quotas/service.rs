//! A subscriber's quota this cycle: what it has used, the tier it is in,
//! top-ups, and moving it to the tier its usage says.

use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, Set,
};

use super::entities::quota_usage;
use crate::audit::{self, Actor};
use crate::db::begin_write;
use crate::enforcement::service::{enforce_user, Reason};
use crate::enforcement::{EnforcementError, Reach};
use crate::users::entities::{network_user, service_package};
use crate::users::quota::{percent_of, AnchorDay, ByteSize, Direction, Tier, Tiers};
use crate::users::service::UsersError;
use crate::webhooks::service::emit_logged;
use crate::webhooks::{QuotaTierCrossed, WebhookEvent};

/// A package's quota as it applies to one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub quota_bytes: i64,
    pub direction: Direction,
    pub tiers: Tiers,
    pub anchor: AnchorDay,
}

impl Plan {
    /// The quota of `package` for `user`; None when the package has none.
    pub fn of(user: &network_user::Model, package: &service_package::Model) -> Option<Self> {
        let quota_bytes = package.quota_bytes.filter(|b| *b > 0)?;
        Some(Self {
            quota_bytes,
            direction: package
                .quota_direction
                .as_deref()
                .and_then(|d| d.parse().ok())
                .unwrap_or_default(),
            tiers: Tiers::from_column(package.quota_tiers.as_deref()),
            anchor: cycle_anchor(user, Some(package)),
        })
    }
}

/// The day `user`'s billing cycles start: its own, else its package's,
/// else the 1st.
pub fn cycle_anchor(
    user: &network_user::Model,
    package: Option<&service_package::Model>,
) -> AnchorDay {
    AnchorDay::from_column(user.cycle_anchor_day)
        .or_else(|| package.and_then(|p| AnchorDay::from_column(p.cycle_anchor_day)))
        .unwrap_or(AnchorDay::FIRST)
}

/// A subscriber's usage this cycle against its quota.
#[derive(Debug, Clone)]
pub struct QuotaStatus {
    pub user: network_user::Model,
    /// None when its package has no quota (usage is still counted).
    pub plan: Option<Plan>,
    pub anchor: AnchorDay,
    pub cycle_start: DateTime<Utc>,
    pub resets_at: DateTime<Utc>,
    pub download_bytes: i64,
    pub upload_bytes: i64,
    pub topup_bytes: i64,
}

impl QuotaStatus {
    /// The bytes that count towards the quota.
    pub fn used_bytes(&self) -> i64 {
        let direction = self.plan.as_ref().map(|p| p.direction).unwrap_or_default();
        direction.used(self.download_bytes, self.upload_bytes)
    }

    /// The quota plus this cycle's top-ups; None without a quota.
    pub fn allowance_bytes(&self) -> Option<i64> {
        let plan = self.plan.as_ref()?;
        Some(plan.quota_bytes.saturating_add(self.topup_bytes))
    }

    pub fn percent(&self) -> Option<i64> {
        Some(percent_of(self.used_bytes(), self.allowance_bytes()?))
    }

    /// The tier the usage has reached.
    pub fn tier(&self) -> Option<Tier> {
        let plan = self.plan.as_ref()?;
        plan.tiers
            .reached(self.used_bytes(), self.allowance_bytes()?)
    }

    /// The policy the subscriber should be under: its tier's.
    pub fn desired_policy(&self) -> Option<i32> {
        self.tier().map(|t| t.policy_id)
    }
}

/// The subscribers' quotas and usage in the cycle that `at` falls in,
/// reading their usage rows in one query per 500.
pub async fn quota_statuses_of(
    db: &impl ConnectionTrait,
    subjects: Vec<(network_user::Model, Option<&service_package::Model>)>,
    at: DateTime<Utc>,
) -> Result<Vec<QuotaStatus>, sea_orm::DbErr> {
    let mut statuses = Vec::with_capacity(subjects.len());
    for chunk in subjects.chunks(500) {
        let starts: Vec<DateTime<Utc>> = chunk
            .iter()
            .map(|(user, package)| cycle_anchor(user, *package).cycle_start(at))
            .collect();
        let Some(earliest) = starts.iter().min().copied() else {
            continue;
        };
        let rows: HashMap<(i32, DateTime<Utc>), quota_usage::Model> = quota_usage::Entity::find()
            .filter(quota_usage::Column::UserId.is_in(chunk.iter().map(|(u, _)| u.id)))
            .filter(quota_usage::Column::CycleStart.gte(earliest.fixed_offset()))
            .all(db)
            .await?
            .into_iter()
            .map(|row| ((row.user_id, row.cycle_start.to_utc()), row))
            .collect();
        for ((user, package), cycle_start) in chunk.iter().zip(starts) {
            let anchor = cycle_anchor(user, *package);
            let usage = rows.get(&(user.id, cycle_start));
            statuses.push(QuotaStatus {
                plan: package.and_then(|p| Plan::of(user, p)),
                anchor,
                cycle_start,
                resets_at: anchor.next_cycle_start(at),
                download_bytes: usage.map_or(0, |u| u.download_bytes),
                upload_bytes: usage.map_or(0, |u| u.upload_bytes),
                topup_bytes: usage.map_or(0, |u| u.topup_bytes),
                user: user.clone(),
            });
        }
    }
    Ok(statuses)
}

/// The subscriber `id`'s quota and usage now.
pub async fn quota_status(db: &DatabaseConnection, id: i32) -> Result<QuotaStatus, UsersError> {
    let user = crate::users::service::get_user(db, id).await?;
    let package = match user.package_id {
        Some(package_id) => {
            service_package::Entity::find_by_id(package_id)
                .one(db)
                .await?
        }
        None => None,
    };
    let mut statuses = quota_statuses_of(db, vec![(user, package.as_ref())], Utc::now()).await?;
    Ok(statuses.pop().expect("one status per subject"))
}

/// Adds to the usage row of (`user_id`, `cycle_start`), creating it.
pub(super) async fn add_usage(
    db: &impl ConnectionTrait,
    user_id: i32,
    cycle_start: DateTime<Utc>,
    download: i64,
    upload: i64,
    topup: i64,
) -> Result<(), sea_orm::DbErr> {
    let now = Utc::now().fixed_offset();
    let updated = quota_usage::Entity::update_many()
        .col_expr(
            quota_usage::Column::DownloadBytes,
            Expr::col(quota_usage::Column::DownloadBytes).add(download),
        )
        .col_expr(
            quota_usage::Column::UploadBytes,
            Expr::col(quota_usage::Column::UploadBytes).add(upload),
        )
        .col_expr(
            quota_usage::Column::TopupBytes,
            Expr::col(quota_usage::Column::TopupBytes).add(topup),
        )
        .col_expr(quota_usage::Column::UpdatedAt, Expr::value(now))
        .filter(quota_usage::Column::UserId.eq(user_id))
        .filter(quota_usage::Column::CycleStart.eq(cycle_start.fixed_offset()))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        quota_usage::ActiveModel {
            user_id: Set(user_id),
            cycle_start: Set(cycle_start.fixed_offset()),
            download_bytes: Set(download),
            upload_bytes: Set(upload),
            topup_bytes: Set(topup),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

/// Adds to many usage rows at once: for each (subscriber, cycle), the
/// download and upload bytes; a row that does not exist yet is created.
/// One statement per 200 rows.
pub(super) async fn add_usage_many(
    db: &impl ConnectionTrait,
    sums: &BTreeMap<(i32, DateTime<Utc>), (i64, i64)>,
) -> Result<(), sea_orm::DbErr> {
    let now = Utc::now().fixed_offset();
    let rows: Vec<_> = sums.iter().collect();
    // Adds what the statement brings to what the row holds.
    let grow = |column: &str| match db.get_database_backend() {
        DbBackend::MySql => Expr::cust(format!("{column} + VALUES({column})")),
        _ => Expr::cust(format!("quota_usage.{column} + excluded.{column}")),
    };
    for chunk in rows.chunks(200) {
        let models = chunk
            .iter()
            .map(
                |((user_id, cycle_start), (download, upload))| quota_usage::ActiveModel {
                    user_id: Set(*user_id),
                    cycle_start: Set(cycle_start.fixed_offset()),
                    download_bytes: Set(*download),
                    upload_bytes: Set(*upload),
                    topup_bytes: Set(0),
                    updated_at: Set(now),
                    ..Default::default()
                },
            );
        quota_usage::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([quota_usage::Column::UserId, quota_usage::Column::CycleStart])
                    .value(quota_usage::Column::DownloadBytes, grow("download_bytes"))
                    .value(quota_usage::Column::UploadBytes, grow("upload_bytes"))
                    .update_column(quota_usage::Column::UpdatedAt)
                    .to_owned(),
            )
            .exec(db)
            .await?;
    }
    Ok(())
}

/// What [`reassess`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reassessed {
    Unchanged,
    /// The subscriber moved to another tier (or out of every tier) and the
    /// change was carried to RADIUS and its sessions.
    Moved,
    /// It moved, but carrying it failed; the enforcement job retries it.
    MovedNotEnforced,
}

/// Puts the subscriber in the tier its usage this cycle says: when that
/// is another policy than the one it is under, records it, tells the
/// webhooks (`quota.tier_crossed`) and enforces it at once (a CoA with the
/// tier's rate to each live session).
pub async fn reassess(
    reach: &Reach,
    actor: &Actor,
    status: &QuotaStatus,
) -> Result<Reassessed, EnforcementError> {
    let desired = status.desired_policy();
    let user = &status.user;
    if desired == user.quota_policy_id {
        return Ok(Reassessed::Unchanged);
    }
    // enforced_at cleared: should the enforcement below fail, the
    // enforcement job finds the subscriber and carries the tier then.
    network_user::Entity::update_many()
        .col_expr(network_user::Column::QuotaPolicyId, Expr::value(desired))
        .col_expr(
            network_user::Column::EnforcedAt,
            Expr::value(Option::<DateTime<Utc>>::None.map(|t| t.fixed_offset())),
        )
        .filter(network_user::Column::Id.eq(user.id))
        .exec(&reach.db.main)
        .await?;
    let previous = status.plan.as_ref().and_then(|plan| {
        plan.tiers
            .as_slice()
            .iter()
            .find(|t| Some(t.policy_id) == user.quota_policy_id)
            .map(|t| t.threshold_percent)
    });
    let tier = status.tier();
    let crossing = QuotaTierCrossed {
        user_id: user.id,
        username: user.username.clone(),
        cycle_start: status.cycle_start,
        resets_at: status.resets_at,
        used_bytes: status.used_bytes(),
        allowance_bytes: status.allowance_bytes().unwrap_or(0),
        percent: status.percent().unwrap_or(0),
        direction: status
            .plan
            .as_ref()
            .map(|p| p.direction)
            .unwrap_or_default()
            .as_str()
            .into(),
        threshold_percent: tier.map(|t| t.threshold_percent),
        policy_id: desired,
        previous_threshold_percent: previous,
    };
    emit_logged(&reach.db.main, WebhookEvent::quota_tier_crossed(crossing)).await;
    match enforce_user(reach, actor, user.id, Reason::Quota).await {
        Ok(_) => Ok(Reassessed::Moved),
        Err(err) => {
            tracing::warn!(network_user.id = user.id, error = %err, "the quota tier could not be enforced; the enforcement job retries it");
            Ok(Reassessed::MovedNotEnforced)
        }
    }
}

/// Adds `bytes` to the subscriber's allowance for the current cycle, and
/// lifts its tier at once when the usage is now below it. Gives the quota
/// after, and whether the subscriber moved out of (or between) tiers.
pub async fn top_up(
    reach: &Reach,
    actor: &Actor,
    id: i32,
    bytes: ByteSize,
    note: Option<&str>,
) -> Result<(QuotaStatus, Reassessed), EnforcementError> {
    let db = &reach.db.main;
    let status = quota_status(db, id).await?;
    if status.plan.is_none() {
        return Err(UsersError::Conflict {
            code: "no_quota",
            message: format!(
                "subscriber \"{}\" is on a package without a quota: there is nothing to top up",
                status.user.username
            ),
        }
        .into());
    }
    let txn = begin_write(db).await?;
    add_usage(&txn, id, status.cycle_start, 0, 0, bytes.as_i64()).await?;
    audit::record(
        &txn,
        actor,
        "network_user.quota_top_up",
        "network_user",
        Some(id.to_string()),
        serde_json::json!({
            "username": status.user.username,
            "bytes": bytes.as_i64(),
            "cycle_start": status.cycle_start,
            "note": note,
        }),
    )
    .await?;
    txn.commit().await?;
    let status = quota_status(db, id).await?;
    let moved = reassess(reach, actor, &status).await?;
    Ok((quota_status(db, id).await?, moved))
}
