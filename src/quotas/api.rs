//! `/api/v1/users/{id}/quota` and its top-ups.

use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::{self, QuotaStatus};
use crate::api::auth::Api;
use crate::api::extract::{ApiJson, ApiPath};
use crate::app::AppState;
use crate::enforcement::service::status_reason;
use crate::enforcement::Reach;
use crate::error::{AppError, FieldErrors};
use crate::staff::{Operator, Viewer};
use crate::users::quota::{ByteSize, MAX_QUOTA_BYTES};

/// The quota routes, relative to `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_user_quota))
        .routes(routes!(top_up_user_quota))
}

/// The tier a subscriber's usage has reached.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReachedTierView {
    pub threshold_percent: u32,
    pub policy_id: i32,
}

/// A subscriber's usage this billing cycle against its package's quota.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"user_id": 7, "username": "alice", "has_quota": true,
    "quota_bytes": 100000000000i64, "direction": "total", "cycle_anchor_day": 1,
    "cycle_start": "2026-12-01T00:00:00Z", "resets_at": "2027-01-01T00:00:00Z",
    "download_bytes": 98000000000i64, "upload_bytes": 4000000000i64, "topup_bytes": 0,
    "used_bytes": 102000000000i64, "allowance_bytes": 100000000000i64, "percent": 102,
    "tier": {"threshold_percent": 100, "policy_id": 2}, "applied_policy_id": 2}))]
pub struct QuotaView {
    pub user_id: i32,
    pub username: String,
    /// False when its package has no quota: usage is still counted.
    pub has_quota: bool,
    pub quota_bytes: Option<i64>,
    /// `total`, `download` or `upload`: what counts.
    pub direction: Option<String>,
    /// The day of the month cycles start (the subscriber's, else the
    /// package's, else 1).
    pub cycle_anchor_day: u32,
    pub cycle_start: DateTime<Utc>,
    /// When this cycle ends and the usage starts again from zero.
    pub resets_at: DateTime<Utc>,
    /// Octets to the subscriber this cycle, gigawords included.
    pub download_bytes: i64,
    /// Octets from the subscriber this cycle.
    pub upload_bytes: i64,
    /// Added to this cycle's allowance by top-ups.
    pub topup_bytes: i64,
    /// The bytes that count (`direction`).
    pub used_bytes: i64,
    /// The quota plus top-ups.
    pub allowance_bytes: Option<i64>,
    /// Whole percent of the allowance used.
    pub percent: Option<i64>,
    /// The tier the usage has reached; null below every tier.
    pub tier: Option<ReachedTierView>,
    /// The policy the subscriber is under for its quota now (null: none);
    /// it follows `tier` within one metering pass.
    pub applied_policy_id: Option<i32>,
}

impl From<QuotaStatus> for QuotaView {
    fn from(q: QuotaStatus) -> Self {
        let tier = q.tier().map(|t| ReachedTierView {
            threshold_percent: t.threshold_percent,
            policy_id: t.policy_id,
        });
        Self {
            user_id: q.user.id,
            username: q.user.username.clone(),
            has_quota: q.plan.is_some(),
            quota_bytes: q.plan.as_ref().map(|p| p.quota_bytes),
            direction: q.plan.as_ref().map(|p| p.direction.as_str().into()),
            cycle_anchor_day: q.anchor.day(),
            cycle_start: q.cycle_start,
            resets_at: q.resets_at,
            download_bytes: q.download_bytes,
            upload_bytes: q.upload_bytes,
            topup_bytes: q.topup_bytes,
            used_bytes: q.used_bytes(),
            allowance_bytes: q.allowance_bytes(),
            percent: q.percent(),
            tier,
            applied_policy_id: q.user.quota_policy_id,
        }
    }
}

/// A subscriber's usage this cycle, its quota, tier and reset time.
#[utoipa::path(
    get,
    path = "/users/{id}/quota",
    tag = "users",
    params(("id" = i32, Path, description = "The user's id.")),
    responses((status = 200, description = "The subscriber's usage this cycle.", body = QuotaView)),
)]
pub async fn get_user_quota(
    api: Api<Viewer>,
    ApiPath(id): ApiPath<i32>,
) -> Result<Json<QuotaView>, AppError> {
    let status = service::quota_status(api.db(), id).await?;
    Ok(Json(status.into()))
}

/// The body of a top-up.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"bytes": "10G", "reason": "bought 10 GB extra"}))]
pub struct TopUpBody {
    /// What to add to this cycle's allowance: a number of bytes, or text
    /// such as `10G` or `500M` (decimal: 1G = 10^9 bytes); at most 1000P.
    #[schema(value_type = String, example = "10G")]
    pub bytes: serde_json::Value,
    /// Why, for the audit log; at most 500 characters.
    pub reason: Option<String>,
}

/// The size of a top-up, from a JSON number or text.
fn top_up_size(value: &serde_json::Value) -> Result<ByteSize, String> {
    match value {
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(0) | None => Err("must be a whole number of bytes above zero".into()),
            Some(b) if b > MAX_QUOTA_BYTES => Err("must be at most 1000P (10^18 bytes)".into()),
            Some(b) => Ok(ByteSize(b)),
        },
        serde_json::Value::String(text) => ByteSize::parse(text),
        _ => Err("must be a number of bytes or text such as \"10G\"".into()),
    }
}

/// Add bytes to a subscriber's allowance for the current cycle. A
/// subscriber throttled by its quota that is now below its tier gets its
/// package back at once (a CoA to each live session).
#[utoipa::path(
    post,
    path = "/users/{id}/quota/top-ups",
    tag = "users",
    params(("id" = i32, Path, description = "The user's id.")),
    request_body(content = TopUpBody, example = json!({"bytes": "10G", "reason": "bought 10 GB extra"})),
    responses(
        (status = 200, description = "Added; the usage and tier now.", body = QuotaView),
        (status = 409, description = "`no_quota`: the subscriber's package has no quota."),
    ),
)]
pub async fn top_up_user_quota(
    api: Api<Operator>,
    ApiPath(id): ApiPath<i32>,
    ApiJson(body): ApiJson<TopUpBody>,
) -> Result<Json<QuotaView>, AppError> {
    let mut errors = FieldErrors::new();
    let size = top_up_size(&body.bytes)
        .map_err(|message| errors.insert("bytes".into(), message))
        .ok();
    let reason = status_reason(body.reason.as_deref()).unwrap_or_else(|message| {
        errors.insert("reason".into(), message);
        None
    });
    let Some(size) = size.filter(|_| errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let (status, _) = service::top_up(
        &Reach::from_app(&api.state),
        &api.actor,
        id,
        size,
        reason.as_deref(),
    )
    .await?;
    Ok(Json(status.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_top_up_is_a_number_of_bytes_or_a_size() {
        assert_eq!(top_up_size(&serde_json::json!(1500)), Ok(ByteSize(1500)));
        assert_eq!(
            top_up_size(&serde_json::json!("10G")),
            Ok(ByteSize(10_000_000_000))
        );
        assert!(top_up_size(&serde_json::json!(0)).is_err());
        assert!(top_up_size(&serde_json::json!(-5)).is_err());
        assert!(top_up_size(&serde_json::json!(1.5)).is_err());
        assert!(top_up_size(&serde_json::json!(null)).is_err());
        assert!(top_up_size(&serde_json::json!("lots")).is_err());
    }
}
