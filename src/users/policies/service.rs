//! Creating, changing, listing and deleting service policies, and finding
//! the policy that applies to a package.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use tracing::instrument;

use crate::audit::{self, Actor};
use crate::db::{begin_write, UniqueKey};
use crate::error::FieldErrors;
use crate::query::{contains, fetch_page, PageRequest, Sort};
use crate::text::optional_text;
use crate::users::domain::{MikrotikProfile, RadiusGroup, Rate};
use crate::users::entities::{network_user, service_package, service_policy};
use crate::users::quota::Tiers;
use crate::users::service::UsersError;
use crate::users::state::{policy_rate_limit, PolicyAction};

/// A policy as the caller gives it; [`PolicyInput::validate`] turns it into
/// a [`PolicySpec`]. Rates are text such as `1M` or `512k`.
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    pub name: String,
    /// reject, walled_garden or throttle.
    pub action: String,
    pub download_rate: Option<String>,
    pub upload_rate: Option<String>,
    /// Walled garden only: the router's IP pool for restricted sessions.
    pub framed_pool: Option<String>,
    /// Walled garden only: the router's address list (its firewall
    /// redirects this list to the payment page).
    pub address_list: Option<String>,
    pub radius_group: String,
    /// Walled garden or throttle: the PPP profile a router that keeps the
    /// subscriber's secret puts it on (none: the secret is disabled).
    pub mikrotik_profile: Option<String>,
    /// The policy for packages that name none.
    pub is_default: bool,
}

#[derive(Debug, Clone)]
pub struct PolicySpec {
    pub name: String,
    pub action: PolicyAction,
    /// (download, upload)
    pub rates: Option<(Rate, Rate)>,
    pub framed_pool: Option<MikrotikProfile>,
    pub address_list: Option<MikrotikProfile>,
    pub radius_group: RadiusGroup,
    pub mikrotik_profile: Option<MikrotikProfile>,
    pub is_default: bool,
}

impl PolicyInput {
    /// Checks every field; all problems are reported together.
    pub fn validate(&self) -> Result<PolicySpec, UsersError> {
        let mut errors = FieldErrors::new();
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 64 {
            errors.insert("name".into(), "must be 1 to 64 characters long".into());
        }
        let action = match self.action.parse::<PolicyAction>() {
            Ok(action) => Some(action),
            Err(e) => {
                errors.insert("action".into(), e);
                None
            }
        };
        let mut rate = |field: &str, value: &Option<String>| {
            optional_text(value).and_then(|text| match Rate::parse(text) {
                Ok(rate) => Some(rate),
                Err(e) => {
                    errors.insert(field.into(), e);
                    None
                }
            })
        };
        let download = rate("download_rate", &self.download_rate);
        let upload = rate("upload_rate", &self.upload_rate);
        let mut router_name = |field: &str, value: &Option<String>| match optional_text(value)
            .map(MikrotikProfile::parse)
        {
            Some(Ok(name)) => Some(name),
            Some(Err(e)) => {
                errors.insert(field.into(), e);
                None
            }
            None => None,
        };
        let framed_pool = router_name("framed_pool", &self.framed_pool);
        let address_list = router_name("address_list", &self.address_list);
        let mikrotik_profile = router_name("mikrotik_profile", &self.mikrotik_profile);
        let radius_group = match RadiusGroup::parse(&self.radius_group) {
            Ok(group) => Some(group),
            Err(e) => {
                errors.insert("radius_group".into(), e);
                None
            }
        };

        let rates_given = [&self.download_rate, &self.upload_rate].map(|v| optional_text(v));
        if rates_given.iter().any(Option::is_some) {
            for (field, given) in [
                ("download_rate", rates_given[0]),
                ("upload_rate", rates_given[1]),
            ] {
                if given.is_none() {
                    errors.insert(field.into(), "is required with the other rate".into());
                }
            }
        }
        match action {
            Some(PolicyAction::Reject) => {
                for (field, given) in [
                    ("download_rate", rates_given[0].is_some()),
                    ("upload_rate", rates_given[1].is_some()),
                    ("framed_pool", optional_text(&self.framed_pool).is_some()),
                    ("address_list", optional_text(&self.address_list).is_some()),
                    (
                        "mikrotik_profile",
                        optional_text(&self.mikrotik_profile).is_some(),
                    ),
                ] {
                    if given {
                        errors.insert(
                            field.into(),
                            "a reject policy gives no service: leave it empty".into(),
                        );
                    }
                }
            }
            Some(PolicyAction::Throttle) => {
                if rates_given.iter().all(Option::is_none) {
                    for field in ["download_rate", "upload_rate"] {
                        errors.insert(field.into(), "is required for a throttle policy".into());
                    }
                }
                for field in ["framed_pool", "address_list"] {
                    let value = if field == "framed_pool" {
                        &self.framed_pool
                    } else {
                        &self.address_list
                    };
                    if optional_text(value).is_some() {
                        errors.insert(
                            field.into(),
                            "only a walled-garden policy moves sessions to a pool or address list"
                                .into(),
                        );
                    }
                }
            }
            Some(PolicyAction::WalledGarden) => {
                let restricts = rates_given.iter().any(Option::is_some)
                    || optional_text(&self.framed_pool).is_some()
                    || optional_text(&self.address_list).is_some();
                if !restricts {
                    errors.insert(
                        "address_list".into(),
                        "a walled garden needs an address list, a pool or a rate (else it gives full service)"
                            .into(),
                    );
                }
            }
            None => {}
        }

        match (action, radius_group, errors.is_empty()) {
            (Some(action), Some(radius_group), true) => Ok(PolicySpec {
                name,
                action,
                rates: download.zip(upload),
                framed_pool,
                address_list,
                radius_group,
                mikrotik_profile,
                is_default: self.is_default,
            }),
            _ => Err(UsersError::Invalid(errors)),
        }
    }
}

