//! Creating, changing, listing and deleting packages.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use tracing::instrument;

use crate::audit::{self, Actor};
use crate::db::{begin_write, UniqueKey};
use crate::error::FieldErrors;
use crate::query::{contains, fetch_page, PageRequest, Sort};
use crate::text::optional_text;
use crate::users::domain::{Burst, MikrotikProfile, RadiusGroup, Rate, RateLimit};
use crate::users::entities::{network_user, service_package, service_policy};
use crate::users::quota::{AnchorDay, ByteSize, Direction, Tier, Tiers};
use crate::users::service::UsersError;

/// A package as the caller gives it; [`PackageInput::validate`] turns it
/// into a [`PackageSpec`]. Rates are text such as `20M`, `512k`, `1G` or a
/// plain number of kbit/s.
#[derive(Debug, Clone, Default)]
pub struct PackageInput {
    pub name: String,
    pub description: Option<String>,
    pub download_rate: String,
    pub upload_rate: String,
    /// A burst needs all five burst fields, or none.
    pub burst_download_rate: Option<String>,
    pub burst_upload_rate: Option<String>,
    pub burst_threshold_download: Option<String>,
    pub burst_threshold_upload: Option<String>,
    pub burst_time_secs: Option<i64>,
    pub session_timeout_secs: Option<i64>,
    pub simultaneous_use: Option<i64>,
    pub radius_group: String,
    pub mikrotik_profile: Option<String>,
    /// The policy for its subscribers while not active; None: the default.
    pub policy_id: Option<i32>,
    /// Days past `expires_at` before a subscriber counts as expired.
    pub grace_days: Option<i64>,
    /// Bytes per billing cycle, as text (`100G`); None: no quota.
    pub quota: Option<String>,
    /// total (the default), download or upload.
    pub quota_direction: Option<String>,
    /// The day of the month (1 to 28) cycles start, unless a subscriber
    /// has its own; None: the 1st.
    pub cycle_anchor_day: Option<i64>,
    /// At which share of the allowance which policy takes over.
    pub quota_tiers: Vec<TierInput>,
}

/// One quota tier as the caller gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierInput {
    pub threshold_percent: i64,
    pub policy_id: i32,
}

/// A package's fair-usage quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageQuota {
    pub bytes: ByteSize,
    pub direction: Direction,
    pub tiers: Tiers,
}

#[derive(Debug, Clone)]
pub struct PackageSpec {
    pub name: String,
    pub description: Option<String>,
    pub rates: RateLimit,
    pub session_timeout_secs: Option<i32>,
    pub simultaneous_use: Option<i32>,
    pub radius_group: RadiusGroup,
    pub mikrotik_profile: Option<MikrotikProfile>,
    pub policy_id: Option<i32>,
    pub grace_days: Option<i32>,
    pub quota: Option<PackageQuota>,
    pub cycle_anchor_day: Option<AnchorDay>,
}

/// The longest burst time accepted, in seconds.
pub const MAX_BURST_TIME_SECS: i64 = 3600;

/// The longest grace after expiry, in days.
pub const MAX_GRACE_DAYS: i64 = 365;

impl PackageInput {
    /// Checks every field; all problems are reported together.
    pub fn validate(&self) -> Result<PackageSpec, UsersError> {
        let mut errors = FieldErrors::new();
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 64 {
            errors.insert("name".into(), "must be 1 to 64 characters long".into());
        }
        let description = optional_text(&self.description).map(str::to_string);
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 1000)
        {
            errors.insert(
                "description".into(),
                "must be at most 1000 characters long".into(),
            );
        }
        let mut rate = |field: &str, text: &str| match Rate::parse(text) {
            Ok(rate) => Some(rate),
            Err(e) => {
                errors.insert(field.into(), e);
                None
            }
        };
        let download = rate("download_rate", &self.download_rate);
        let upload = rate("upload_rate", &self.upload_rate);
        let burst_fields = [
            ("burst_download_rate", &self.burst_download_rate),
            ("burst_upload_rate", &self.burst_upload_rate),
            ("burst_threshold_download", &self.burst_threshold_download),
            ("burst_threshold_upload", &self.burst_threshold_upload),
        ];
        let burst_rates: Vec<Option<Rate>> = burst_fields
            .iter()
            .map(|(field, value)| optional_text(value).and_then(|text| rate(field, text)))
            .collect();
        let burst_time = match self.burst_time_secs {
            Some(t) if !(1..=MAX_BURST_TIME_SECS).contains(&t) => {
                errors.insert(
                    "burst_time_secs".into(),
                    format!("must be 1 to {MAX_BURST_TIME_SECS} seconds"),
                );
                None
            }
            other => other.map(|t| t as u32),
        };

