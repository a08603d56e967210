//! Allocating (the lowest free address or a requested one) and releasing
//! addresses under the subnet lock, and listing allocations.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Order,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::audit::{self, Actor};
use crate::db::UniqueKey;
use crate::error::FieldErrors;
use crate::ipam::domain::{
    free_ranges_around, from_u128, initial_free_ranges, key_bytes, key_from_bytes, to_u128, Cidr,
    IpVersion, MacAddress, NetUsername, RangeStatus,
};
use crate::ipam::entities::{ip_allocation, ip_allocation_history, ip_free_range, ip_subnet};
use crate::ipam::free_ranges::{
    classify, free_range_containing, free_range_of, give_back_key, insert_free_range, is_retryable,
    lock_subnet, split_free_range,
};
use crate::ipam::pools::service::active_allocation_count;
use crate::ipam::service::{IpamError, IpamSettings};
use crate::ipam::subnets::service::{subnet_cidr, subnet_label};
use crate::query::{fetch_page, PageRequest, Sort};
use crate::text::optional_text;

#[derive(Debug, Clone, Default)]
pub struct AllocationInput {
    pub subnet_id: i32,
    pub mac_address: Option<String>,
    pub username: Option<String>,
    /// Allocate exactly this address, if it is free.
    pub ip_address: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The result of [`allocate_ip`]: `created` is false when an existing
/// allocation of the same MAC and username was returned.
#[derive(Debug, Clone)]
pub struct Allocated {
    pub allocation: ip_allocation::Model,
    pub created: bool,
}

struct AllocationSpec {
    mac: Option<MacAddress>,
    username: Option<NetUsername>,
    ip: Option<IpAddr>,
}

fn validate_allocation(input: &AllocationInput) -> Result<AllocationSpec, IpamError> {
    let mut errors = FieldErrors::new();
    let mac = match optional_text(&input.mac_address).map(MacAddress::parse) {
        Some(Err(e)) => {
            errors.insert("mac_address".into(), e);
            None
        }
        other => other.and_then(Result::ok),
    };
    let username = match optional_text(&input.username).map(NetUsername::parse) {
        Some(Err(e)) => {
            errors.insert("username".into(), e);
            None
        }
        other => other.and_then(Result::ok),
    };
    let ip = match optional_text(&input.ip_address).map(crate::ipam::domain::parse_ip) {
        Some(Err(e)) => {
            errors.insert("ip_address".into(), e);
            None
        }
        other => other.and_then(Result::ok),
    };
    if mac.is_none()
        && username.is_none()
        && !errors.contains_key("mac_address")
        && !errors.contains_key("username")
    {
        errors.insert(
            "username".into(),
            "give a username, a MAC address, or both".into(),
        );
    }
    if input.expires_at.is_some_and(|at| at <= Utc::now()) {
        errors.insert("expires_at".into(), "must be in the future".into());
    }
    if errors.is_empty() {
        Ok(AllocationSpec { mac, username, ip })
    } else {
        Err(IpamError::Invalid(errors))
    }
}

/// One active allocation per address of a subnet (`active` is NULL once
/// released, and a unique index ignores rows with a NULL).
pub(crate) const ACTIVE_ADDRESS: UniqueKey = UniqueKey::index(
    "uq_ip_allocations_active_address",
    "ip_allocations",
    &["subnet_id", "ip_key", "active"],
);

/// Allocates the lowest free usable address of the subnet, or the one asked
/// for. Idempotent: the same MAC and username get their active allocation
/// back. See the module docs for how concurrency is handled.
pub async fn allocate_ip(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
    input: &AllocationInput,
) -> Result<Allocated, IpamError> {
    let spec = validate_allocation(input)?;
    const ATTEMPTS: usize = 5;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_allocate(db, settings, actor, input, &spec).await {
            Err(IpamError::Db(err)) if attempt < ATTEMPTS && is_retryable(&err) => {
                tracing::debug!(attempt, error = %err, "allocation retried");
            }
            Err(IpamError::Db(err)) if attempt < ATTEMPTS && ACTIVE_ADDRESS.violated_by(&err) => {
                // The free set said free, the unique index says allocated:
                // they disagree (a bug or a manual edit). Repair the free
                // set from the allocations and try again.
                tracing::warn!(
                    subnet.id = input.subnet_id,
                    "free ranges disagreed with allocations; repairing"
                );
                rebuild_free_ranges(db, settings, input.subnet_id).await?;
            }
            other => return other,
        }
    }
}