/// Sort fields of the policy list (`?sort=`).
pub const POLICY_SORTS: &[(&str, service_policy::Column)] = &[
    ("id", service_policy::Column::Id),
    ("name", service_policy::Column::Name),
    ("action", service_policy::Column::Action),
    ("radius_group", service_policy::Column::RadiusGroup),
    ("created_at", service_policy::Column::CreatedAt),
];

pub async fn get_policy(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<service_policy::Model, UsersError> {
    service_policy::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| UsersError::NotFound(format!("no service policy with id {id}")))
}

/// Every policy, by name: the choices of a package's policy. There are a
/// handful, not pages of them.
pub async fn all_policies(
    db: &impl ConnectionTrait,
) -> Result<Vec<service_policy::Model>, UsersError> {
    Ok(service_policy::Entity::find()
        .order_by_asc(service_policy::Column::Name)
        .order_by_asc(service_policy::Column::Id)
        .all(db)
        .await?)
}

/// The default policy, if one is marked.
pub async fn default_policy(
    db: &impl ConnectionTrait,
) -> Result<Option<service_policy::Model>, DbErr> {
    service_policy::Entity::find()
        .filter(service_policy::Column::DefaultMarker.is_not_null())
        .one(db)
        .await
}

/// The policy that applies to the subscribers of `package`: its own, else
/// the default.
pub async fn policy_of_package(
    db: &impl ConnectionTrait,
    package: &service_package::Model,
) -> Result<Option<service_policy::Model>, DbErr> {
    match package.policy_id {
        Some(id) => service_policy::Entity::find_by_id(id).one(db).await,
        None => default_policy(db).await,
    }
}

/// The policy of the quota tier `user` has reached, if any.
pub async fn quota_policy_of_user(
    db: &impl ConnectionTrait,
    user: &network_user::Model,
) -> Result<Option<service_policy::Model>, DbErr> {
    match user.quota_policy_id {
        Some(id) => service_policy::Entity::find_by_id(id).one(db).await,
        None => Ok(None),
    }
}

/// Every policy by id, and the default one, for work over many users.
#[derive(Debug, Default, Clone)]
pub struct Policies {
    pub by_id: BTreeMap<i32, service_policy::Model>,
    pub default: Option<i32>,
}

impl Policies {
    pub async fn load(db: &impl ConnectionTrait) -> Result<Self, DbErr> {
        let all = service_policy::Entity::find().all(db).await?;
        Ok(Self {
            default: all
                .iter()
                .find(|p| p.default_marker.is_some())
                .map(|p| p.id),
            by_id: all.into_iter().map(|p| (p.id, p)).collect(),
        })
    }

    /// The policy for `package`'s subscribers.
    pub fn of_package(&self, package: &service_package::Model) -> Option<&service_policy::Model> {
        self.by_id.get(&package.policy_id.or(self.default)?)
    }

    /// The policy of the quota tier `user` has reached.
    pub fn quota_of(&self, user: &network_user::Model) -> Option<&service_policy::Model> {
        self.by_id.get(&user.quota_policy_id?)
    }
}

const NAME_KEY: UniqueKey =
    UniqueKey::index("uq_service_policies_name", "service_policies", &["name"]);
const RADIUS_GROUP_KEY: UniqueKey = UniqueKey::index(
    "uq_service_policies_radius_group",
    "service_policies",
    &["radius_group"],
);