        let given = burst_fields
            .iter()
            .any(|(_, value)| optional_text(value).is_some())
            || self.burst_time_secs.is_some();
        let mut burst = None;
        if given {
            for (field, value) in &burst_fields {
                if optional_text(value).is_none() {
                    errors.insert(
                        (*field).into(),
                        "is required with the other burst settings".into(),
                    );
                }
            }
            if self.burst_time_secs.is_none() {
                errors.insert(
                    "burst_time_secs".into(),
                    "is required with the other burst settings".into(),
                );
            }
            if let (Some(bd), Some(bu), Some(td), Some(tu), Some(time_secs)) = (
                burst_rates[0],
                burst_rates[1],
                burst_rates[2],
                burst_rates[3],
                burst_time,
            ) {
                burst = Some(Burst {
                    download: bd,
                    upload: bu,
                    threshold_download: td,
                    threshold_upload: tu,
                    time_secs,
                });
            }
        }
        // A burst above the rate, and a threshold not above it: RouterOS
        // bursts only while the average stays below the threshold, so a
        // threshold above max-limit would let the burst run for ever.
        if let (Some(b), Some(download), Some(upload)) = (&burst, download, upload) {
            for (field, value, base, base_field) in [
                ("burst_download_rate", b.download, download, "download_rate"),
                ("burst_upload_rate", b.upload, upload, "upload_rate"),
            ] {
                if value <= base {
                    errors.insert(field.into(), format!("must be above {base_field} ({base})"));
                }
            }
            for (field, value, base, base_field) in [
                (
                    "burst_threshold_download",
                    b.threshold_download,
                    download,
                    "download_rate",
                ),
                (
                    "burst_threshold_upload",
                    b.threshold_upload,
                    upload,
                    "upload_rate",
                ),
            ] {
                if value > base {
                    errors.insert(
                        field.into(),
                        format!("must not be above {base_field} ({base})"),
                    );
                }
            }
        }

        let mut at_least_one = |field: &str, value: Option<i64>| match value {
            Some(v) if v < 1 || v > i64::from(i32::MAX) => {
                errors.insert(field.into(), "must be a whole number from 1".into());
                None
            }
            other => other.map(|v| v as i32),
        };
        let session_timeout_secs = at_least_one("session_timeout_secs", self.session_timeout_secs);
        let simultaneous_use = at_least_one("simultaneous_use", self.simultaneous_use);

        let radius_group = match RadiusGroup::parse(&self.radius_group) {
            Ok(group) => Some(group),
            Err(e) => {
                errors.insert("radius_group".into(), e);
                None
            }
        };
        let mikrotik_profile =
            match optional_text(&self.mikrotik_profile).map(MikrotikProfile::parse) {
                Some(Err(e)) => {
                    errors.insert("mikrotik_profile".into(), e);
                    None
                }
                other => other.and_then(Result::ok),
            };

        let grace_days = match self.grace_days {
            Some(d) if !(0..=MAX_GRACE_DAYS).contains(&d) => {
                errors.insert(
                    "grace_days".into(),
                    format!("must be 0 to {MAX_GRACE_DAYS} days"),
                );
                None
            }
            other => other.map(|d| d as i32),
        };

