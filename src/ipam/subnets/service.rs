//! Creating, changing, listing and deleting subnets. A subnet's network and
//! pool are fixed once it exists.

use std::net::IpAddr;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::audit::{self, Actor};
use crate::error::FieldErrors;
use crate::ipam::domain::{
    check_gateway, initial_free_ranges, key_bytes, key_from_bytes, to_u128, Cidr, IpVersion,
    KeyRange, RangeStatus, VlanId,
};
use crate::ipam::entities::{ip_pool, ip_subnet};
use crate::ipam::free_ranges::{
    classify, give_back_key, insert_free_range, lock_subnet, take_free_key,
};
use crate::ipam::pools::service::{active_allocation_count, find_pool, remove_subnet_rows};
use crate::ipam::service::{IpamError, IpamSettings};
use crate::query::{fetch_page, PageRequest, Sort};
use crate::text::optional_text;

#[derive(Debug, Clone, Default)]
pub struct SubnetInput {
    pub pool_id: i32,
    /// CIDR, e.g. 10.0.0.0/24.
    pub network: String,
    pub gateway: Option<String>,
    pub vlan_id: Option<i64>,
    pub status: Option<String>,
    pub description: Option<String>,
}

/// What may change on an existing subnet (its network and pool may not).
#[derive(Debug, Clone, Default)]
pub struct SubnetUpdate {
    pub gateway: Option<String>,
    pub vlan_id: Option<i64>,
    pub status: Option<String>,
    pub description: Option<String>,
    /// The network as the request names it, if it does (`10.0.0.0/24`):
    /// accepted only when it is the subnet's own.
    pub network: Option<String>,
    /// The pool as the request names it, if it does (its id as text):
    /// accepted only when it is the subnet's own.
    pub pool_id: Option<String>,
}

/// A subnet's network and pool are fixed: an update that names others is
/// refused, field by field.
fn check_fixed_fields(subnet: &ip_subnet::Model, input: &SubnetUpdate) -> Result<(), IpamError> {
    const FIXED: &str = "cannot be changed; delete the subnet and create another";
    let mut errors = FieldErrors::new();
    if input
        .network
        .as_ref()
        .is_some_and(|network| *network != subnet_label(subnet))
    {
        errors.insert("network".into(), FIXED.into());
    }
    if input
        .pool_id
        .as_ref()
        .is_some_and(|pool_id| *pool_id != subnet.pool_id.to_string())
    {
        errors.insert("pool_id".into(), FIXED.into());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(IpamError::Invalid(errors))
    }
}

struct SubnetFields {
    gateway: Option<IpAddr>,
    vlan_id: Option<VlanId>,
    status: RangeStatus,
    description: Option<String>,
}

fn validate_subnet_fields(
    cidr: Option<&Cidr>,
    gateway: &Option<String>,
    vlan_id: Option<i64>,
    status: &Option<String>,
    description: &Option<String>,
    errors: &mut FieldErrors,
) -> Option<SubnetFields> {
    let gateway = match optional_text(gateway).map(crate::ipam::domain::parse_ip) {
        None => None,
        Some(Err(e)) => {
            errors.insert("gateway".into(), e);
            None
        }
        Some(Ok(gateway)) => {
            if let Some(cidr) = cidr {
                if let Err(e) = check_gateway(cidr, gateway) {
                    errors.insert("gateway".into(), e);
                }
            }
            Some(gateway)
        }
    };
    let vlan_id = match vlan_id.map(VlanId::new) {
        Some(Err(e)) => {
            errors.insert("vlan_id".into(), e);
            None
        }
        other => other.and_then(Result::ok),
    };
    let status = match optional_text(status).map(str::parse::<RangeStatus>) {
        None => Some(RangeStatus::Active),
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            errors.insert("status".into(), e);
            None
        }
    };
    if optional_text(description).is_some_and(|d| d.chars().count() > 1000) {
        errors.insert(
            "description".into(),
            "must be at most 1000 characters long".into(),
        );
    }
    Some(SubnetFields {
        gateway,
        vlan_id,
        status: status?,
        description: optional_text(description).map(str::to_string),
    })
}

pub fn subnet_cidr(subnet: &ip_subnet::Model) -> Cidr {
    let network: IpAddr = subnet.network.parse().expect("stored networks parse");
    Cidr::from_parts(network, subnet.prefix_length as u8).expect("stored networks are canonical")
}

pub(crate) fn subnet_range(subnet: &ip_subnet::Model) -> KeyRange {
    KeyRange {
        start: key_from_bytes(&subnet.network_key).unwrap_or(0),
        end: key_from_bytes(&subnet.last_key).unwrap_or(0),
    }
}

pub fn subnet_label(subnet: &ip_subnet::Model) -> String {
    format!("{}/{}", subnet.network, subnet.prefix_length)
}