async fn try_allocate(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
    input: &AllocationInput,
    spec: &AllocationSpec,
) -> Result<Allocated, IpamError> {
    let (txn, subnet) = lock_subnet(db, settings, input.subnet_id).await?;
    let label = subnet_label(&subnet);
    if subnet.status != RangeStatus::Active.as_str() {
        return Err(IpamError::Conflict(format!(
            "subnet {label} is {}: no new allocations",
            subnet.status
        )));
    }
    let mac = spec.mac.as_ref().map(|m| m.as_str().to_string());
    let username = spec.username.as_ref().map(|u| u.as_str().to_string());

    // Idempotency: the same MAC and username already hold an address here.
    // With a MAC, the (subnet_id, mac_address) index finds it. Without one,
    // `subnet_id = ? AND mac_address IS NULL` matches every MAC-less
    // allocation of the subnet, and SQLite (no planner statistics) still
    // picks that index over the username's, reading all of them: a cost
    // that grows with the subnet (docs/BENCHMARKS.md). So a username alone
    // is looked up by the username index, and this subnet's row kept.
    let existing = match (&mac, &username) {
        (None, Some(name)) => ip_allocation::Entity::find()
            .filter(ip_allocation::Column::Username.eq(name.as_str()))
            .filter(ip_allocation::Column::Active.eq(true))
            .filter(ip_allocation::Column::MacAddress.is_null())
            .all(&txn)
            .await?
            .into_iter()
            .find(|a| a.subnet_id == subnet.id),
        _ => {
            let mut same = ip_allocation::Entity::find()
                .filter(ip_allocation::Column::SubnetId.eq(subnet.id))
                .filter(ip_allocation::Column::Active.eq(true));
            same = match &mac {
                Some(mac) => same.filter(ip_allocation::Column::MacAddress.eq(mac.as_str())),
                None => same.filter(ip_allocation::Column::MacAddress.is_null()),
            };
            same = match &username {
                Some(name) => same.filter(ip_allocation::Column::Username.eq(name.as_str())),
                None => same.filter(ip_allocation::Column::Username.is_null()),
            };
            same.one(&txn).await?
        }
    };
    if let Some(existing) = existing {
        let wanted = spec.ip.map(to_u128);
        if wanted.is_some_and(|w| Some(w) != key_from_bytes(&existing.ip_key)) {
            // One subscriber, one address per subnet: a second one would
            // leave the first orphaned.
            return Err(IpamError::Conflict(format!(
                "this MAC address and username already hold {} in {label}; release it first",
                existing.ip_address
            )));
        }
        txn.commit().await?;
        return Ok(Allocated {
            allocation: existing,
            created: false,
        });
    }

    let cidr = subnet_cidr(&subnet);
    let key = match spec.ip {
        Some(ip) => {
            if IpVersion::of(ip) != cidr.version() || !cidr.contains(ip) {
                return Err(IpamError::invalid(
                    "ip_address",
                    format!("{ip} is not inside subnet {label}"),
                ));
            }
            let key = to_u128(ip);
            if !cidr.usable().contains(key) {
                return Err(IpamError::invalid(
                    "ip_address",
                    format!("{ip} is the network or broadcast address of {label}"),
                ));
            }
            if subnet.gateway.as_deref() == Some(ip.to_string().as_str()) {
                return Err(IpamError::invalid(
                    "ip_address",
                    format!("{ip} is the gateway of {label}"),
                ));
            }
            match free_range_containing(&txn, subnet.id, key).await? {
                Some(row) => split_free_range(&txn, row, key).await?,
                None => return Err(IpamError::AddressTaken { ip, subnet: label }),
            }
            key
        }
        None => {
            let lowest = ip_free_range::Entity::find()
                .filter(ip_free_range::Column::SubnetId.eq(subnet.id))
                .order_by_asc(ip_free_range::Column::StartKey)
                .one(&txn)
                .await?;
            let Some(row) = lowest else {
                let usable = usable_count(&cidr, subnet.gateway.as_deref());
                let allocated = active_allocation_count(&txn, &[subnet.id]).await? as u128;
                return Err(IpamError::SubnetFull {
                    subnet: label,
                    allocated,
                    usable,
                });
            };
            let key = free_range_of(&row).start;
            split_free_range(&txn, row, key).await?;
            key
        }
    };

    let ip = from_u128(key, cidr.version());
    let now = Utc::now();
    let allocation = ip_allocation::ActiveModel {
        subnet_id: Set(subnet.id),
        ip_address: Set(ip.to_string()),
        ip_key: Set(key_bytes(key)),
        mac_address: Set(mac.clone()),
        username: Set(username.clone()),
        allocated_at: Set(now.into()),
        released_at: Set(None),
        expires_at: Set(input.expires_at.map(Into::into)),
        status: Set("active".into()),
        active: Set(Some(true)),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    ip_allocation_history::ActiveModel {
        allocation_id: Set(Some(allocation.id)),
        subnet_id: Set(Some(subnet.id)),
        ip_address: Set(allocation.ip_address.clone()),
        ip_key: Set(allocation.ip_key.clone()),
        mac_address: Set(mac),
        username: Set(username),
        action: Set("allocate".into()),
        allocated_at: Set(now.into()),
        released_at: Set(None),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        actor,
        "ipam.allocate",
        "ip_allocation",
        Some(allocation.id.to_string()),
        serde_json::json!({
            "ip_address": allocation.ip_address, "subnet": label,
            "mac_address": allocation.mac_address, "username": allocation.username,
        }),
    )
    .await?;
    txn.commit().await.map_err(classify)?;
    Ok(Allocated {
        allocation,
        created: true,
    })
}

/// Usable addresses of a subnet, less its gateway.
pub fn usable_count(cidr: &Cidr, gateway: Option<&str>) -> u128 {
    let usable = cidr.usable();
    let gateway_taken = gateway
        .and_then(|g| g.parse::<IpAddr>().ok())
        .is_some_and(|g| usable.contains(to_u128(g)));
    usable.len() - u128::from(gateway_taken)
}

/// Recomputes a subnet's free ranges from its active allocations.
pub async fn rebuild_free_ranges(
    db: &DatabaseConnection,
    settings: IpamSettings,
    subnet_id: i32,
) -> Result<(), IpamError> {
    let (txn, subnet) = lock_subnet(db, settings, subnet_id).await?;
    let cidr = subnet_cidr(&subnet);
    let gateway = subnet.gateway.as_deref().and_then(|g| g.parse().ok());
    let mut taken: Vec<u128> = ip_allocation::Entity::find()
        .filter(ip_allocation::Column::SubnetId.eq(subnet_id))
        .filter(ip_allocation::Column::Active.eq(true))
        .all(&txn)
        .await?
        .iter()
        .filter_map(|a| key_from_bytes(&a.ip_key))
        .collect();
    taken.sort_unstable();
    ip_free_range::Entity::delete_many()
        .filter(ip_free_range::Column::SubnetId.eq(subnet_id))
        .exec(&txn)
        .await?;
    for range in free_ranges_around(&initial_free_ranges(&cidr, gateway), &taken) {
        insert_free_range(&txn, subnet_id, range).await?;
    }
    txn.commit().await?;
    Ok(())
}

// --------------------------------------------------------------- release

#[derive(Debug, Clone)]
pub struct Released {
    pub allocation: ip_allocation::Model,
    /// True when the allocation had been released before: nothing changed.
    pub already_released: bool,
}

pub async fn release_ip(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
    allocation_id: i64,
) -> Result<Released, IpamError> {
    release_with(db, settings, actor, allocation_id, "release").await
}

async fn release_with(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
    allocation_id: i64,
    action: &'static str,
) -> Result<Released, IpamError> {
    let subnet_id = ip_allocation::Entity::find_by_id(allocation_id)
        .one(db)
        .await?
        .ok_or_else(|| IpamError::NotFound(format!("no allocation with id {allocation_id}")))?
        .subnet_id;
    let (txn, subnet) = lock_subnet(db, settings, subnet_id).await?;
    // Read again under the lock: another release may have come first.
    let allocation = ip_allocation::Entity::find_by_id(allocation_id)
        .one(&txn)
        .await?
        .ok_or_else(|| IpamError::NotFound(format!("no allocation with id {allocation_id}")))?;
    if allocation.active != Some(true) {
        txn.commit().await?;
        return Ok(Released {
            allocation,
            already_released: true,
        });
    }
    let now = Utc::now();
    let key = key_from_bytes(&allocation.ip_key).unwrap_or(0);
    let mut row: ip_allocation::ActiveModel = allocation.into();
    row.status = Set(if action == "expire" {
        "expired"
    } else {
        "released"
    }
    .into());
    row.released_at = Set(Some(now.into()));
    row.active = Set(None);
    row.updated_at = Set(now.into());
    let allocation = row.update(&txn).await?;
    // Close the holding interval, and record the event.
    ip_allocation_history::Entity::update_many()
        .col_expr(
            ip_allocation_history::Column::ReleasedAt,
            Expr::value(now.fixed_offset()),
        )
        .col_expr(
            ip_allocation_history::Column::UpdatedAt,
            Expr::value(now.fixed_offset()),
        )
        .filter(ip_allocation_history::Column::AllocationId.eq(allocation.id))
        .filter(ip_allocation_history::Column::Action.eq("allocate"))
        .exec(&txn)
        .await?;
    ip_allocation_history::ActiveModel {
        allocation_id: Set(Some(allocation.id)),
        subnet_id: Set(Some(subnet.id)),
        ip_address: Set(allocation.ip_address.clone()),
        ip_key: Set(allocation.ip_key.clone()),
        mac_address: Set(allocation.mac_address.clone()),
        username: Set(allocation.username.clone()),
        action: Set(action.into()),
        allocated_at: Set(allocation.allocated_at),
        released_at: Set(Some(now.into())),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    give_back_key(&txn, subnet.id, key).await?;
    audit::record(
        &txn,
        actor,
        if action == "expire" {
            "ipam.expire"
        } else {
            "ipam.release"
        },
        "ip_allocation",
        Some(allocation.id.to_string()),
        serde_json::json!({ "ip_address": allocation.ip_address, "subnet": subnet_label(&subnet) }),
    )
    .await?;
    txn.commit().await.map_err(classify)?;
    Ok(Released {
        allocation,
        already_released: false,
    })
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanupReport {
    /// Expired allocations this run released.
    pub released: u64,
    /// Expired allocations another run (or a person) released first.
    pub already_released: u64,
}

/// Releases every allocation past its expiry. Safe to run twice, and
/// concurrently: each release re-checks under the subnet's lock.
pub async fn cleanup_expired(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
) -> Result<CleanupReport, IpamError> {
    let mut report = CleanupReport::default();
    let now = Utc::now();
    let mut after_id = 0i64;
    loop {
        let batch = ip_allocation::Entity::find()
            .filter(ip_allocation::Column::Active.eq(true))
            .filter(ip_allocation::Column::ExpiresAt.lte(now.fixed_offset()))
            .filter(ip_allocation::Column::Id.gt(after_id))
            .order_by_asc(ip_allocation::Column::Id)
            .limit(500)
            .all(db)
            .await?;
        let Some(last) = batch.last() else { break };
        after_id = last.id;
        for allocation in batch {
            let outcome = release_with(db, settings, actor, allocation.id, "expire").await?;
            if outcome.already_released {
                report.already_released += 1;
            } else {
                report.released += 1;
            }
        }
    }
    Ok(report)
}

/// The orders of an allocation list, by `?sort=` key.
pub const ALLOCATION_SORTS: &[(&str, ip_allocation::Column)] = &[
    ("id", ip_allocation::Column::Id),
    ("ip", ip_allocation::Column::IpKey),
    ("allocated_at", ip_allocation::Column::AllocatedAt),
    ("released_at", ip_allocation::Column::ReleasedAt),
    ("expires_at", ip_allocation::Column::ExpiresAt),
    ("username", ip_allocation::Column::Username),
];

/// Allocations newest first (the pages' fixed order; `-allocated_at`
/// above).
pub fn newest_first() -> Sort<ip_allocation::Column> {
    Sort::by(vec![(ip_allocation::Column::AllocatedAt, Order::Desc)])
}

#[derive(Debug, Default, Clone)]
pub struct AllocationFilter {
    pub subnet_id: Option<i32>,
    pub pool_id: Option<i32>,
    pub username: Option<String>,
    /// Any notation; compared normalised.
    pub mac_address: Option<MacAddress>,
    pub ip: Option<IpAddr>,
    /// active, released or expired.
    pub status: Option<String>,
}

pub async fn list_allocations(
    db: &impl ConnectionTrait,
    filter: &AllocationFilter,
    sort: &Sort<ip_allocation::Column>,
    page: PageRequest,
) -> Result<(Vec<ip_allocation::Model>, u64), IpamError> {
    let mut select = ip_allocation::Entity::find();
    if let Some(subnet_id) = filter.subnet_id {
        select = select.filter(ip_allocation::Column::SubnetId.eq(subnet_id));
    }
    if let Some(pool_id) = filter.pool_id {
        let subnet_ids: Vec<i32> = ip_subnet::Entity::find()
            .filter(ip_subnet::Column::PoolId.eq(pool_id))
            .all(db)
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect();
        select = select.filter(ip_allocation::Column::SubnetId.is_in(subnet_ids));
    }
    if let Some(username) = &filter.username {
        select = select.filter(ip_allocation::Column::Username.eq(username.as_str()));
    }
    if let Some(mac) = &filter.mac_address {
        select = select.filter(ip_allocation::Column::MacAddress.eq(mac.as_str()));
    }
    if let Some(ip) = filter.ip {
        select = select.filter(ip_allocation::Column::IpKey.eq(key_bytes(to_u128(ip))));
    }
    if let Some(status) = &filter.status {
        select = select.filter(ip_allocation::Column::Status.eq(status.as_str()));
    }
    Ok(fetch_page(db, sort.apply(select, ip_allocation::Column::Id), page).await?)
}

pub async fn get_allocation(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<ip_allocation::Model, IpamError> {
    ip_allocation::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| IpamError::NotFound(format!("no allocation with id {id}")))
}