        let quota = self.quota_spec(&mut errors);
        let cycle_anchor_day = match self.cycle_anchor_day.map(AnchorDay::new) {
            Some(Err(e)) => {
                errors.insert("cycle_anchor_day".into(), e);
                None
            }
            other => other.and_then(Result::ok),
        };

        match (download, upload, radius_group, errors.is_empty()) {
            (Some(download), Some(upload), Some(radius_group), true) => Ok(PackageSpec {
                name,
                description,
                rates: RateLimit {
                    download,
                    upload,
                    burst,
                },
                session_timeout_secs,
                simultaneous_use,
                radius_group,
                mikrotik_profile,
                policy_id: self.policy_id,
                grace_days,
                quota,
                cycle_anchor_day,
            }),
            _ => Err(UsersError::Invalid(errors)),
        }
    }

    /// The quota, its direction and its tiers; tiers need a quota.
    fn quota_spec(&self, errors: &mut FieldErrors) -> Option<PackageQuota> {
        let direction = match optional_text(&self.quota_direction).map(str::parse::<Direction>) {
            Some(Err(e)) => {
                errors.insert("quota_direction".into(), e);
                Direction::Total
            }
            other => other.and_then(Result::ok).unwrap_or_default(),
        };
        let tiers = self
            .quota_tiers
            .iter()
            .map(|t| {
                Ok(Tier {
                    threshold_percent: u32::try_from(t.threshold_percent).map_err(|_| {
                        format!("threshold {}% is outside 1 to 1000", t.threshold_percent)
                    })?,
                    policy_id: t.policy_id,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .and_then(Tiers::new);
        let tiers = match tiers {
            Ok(tiers) => tiers,
            Err(e) => {
                errors.insert("quota_tiers".into(), e);
                Tiers::default()
            }
        };
        let Some(text) = optional_text(&self.quota) else {
            if !self.quota_tiers.is_empty() {
                errors.insert(
                    "quota_tiers".into(),
                    "need a quota: tiers are shares of it".into(),
                );
            }
            return None;
        };
        match ByteSize::parse(text) {
            Ok(bytes) => Some(PackageQuota {
                bytes,
                direction,
                tiers,
            }),
            Err(e) => {
                errors.insert("quota".into(), e);
                None
            }
        }
    }
}

/// Sort fields of the package list (`?sort=`).
pub const PACKAGE_SORTS: &[(&str, service_package::Column)] = &[
    ("id", service_package::Column::Id),
    ("name", service_package::Column::Name),
    ("download_rate", service_package::Column::DownloadRateKbps),
    ("upload_rate", service_package::Column::UploadRateKbps),
    ("radius_group", service_package::Column::RadiusGroup),
    ("created_at", service_package::Column::CreatedAt),
];

pub(crate) async fn find_package(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<service_package::Model, UsersError> {
    service_package::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| UsersError::NotFound(format!("no service package with id {id}")))
}

pub async fn get_package(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<service_package::Model, UsersError> {
    find_package(db, id).await
}

/// Name and RADIUS group are unique; both are checked, so that one answer
/// names every taken field.
async fn check_package_unique(
    db: &impl ConnectionTrait,
    spec: &PackageSpec,
    except: Option<i32>,
) -> Result<(), UsersError> {
    let mut errors = FieldErrors::new();
    for (field, column, value) in [
        ("name", service_package::Column::Name, spec.name.as_str()),
        (
            "radius_group",
            service_package::Column::RadiusGroup,
            spec.radius_group.as_str(),
        ),
    ] {
        let mut query = service_package::Entity::find().filter(column.eq(value));
        if let Some(id) = except {
            query = query.filter(service_package::Column::Id.ne(id));
        }
        if query.count(db).await? > 0 {
            let what = if field == "name" {
                "name"
            } else {
                "RADIUS group"
            };
            errors.insert(
                field.into(),
                format!("a package with the {what} \"{value}\" exists already"),
            );
        }
    }
    let policy_group = service_policy::Entity::find()
        .filter(service_policy::Column::RadiusGroup.eq(spec.radius_group.as_str()))
        .count(db)
        .await?;
    if policy_group > 0 {
        errors.insert(
            "radius_group".into(),
            format!(
                "\"{}\" is a policy's RADIUS group; a package needs its own",
                spec.radius_group.as_str()
            ),
        );
    }
    let tier_policies = spec
        .quota
        .iter()
        .flat_map(|q| q.tiers.as_slice())
        .map(|t| t.policy_id);
    for policy_id in tier_policies {
        if service_policy::Entity::find_by_id(policy_id)
            .one(db)
            .await?
            .is_none()
        {
            errors.insert(
                "quota_tiers".into(),
                format!("there is no service policy with id {policy_id}"),
            );
        }
    }
    if let Some(policy_id) = spec.policy_id {
        if service_policy::Entity::find_by_id(policy_id)
            .one(db)
            .await?
            .is_none()
        {
            errors.insert(
                "policy_id".into(),
                format!("there is no service policy with id {policy_id}"),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(UsersError::Invalid(errors))
    }
}

/// The unique keys of `service_packages`: columns declared unique.
const NAME_KEY: UniqueKey = UniqueKey::column("service_packages", &["name"]);
const RADIUS_GROUP_KEY: UniqueKey = UniqueKey::column("service_packages", &["radius_group"]);

/// A unique violation that raced past [`check_package_unique`], as the
/// message of the field whose key it broke.
fn package_taken_as_invalid(err: DbErr) -> UsersError {
    if RADIUS_GROUP_KEY.violated_by(&err) {
        UsersError::invalid(
            "radius_group",
            "a package with this RADIUS group exists already",
        )
    } else if NAME_KEY.violated_by(&err) {
        UsersError::invalid("name", "a package with this name exists already")
    } else {
        UsersError::Db(err)
    }
}

fn package_model(spec: &PackageSpec, now: DateTime<Utc>) -> service_package::ActiveModel {
    let burst = spec.rates.burst;
    service_package::ActiveModel {
        name: Set(spec.name.clone()),
        description: Set(spec.description.clone()),
        download_rate_kbps: Set(spec.rates.download.kbps_i64()),
        upload_rate_kbps: Set(spec.rates.upload.kbps_i64()),
        burst_download_kbps: Set(burst.map(|b| b.download.kbps_i64())),
        burst_upload_kbps: Set(burst.map(|b| b.upload.kbps_i64())),
        burst_threshold_download_kbps: Set(burst.map(|b| b.threshold_download.kbps_i64())),
        burst_threshold_upload_kbps: Set(burst.map(|b| b.threshold_upload.kbps_i64())),
        burst_time_secs: Set(burst.map(|b| b.time_secs as i32)),
        session_timeout_secs: Set(spec.session_timeout_secs),
        simultaneous_use: Set(spec.simultaneous_use),
        radius_group: Set(spec.radius_group.as_str().to_string()),
        mikrotik_profile: Set(spec
            .mikrotik_profile
            .as_ref()
            .map(|p| p.as_str().to_string())),
        policy_id: Set(spec.policy_id),
        grace_days: Set(spec.grace_days),
        quota_bytes: Set(spec.quota.as_ref().map(|q| q.bytes.as_i64())),
        quota_direction: Set(spec
            .quota
            .as_ref()
            .map(|q| q.direction.as_str().to_string())),
        quota_tiers: Set(spec.quota.as_ref().and_then(|q| q.tiers.stored())),
        cycle_anchor_day: Set(spec.cycle_anchor_day.map(|d| d.day() as i32)),
        updated_at: Set(now.into()),
        ..Default::default()
    }
}

fn package_details(p: &service_package::Model) -> serde_json::Value {
    serde_json::json!({
        "name": p.name,
        "rate_limit": crate::users::domain::mikrotik_rate_limit(p),
        "session_timeout_secs": p.session_timeout_secs,
        "simultaneous_use": p.simultaneous_use,
        "radius_group": p.radius_group,
        "mikrotik_profile": p.mikrotik_profile,
        "policy_id": p.policy_id,
        "grace_days": p.grace_days,
        "quota_bytes": p.quota_bytes,
        "quota_direction": p.quota_direction,
        "quota_tiers": p.quota_tiers,
        "cycle_anchor_day": p.cycle_anchor_day,
    })
}

#[instrument(skip_all)]
pub async fn create_package(
    db: &DatabaseConnection,
    actor: &Actor,
    input: &PackageInput,
) -> Result<service_package::Model, UsersError> {
    let spec = input.validate()?;
    let txn = begin_write(db).await?;
    check_package_unique(&txn, &spec, None).await?;
    let now = Utc::now();
    let mut row = package_model(&spec, now);
    row.status = Set("active".into());
    row.created_at = Set(now.into());
    let package = row.insert(&txn).await.map_err(package_taken_as_invalid)?;
    audit::record(
        &txn,
        actor,
        "service_package.create",
        "service_package",
        Some(package.id.to_string()),
        package_details(&package),
    )
    .await?;
    txn.commit().await?;
    Ok(package)
}

/// Replaces a package's settings. Its users are marked for RADIUS sync:
/// their group, rates and limits come from it.
#[instrument(skip_all, fields(service_package.id = id))]
pub async fn update_package(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
    input: &PackageInput,
) -> Result<service_package::Model, UsersError> {
    let spec = input.validate()?;
    let txn = begin_write(db).await?;
    let existing = find_package(&txn, id).await?;
    check_package_unique(&txn, &spec, Some(id)).await?;
    let mut row = package_model(&spec, Utc::now());
    row.id = Set(existing.id);
    let package = row.update(&txn).await.map_err(package_taken_as_invalid)?;
    network_user::Entity::update_many()
        .col_expr(network_user::Column::RadiusSyncPending, Expr::value(true))
        .filter(network_user::Column::PackageId.eq(id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        actor,
        "service_package.update",
        "service_package",
        Some(id.to_string()),
        package_details(&package),
    )
    .await?;
    txn.commit().await?;
    Ok(package)
}

fn package_in_use(name: &str, users: u64) -> UsersError {
    UsersError::Conflict {
        code: "package_in_use",
        message: format!(
            "package \"{name}\" still has {users} user(s); move them to another package first"
        ),
    }
}

/// Deletes a package; refused (409) while any user is on it.
#[instrument(skip_all, fields(service_package.id = id))]
pub async fn delete_package(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
) -> Result<(), UsersError> {
    let txn = begin_write(db).await?;
    let package = find_package(&txn, id).await?;
    let users = network_user::Entity::find()
        .filter(network_user::Column::PackageId.eq(id))
        .count(&txn)
        .await?;
    if users > 0 {
        return Err(package_in_use(&package.name, users));
    }
    // A user added since the count is caught by the RESTRICT foreign key.
    service_package::Entity::delete_by_id(id)
        .exec(&txn)
        .await
        .map_err(|err| match err.sql_err() {
            Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)) => {
                package_in_use(&package.name, 1)
            }
            _ => UsersError::Db(err),
        })?;
    audit::record(
        &txn,
        actor,
        "service_package.delete",
        "service_package",
        Some(id.to_string()),
        package_details(&package),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct PackageFilter {
    /// Part of the name or RADIUS group, any case.
    pub q: Option<String>,
}

pub async fn list_packages(
    db: &impl ConnectionTrait,
    filter: &PackageFilter,
    sort: &Sort<service_package::Column>,
    page: PageRequest,
) -> Result<(Vec<service_package::Model>, u64), UsersError> {
    let mut select = service_package::Entity::find();
    if let Some(q) = optional_text(&filter.q) {
        select = select.filter(
            Condition::any()
                .add(contains(service_package::Column::Name, q))
                .add(contains(service_package::Column::RadiusGroup, q)),
        );
    }
    Ok(fetch_page(db, sort.apply(select, service_package::Column::Id), page).await?)
}