/// A unique violation that raced past [`check_policy_unique`].
fn policy_taken_as_invalid(err: DbErr) -> UsersError {
    if RADIUS_GROUP_KEY.violated_by(&err) {
        UsersError::invalid(
            "radius_group",
            "a policy with this RADIUS group exists already",
        )
    } else if NAME_KEY.violated_by(&err) {
        UsersError::invalid("name", "a policy with this name exists already")
    } else {
        UsersError::Db(err)
    }
}

/// Name and RADIUS group are unique among policies, and the group must not
/// be a package's: both write the same radgroupreply rows.
async fn check_policy_unique(
    db: &impl ConnectionTrait,
    spec: &PolicySpec,
    except: Option<i32>,
) -> Result<(), UsersError> {
    let mut errors = FieldErrors::new();
    for (field, column, value) in [
        ("name", service_policy::Column::Name, spec.name.as_str()),
        (
            "radius_group",
            service_policy::Column::RadiusGroup,
            spec.radius_group.as_str(),
        ),
    ] {
        let mut query = service_policy::Entity::find().filter(column.eq(value));
        if let Some(id) = except {
            query = query.filter(service_policy::Column::Id.ne(id));
        }
        if query.count(db).await? > 0 {
            errors.insert(
                field.into(),
                format!(
                    "a policy with this {} exists already",
                    field.replace('_', " ")
                ),
            );
        }
    }
    let package_group = service_package::Entity::find()
        .filter(service_package::Column::RadiusGroup.eq(spec.radius_group.as_str()))
        .count(db)
        .await?;
    if package_group > 0 {
        errors.insert(
            "radius_group".into(),
            format!(
                "\"{}\" is a package's RADIUS group; a policy needs its own",
                spec.radius_group.as_str()
            ),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(UsersError::Invalid(errors))
    }
}

fn policy_model(spec: &PolicySpec, now: DateTime<Utc>) -> service_policy::ActiveModel {
    let text = |v: &Option<MikrotikProfile>| v.as_ref().map(|n| n.as_str().to_string());
    service_policy::ActiveModel {
        name: Set(spec.name.clone()),
        action: Set(spec.action.as_str().to_string()),
        download_rate_kbps: Set(spec.rates.map(|(down, _)| down.kbps_i64())),
        upload_rate_kbps: Set(spec.rates.map(|(_, up)| up.kbps_i64())),
        framed_pool: Set(text(&spec.framed_pool)),
        address_list: Set(text(&spec.address_list)),
        mikrotik_profile: Set(text(&spec.mikrotik_profile)),
        radius_group: Set(spec.radius_group.as_str().to_string()),
        default_marker: Set(spec.is_default.then_some(1)),
        updated_at: Set(now.into()),
        ..Default::default()
    }
}

fn policy_details(p: &service_policy::Model) -> serde_json::Value {
    serde_json::json!({
        "name": p.name,
        "action": p.action,
        "rate_limit": policy_rate_limit(p),
        "framed_pool": p.framed_pool,
        "address_list": p.address_list,
        "mikrotik_profile": p.mikrotik_profile,
        "radius_group": p.radius_group,
        "default": p.default_marker.is_some(),
    })
}

/// The default mark moves: at most one policy holds it.
async fn take_default_from_others(
    db: &impl ConnectionTrait,
    spec: &PolicySpec,
    except: Option<i32>,
) -> Result<(), DbErr> {
    if !spec.is_default {
        return Ok(());
    }
    let mut others = service_policy::Entity::update_many()
        .col_expr(
            service_policy::Column::DefaultMarker,
            Expr::value(Option::<i16>::None),
        )
        .filter(service_policy::Column::DefaultMarker.is_not_null());
    if let Some(id) = except {
        others = others.filter(service_policy::Column::Id.ne(id));
    }
    others.exec(db).await?;
    Ok(())
}

/// Marks for RADIUS sync every subscriber whose service the policy shapes:
/// those on packages that name it, and, for the default policy (before or
/// after the change), those on packages that name none.
async fn mark_policy_users(
    db: &impl ConnectionTrait,
    policy_id: i32,
    was_or_is_default: bool,
) -> Result<(), DbErr> {
    let mut packages = Condition::any().add(service_package::Column::PolicyId.eq(policy_id));
    if was_or_is_default {
        packages = packages.add(service_package::Column::PolicyId.is_null());
    }
    let ids: Vec<i32> = service_package::Entity::find()
        .filter(packages)
        .all(db)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    // `updated_at` too: the enforcement job carries the change to the
    // live sessions of those suspended or expired.
    network_user::Entity::update_many()
        .col_expr(network_user::Column::RadiusSyncPending, Expr::value(true))
        .col_expr(
            network_user::Column::UpdatedAt,
            Expr::value(Utc::now().fixed_offset()),
        )
        .filter(network_user::Column::PackageId.is_in(ids))
        .exec(db)
        .await?;
    Ok(())
}

#[instrument(skip_all)]
pub async fn create_policy(
    db: &DatabaseConnection,
    actor: &Actor,
    input: &PolicyInput,
) -> Result<service_policy::Model, UsersError> {
    let spec = input.validate()?;
    let txn = begin_write(db).await?;
    check_policy_unique(&txn, &spec, None).await?;
    take_default_from_others(&txn, &spec, None).await?;
    let now = Utc::now();
    let mut row = policy_model(&spec, now);
    row.created_at = Set(now.into());
    let policy = row.insert(&txn).await.map_err(policy_taken_as_invalid)?;
    mark_policy_users(&txn, policy.id, spec.is_default).await?;
    audit::record(
        &txn,
        actor,
        "service_policy.create",
        "service_policy",
        Some(policy.id.to_string()),
        policy_details(&policy),
    )
    .await?;
    txn.commit().await?;
    Ok(policy)
}

/// Replaces a policy's settings; the subscribers it shapes are marked for
/// RADIUS sync.
#[instrument(skip_all, fields(service_policy.id = id))]
pub async fn update_policy(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
    input: &PolicyInput,
) -> Result<service_policy::Model, UsersError> {
    let spec = input.validate()?;
    let txn = begin_write(db).await?;
    let existing = get_policy(&txn, id).await?;
    check_policy_unique(&txn, &spec, Some(id)).await?;
    take_default_from_others(&txn, &spec, Some(id)).await?;
    let mut row = policy_model(&spec, Utc::now());
    row.id = Set(existing.id);
    let policy = row.update(&txn).await.map_err(policy_taken_as_invalid)?;
    mark_policy_users(
        &txn,
        id,
        spec.is_default || existing.default_marker.is_some(),
    )
    .await?;
    audit::record(
        &txn,
        actor,
        "service_policy.update",
        "service_policy",
        Some(id.to_string()),
        policy_details(&policy),
    )
    .await?;
    txn.commit().await?;
    Ok(policy)
}

/// Deletes a policy; refused (409) while a package names it. Deleting the
/// default leaves no default: suspended subscribers are then refused.
#[instrument(skip_all, fields(service_policy.id = id))]
pub async fn delete_policy(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
) -> Result<(), UsersError> {
    let txn = begin_write(db).await?;
    let policy = get_policy(&txn, id).await?;
    let packages = service_package::Entity::find()
        .filter(service_package::Column::PolicyId.eq(id))
        .count(&txn)
        .await?;
    let tiers_of = service_package::Entity::find()
        .filter(service_package::Column::QuotaTiers.is_not_null())
        .all(&txn)
        .await?
        .into_iter()
        .filter(|p| {
            Tiers::from_column(p.quota_tiers.as_deref())
                .as_slice()
                .iter()
                .any(|t| t.policy_id == id)
        })
        .count();
    if tiers_of > 0 {
        return Err(UsersError::Conflict {
            code: "policy_in_use",
            message: format!(
                "policy \"{}\" is a quota tier of {tiers_of} package(s); change their tiers first",
                policy.name
            ),
        });
    }
    if packages > 0 {
        return Err(UsersError::Conflict {
            code: "policy_in_use",
            message: format!(
                "policy \"{}\" is still the policy of {packages} package(s); give them another first",
                policy.name
            ),
        });
    }
    mark_policy_users(&txn, id, policy.default_marker.is_some()).await?;
    service_policy::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        actor,
        "service_policy.delete",
        "service_policy",
        Some(id.to_string()),
        policy_details(&policy),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct PolicyFilter {
    /// Part of the name or RADIUS group, any case.
    pub q: Option<String>,
}

pub async fn list_policies(
    db: &impl ConnectionTrait,
    filter: &PolicyFilter,
    sort: &Sort<service_policy::Column>,
    page: PageRequest,
) -> Result<(Vec<service_policy::Model>, u64), UsersError> {
    let mut select = service_policy::Entity::find();
    if let Some(q) = optional_text(&filter.q) {
        select = select.filter(
            Condition::any()
                .add(contains(service_policy::Column::Name, q))
                .add(contains(service_policy::Column::RadiusGroup, q)),
        );
    }
    Ok(fetch_page(db, sort.apply(select, service_policy::Column::Id), page).await?)
}