pub async fn get_subnet(db: &impl ConnectionTrait, id: i32) -> Result<ip_subnet::Model, IpamError> {
    ip_subnet::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| IpamError::NotFound(format!("no subnet with id {id}")))
}

fn subnet_details(subnet: &ip_subnet::Model) -> serde_json::Value {
    serde_json::json!({
        "network": subnet_label(subnet), "pool_id": subnet.pool_id, "gateway": subnet.gateway,
        "vlan_id": subnet.vlan_id, "status": subnet.status,
    })
}

pub async fn create_subnet(
    db: &DatabaseConnection,
    actor: &Actor,
    input: &SubnetInput,
) -> Result<ip_subnet::Model, IpamError> {
    let mut errors = FieldErrors::new();
    let cidr = Cidr::parse(&input.network)
        .map_err(|e| errors.insert("network".into(), e))
        .ok();
    let fields = validate_subnet_fields(
        cidr.as_ref(),
        &input.gateway,
        input.vlan_id,
        &input.status,
        &input.description,
        &mut errors,
    );
    let (Some(cidr), Some(fields), true) = (cidr, fields, errors.is_empty()) else {
        return Err(IpamError::Invalid(errors));
    };

    let txn = begin_write(db).await?;
    let pool = find_pool(&txn, input.pool_id).await.map_err(|_| {
        IpamError::invalid("pool_id", format!("no IP pool with id {}", input.pool_id))
    })?;
    let range = cidr.range();
    let pool_range = KeyRange {
        start: key_from_bytes(&pool.start_key).unwrap_or(0),
        end: key_from_bytes(&pool.end_key).unwrap_or(0),
    };
    if IpVersion::from_number(pool.ip_version) != Some(cidr.version())
        || range.start < pool_range.start
        || range.end > pool_range.end
    {
        return Err(IpamError::invalid(
            "network",
            format!(
                "{cidr} is not inside pool \"{}\" ({} – {})",
                pool.name, pool.start_ip, pool.end_ip
            ),
        ));
    }
    // Any subnet that could overlap this one lies in a pool that overlaps
    // it. Locking those pools (in id order, so two creations never wait on
    // each other in a cycle) serialises every creation that could clash,
    // so the overlap check below cannot race.
    let mut neighbours = ip_pool::Entity::find()
        .filter(ip_pool::Column::StartKey.lte(key_bytes(range.end)))
        .filter(ip_pool::Column::EndKey.gte(key_bytes(range.start)))
        .order_by_asc(ip_pool::Column::Id);
    if txn.get_database_backend() != DbBackend::Sqlite {
        neighbours = neighbours.lock_exclusive();
    }
    neighbours.all(&txn).await.map_err(classify)?;
    // Two ranges overlap when each starts before the other ends.
    if let Some(other) = ip_subnet::Entity::find()
        .filter(ip_subnet::Column::NetworkKey.lte(key_bytes(range.end)))
        .filter(ip_subnet::Column::LastKey.gte(key_bytes(range.start)))
        .one(&txn)
        .await?
    {
        return Err(IpamError::invalid(
            "network",
            format!(
                "{cidr} overlaps subnet {} (id {})",
                subnet_label(&other),
                other.id
            ),
        ));
    }
    let now = Utc::now();
    let subnet = ip_subnet::ActiveModel {
        pool_id: Set(pool.id),
        ip_version: Set(cidr.version().number()),
        network: Set(cidr.network().to_string()),
        prefix_length: Set(i16::from(cidr.prefix_len())),
        network_key: Set(key_bytes(range.start)),
        last_key: Set(key_bytes(range.end)),
        gateway: Set(fields.gateway.map(|g| g.to_string())),
        vlan_id: Set(fields.vlan_id.map(|v| i32::from(v.get()))),
        description: Set(fields.description),
        status: Set(fields.status.as_str().into()),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    for free in initial_free_ranges(&cidr, fields.gateway) {
        insert_free_range(&txn, subnet.id, free).await?;
    }
    audit::record(
        &txn,
        actor,
        "ipam.subnet.create",
        "ip_subnet",
        Some(subnet.id.to_string()),
        subnet_details(&subnet),
    )
    .await?;
    txn.commit().await?;
    Ok(subnet)
}

/// The pool, row-locked until the transaction ends (None if there is none).
pub(crate) async fn lock_pool(
    txn: &DatabaseTransaction,
    id: i32,
) -> Result<Option<ip_pool::Model>, IpamError> {
    let mut query = ip_pool::Entity::find_by_id(id);
    if txn.get_database_backend() != DbBackend::Sqlite {
        query = query.lock_exclusive();
    }
    query.one(txn).await.map_err(classify)
}

pub(crate) async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, IpamError> {
    crate::db::begin_write(db).await.map_err(classify)
}

pub async fn update_subnet(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
    id: i32,
    input: &SubnetUpdate,
) -> Result<ip_subnet::Model, IpamError> {
    let (txn, subnet) = lock_subnet(db, settings, id).await?;
    check_fixed_fields(&subnet, input)?;
    let cidr = subnet_cidr(&subnet);
    let mut errors = FieldErrors::new();
    let fields = validate_subnet_fields(
        Some(&cidr),
        &input.gateway,
        input.vlan_id,
        &input.status,
        &input.description,
        &mut errors,
    );
    let (Some(fields), true) = (fields, errors.is_empty()) else {
        return Err(IpamError::Invalid(errors));
    };
    let old_gateway = subnet
        .gateway
        .as_deref()
        .and_then(|g| g.parse::<IpAddr>().ok());
    if fields.gateway != old_gateway {
        if let Some(new) = fields.gateway {
            // The new gateway must be free: take it out of the free set.
            if !take_free_key(&txn, subnet.id, to_u128(new)).await? {
                return Err(IpamError::invalid(
                    "gateway",
                    format!("{new} is allocated; release it before making it the gateway"),
                ));
            }
        }
        if let Some(old) = old_gateway {
            give_back_key(&txn, subnet.id, to_u128(old)).await?;
        }
    }
    let mut row: ip_subnet::ActiveModel = subnet.into();
    row.gateway = Set(fields.gateway.map(|g| g.to_string()));
    row.vlan_id = Set(fields.vlan_id.map(|v| i32::from(v.get())));
    row.status = Set(fields.status.as_str().into());
    row.description = Set(fields.description);
    row.updated_at = Set(Utc::now().into());
    let subnet = row.update(&txn).await?;
    audit::record(
        &txn,
        actor,
        "ipam.subnet.update",
        "ip_subnet",
        Some(id.to_string()),
        subnet_details(&subnet),
    )
    .await?;
    txn.commit().await?;
    Ok(subnet)
}

pub async fn delete_subnet(
    db: &DatabaseConnection,
    settings: IpamSettings,
    actor: &Actor,
    id: i32,
) -> Result<(), IpamError> {
    let (txn, subnet) = lock_subnet(db, settings, id).await?;
    let active = active_allocation_count(&txn, &[id]).await?;
    if active > 0 {
        return Err(IpamError::Conflict(format!(
            "subnet {} still has {active} active allocation(s); release them first",
            subnet_label(&subnet)
        )));
    }
    remove_subnet_rows(&txn, id).await?;
    audit::record(
        &txn,
        actor,
        "ipam.subnet.delete",
        "ip_subnet",
        Some(id.to_string()),
        subnet_details(&subnet),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The orders of a subnet list, by `?sort=` key.
pub const SUBNET_SORTS: &[(&str, ip_subnet::Column)] = &[
    ("network", ip_subnet::Column::NetworkKey),
    ("created_at", ip_subnet::Column::CreatedAt),
    ("pool_id", ip_subnet::Column::PoolId),
    ("id", ip_subnet::Column::Id),
];

/// Subnets in address order (the pages' fixed order; `network` above).
pub fn by_network() -> Sort<ip_subnet::Column> {
    Sort::by(vec![(ip_subnet::Column::NetworkKey, Order::Asc)])
}

#[derive(Debug, Default, Clone)]
pub struct SubnetFilter {
    pub pool_id: Option<i32>,
    pub status: Option<RangeStatus>,
    pub ip_version: Option<IpVersion>,
    /// Part of the network text, any case.
    pub search: Option<String>,
    /// Subnets containing this address.
    pub contains: Option<IpAddr>,
}

pub async fn list_subnets(
    db: &impl ConnectionTrait,
    filter: &SubnetFilter,
    sort: &Sort<ip_subnet::Column>,
    page: PageRequest,
) -> Result<(Vec<ip_subnet::Model>, u64), IpamError> {
    let mut select = ip_subnet::Entity::find();
    if let Some(pool_id) = filter.pool_id {
        select = select.filter(ip_subnet::Column::PoolId.eq(pool_id));
    }
    if let Some(status) = filter.status {
        select = select.filter(ip_subnet::Column::Status.eq(status.as_str()));
    }
    if let Some(version) = filter.ip_version {
        select = select.filter(ip_subnet::Column::IpVersion.eq(version.number()));
    }
    if let Some(search) = &filter.search {
        select = select.filter(crate::query::contains(ip_subnet::Column::Network, search));
    }
    if let Some(addr) = filter.contains {
        let key = key_bytes(to_u128(addr));
        select = select
            .filter(ip_subnet::Column::NetworkKey.lte(key.clone()))
            .filter(ip_subnet::Column::LastKey.gte(key));
    }
    Ok(fetch_page(db, sort.apply(select, ip_subnet::Column::Id), page).await?)
}
