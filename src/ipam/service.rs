//! IPAM service: pools, subnets, allocation, release, availability,
//! utilization, expiry and history. The pages, the API, the CLI and the
//! jobs all call these functions; none of them knows about HTTP.
//!
//! Concurrency: every change to a subnet's addresses runs in one
//! transaction that first takes the subnet's row lock (SELECT ... FOR
//! UPDATE on PostgreSQL and MariaDB; an IMMEDIATE transaction on SQLite,
//! which has one writer at a time). Allocations in different subnets
//! therefore never wait on each other on PostgreSQL and MariaDB. The lowest
//! free address comes from the subnet's free ranges (`ip_free_ranges`), one
//! index seek whatever the number of allocations; the unique index on
//! active (subnet_id, ip_key) stays the last line of defence.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::domain::{
    check_gateway, free_ranges_around, from_u128, initial_free_ranges, key_bytes, key_from_bytes,
    to_u128, Cidr, IpVersion, KeyRange, MacAddress, NetUsername, RangeStatus, VlanId,
};
use super::entities::{ip_allocation, ip_allocation_history, ip_free_range, ip_pool, ip_subnet};
use crate::audit::{self, Actor};
use crate::error::FieldErrors;
use crate::query::{fetch_page, PageRequest, Sort};
use crate::text::optional_text;

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("{0}")]
    NotFound(String),
    /// 422, one message per field.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// 409: "subnet 10.0.0.0/29 is full: 5 of 5 usable addresses allocated".
    #[error("subnet {subnet} is full: {allocated} of {usable} usable addresses allocated")]
    SubnetFull {
        subnet: String,
        allocated: u128,
        usable: u128,
    },
    /// 409: the requested address is allocated already.
    #[error("{ip} is already allocated in {subnet}")]
    AddressTaken { ip: IpAddr, subnet: String },
    /// 409: a change that the current state does not allow.
    #[error("{0}")]
    Conflict(String),
    /// 503: the subnet's lock was not granted within IPAM_LOCK_TIMEOUT.
    #[error("the subnet is busy with other changes; try again in a moment")]
    Busy,
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl IpamError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        IpamError::Invalid(FieldErrors::from([(field.to_string(), message.into())]))
    }
}

impl From<IpamError> for crate::error::AppError {
    fn from(err: IpamError) -> Self {
        use crate::error::AppError;
        match err {
            IpamError::NotFound(what) => AppError::NotFound(what),
            IpamError::Invalid(fields) => AppError::validation(fields),
            IpamError::SubnetFull { .. } => AppError::Conflict {
                code: "subnet_full",
                message: err.to_string(),
            },
            IpamError::AddressTaken { .. } => AppError::Conflict {
                code: "address_in_use",
                message: err.to_string(),
            },
            IpamError::Conflict(message) => AppError::Conflict {
                code: "conflict",
                message,
            },
            IpamError::Busy => AppError::Unavailable {
                message: err.to_string(),
                retry_after_secs: 1,
            },
            IpamError::Db(db) => db.into(),
        }
    }
}

/// Settings the service needs (from `Config`).
#[derive(Debug, Clone, Copy)]
pub struct IpamSettings {
    /// How long to wait for a subnet's lock before answering Busy.
    pub lock_timeout: Duration,
}

impl IpamSettings {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            lock_timeout: config.ipam_lock_timeout,
        }
    }
}

// ---------------------------------------------------------------- pools

/// A pool as the caller asks for it; `validate` turns it into [`PoolSpec`].
#[derive(Debug, Clone, Default)]
pub struct PoolInput {
    pub name: String,
    pub description: Option<String>,
    pub start_ip: String,
    pub end_ip: String,
    pub gateway: Option<String>,
    pub dns_servers: Vec<String>,
    pub vlan_id: Option<i64>,
    /// active (the default), reserved or deprecated.
    pub status: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PoolSpec {
    pub name: String,
    pub description: Option<String>,
    pub start: IpAddr,
    pub end: IpAddr,
    pub gateway: Option<IpAddr>,
    pub dns_servers: Vec<IpAddr>,
    pub vlan_id: Option<VlanId>,
    pub status: RangeStatus,
}

impl PoolInput {
    /// Checks every field; all problems are reported together.
    pub fn validate(&self) -> Result<PoolSpec, IpamError> {
        let mut errors = FieldErrors::new();
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 {
            errors.insert("name".into(), "must be 1 to 100 characters long".into());
        }
        let mut ip = |field: &str, text: &str| match super::domain::parse_ip(text) {
            Ok(ip) => Some(ip),
            Err(e) => {
                errors.insert(field.into(), e);
                None
            }
        };
        let start = ip("start_ip", &self.start_ip);
        let end = ip("end_ip", &self.end_ip);
        let gateway = optional_text(&self.gateway).and_then(|g| ip("gateway", g));
        let mut dns_servers = Vec::new();
        for (i, text) in self.dns_servers.iter().enumerate() {
            match super::domain::parse_ip(text) {
                Ok(addr) => dns_servers.push(addr),
                Err(e) => {
                    errors.insert(format!("dns_servers[{i}]"), e);
                }
            }
        }
        if let (Some(start), Some(end)) = (start, end) {
            if IpVersion::of(start) != IpVersion::of(end) {
                errors.insert(
                    "end_ip".into(),
                    "must be of the same family (IPv4 or IPv6) as start_ip".into(),
                );
            } else if to_u128(start) > to_u128(end) {
                errors.insert(
                    "end_ip".into(),
                    format!("{end} comes before start_ip {start}"),
                );
            } else if let Some(gateway) = gateway {
                if IpVersion::of(gateway) != IpVersion::of(start)
                    || !(to_u128(start)..=to_u128(end)).contains(&to_u128(gateway))
                {
                    errors.insert(
                        "gateway".into(),
                        format!("{gateway} is not inside {start} – {end}"),
                    );
                }
            }
        }
        let vlan_id = match self.vlan_id.map(VlanId::new) {
            Some(Err(e)) => {
                errors.insert("vlan_id".into(), e);
                None
            }
            Some(Ok(vlan)) => Some(vlan),
            None => None,
        };
        let status = match optional_text(&self.status).map(str::parse::<RangeStatus>) {
            None => Some(RangeStatus::Active),
            Some(Ok(status)) => Some(status),
            Some(Err(e)) => {
                errors.insert("status".into(), e);
                None
            }
        };
        if let Some(d) = optional_text(&self.description) {
            if d.chars().count() > 1000 {
                errors.insert(
                    "description".into(),
                    "must be at most 1000 characters long".into(),
                );
            }
        }
        match (start, end, status, errors.is_empty()) {
            (Some(start), Some(end), Some(status), true) => Ok(PoolSpec {
                name,
                description: optional_text(&self.description).map(str::to_string),
                start,
                end,
                gateway,
                dns_servers,
                vlan_id,
                status,
            }),
            _ => Err(IpamError::Invalid(errors)),
        }
    }
}

/// The DNS servers of a pool, from their JSON column.
pub fn dns_servers(pool: &ip_pool::Model) -> Vec<String> {
    pool.dns_servers
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

async fn find_pool(db: &impl ConnectionTrait, id: i32) -> Result<ip_pool::Model, IpamError> {
    ip_pool::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| IpamError::NotFound(format!("no IP pool with id {id}")))
}

pub async fn get_pool(db: &impl ConnectionTrait, id: i32) -> Result<ip_pool::Model, IpamError> {
    find_pool(db, id).await
}

async fn check_pool_name_free(
    db: &impl ConnectionTrait,
    name: &str,
    except: Option<i32>,
) -> Result<(), IpamError> {
    let mut query = ip_pool::Entity::find().filter(ip_pool::Column::Name.eq(name));
    if let Some(id) = except {
        query = query.filter(ip_pool::Column::Id.ne(id));
    }
    if query.count(db).await? > 0 {
        return Err(IpamError::invalid(
            "name",
            format!("a pool named \"{name}\" exists already"),
        ));
    }
    Ok(())
}

fn pool_model(spec: &PoolSpec, now: DateTime<Utc>) -> ip_pool::ActiveModel {
    ip_pool::ActiveModel {
        name: Set(spec.name.clone()),
        description: Set(spec.description.clone()),
        ip_version: Set(IpVersion::of(spec.start).number()),
        start_ip: Set(spec.start.to_string()),
        end_ip: Set(spec.end.to_string()),
        start_key: Set(key_bytes(to_u128(spec.start))),
        end_key: Set(key_bytes(to_u128(spec.end))),
        gateway: Set(spec.gateway.map(|g| g.to_string())),
        dns_servers: Set(Some(
            serde_json::to_string(
                &spec
                    .dns_servers
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>(),
            )
            .expect("strings serialise"),
        )),
        vlan_id: Set(spec.vlan_id.map(|v| i32::from(v.get()))),
        status: Set(spec.status.as_str().into()),
        updated_at: Set(now.into()),
        ..Default::default()
    }
}

fn pool_details(pool: &ip_pool::Model) -> serde_json::Value {
    serde_json::json!({
        "name": pool.name, "start_ip": pool.start_ip, "end_ip": pool.end_ip,
        "gateway": pool.gateway, "vlan_id": pool.vlan_id, "status": pool.status,
    })
}

pub async fn create_pool(
    db: &DatabaseConnection,
    actor: &Actor,
    input: &PoolInput,
) -> Result<ip_pool::Model, IpamError> {
    let spec = input.validate()?;
    let txn = begin_write(db).await?;
    check_pool_name_free(&txn, &spec.name, None).await?;
    let now = Utc::now();
    let mut row = pool_model(&spec, now);
    row.created_at = Set(now.into());
    let pool = row.insert(&txn).await.map_err(name_taken_as_invalid)?;
    audit::record(
        &txn,
        actor,
        "ipam.pool.create",
        "ip_pool",
        Some(pool.id.to_string()),
        pool_details(&pool),
    )
    .await?;
    txn.commit().await?;
    Ok(pool)
}

/// A unique-name violation that raced past the check is still a 422.
fn name_taken_as_invalid(err: DbErr) -> IpamError {
    if matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    ) {
        IpamError::invalid("name", "a pool with this name exists already")
    } else {
        IpamError::Db(err)
    }
}

pub async fn update_pool(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
    input: &PoolInput,
) -> Result<ip_pool::Model, IpamError> {
    let spec = input.validate()?;
    let txn = begin_write(db).await?;
    let existing = find_pool(&txn, id).await?;
    check_pool_name_free(&txn, &spec.name, Some(id)).await?;
    // Every subnet must stay inside the new range.
    let (start, end) = (to_u128(spec.start), to_u128(spec.end));
    let subnets = ip_subnet::Entity::find()
        .filter(ip_subnet::Column::PoolId.eq(id))
        .all(&txn)
        .await?;
    if let Some(outside) = subnets.iter().find(|s| {
        let range = subnet_range(s);
        range.start < start
            || range.end > end
            || IpVersion::from_number(s.ip_version) != Some(IpVersion::of(spec.start))
    }) {
        return Err(IpamError::invalid(
            "start_ip",
            format!(
                "the range must keep subnet {}/{} inside it",
                outside.network, outside.prefix_length
            ),
        ));
    }
    let mut row = pool_model(&spec, Utc::now());
    row.id = Set(existing.id);
    row.created_at = Set(existing.created_at);
    let pool = row.update(&txn).await.map_err(name_taken_as_invalid)?;
    audit::record(
        &txn,
        actor,
        "ipam.pool.update",
        "ip_pool",
        Some(id.to_string()),
        pool_details(&pool),
    )
    .await?;
    txn.commit().await?;
    Ok(pool)
}

/// Deletes a pool and its subnets; refused while any address in it is
/// allocated. Address history stays.
pub async fn delete_pool(db: &DatabaseConnection, actor: &Actor, id: i32) -> Result<(), IpamError> {
    let txn = begin_write(db).await?;
    let pool = lock_pool(&txn, id)
        .await?
        .ok_or_else(|| IpamError::NotFound(format!("no IP pool with id {id}")))?;
    // Lock the pool's subnets too, so that no allocation commits between
    // the count below and the deletion.
    let mut subnets = ip_subnet::Entity::find().filter(ip_subnet::Column::PoolId.eq(id));
    if txn.get_database_backend() != DbBackend::Sqlite {
        subnets = subnets.lock_exclusive();
    }
    let subnet_ids: Vec<i32> = subnets
        .all(&txn)
        .await
        .map_err(classify)?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let active = active_allocation_count(&txn, &subnet_ids).await?;
    if active > 0 {
        return Err(IpamError::Conflict(format!(
            "pool \"{}\" still has {active} active allocation(s); release them first",
            pool.name
        )));
    }
    for subnet_id in &subnet_ids {
        remove_subnet_rows(&txn, *subnet_id).await?;
    }
    ip_pool::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        actor,
        "ipam.pool.delete",
        "ip_pool",
        Some(id.to_string()),
        pool_details(&pool),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

async fn active_allocation_count(
    db: &impl ConnectionTrait,
    subnet_ids: &[i32],
) -> Result<u64, DbErr> {
    if subnet_ids.is_empty() {
        return Ok(0);
    }
    ip_allocation::Entity::find()
        .filter(ip_allocation::Column::SubnetId.is_in(subnet_ids.iter().copied()))
        .filter(ip_allocation::Column::Active.eq(true))
        .count(db)
        .await
}

/// A subnet's released allocations, free ranges and the subnet itself.
async fn remove_subnet_rows(db: &impl ConnectionTrait, subnet_id: i32) -> Result<(), DbErr> {
    ip_free_range::Entity::delete_many()
        .filter(ip_free_range::Column::SubnetId.eq(subnet_id))
        .exec(db)
        .await?;
    ip_allocation::Entity::delete_many()
        .filter(ip_allocation::Column::SubnetId.eq(subnet_id))
        .exec(db)
        .await?;
    ip_subnet::Entity::delete_by_id(subnet_id).exec(db).await?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct PoolFilter {
    /// Part of the name, any case.
    pub search: Option<String>,
    pub status: Option<RangeStatus>,
    pub ip_version: Option<IpVersion>,
}

pub async fn list_pools(
    db: &impl ConnectionTrait,
    filter: &PoolFilter,
    sort: &Sort<ip_pool::Column>,
    page: PageRequest,
) -> Result<(Vec<ip_pool::Model>, u64), IpamError> {
    let mut select = ip_pool::Entity::find();
    if let Some(search) = &filter.search {
        select = select.filter(crate::query::contains(ip_pool::Column::Name, search));
    }
    if let Some(status) = filter.status {
        select = select.filter(ip_pool::Column::Status.eq(status.as_str()));
    }
    if let Some(version) = filter.ip_version {
        select = select.filter(ip_pool::Column::IpVersion.eq(version.number()));
    }
    Ok(fetch_page(db, sort.apply(select, ip_pool::Column::Id), page).await?)
}

// -------------------------------------------------------------- subnets

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

/// What may change on an existing subnet (its network may not).
#[derive(Debug, Clone, Default)]
pub struct SubnetUpdate {
    pub gateway: Option<String>,
    pub vlan_id: Option<i64>,
    pub status: Option<String>,
    pub description: Option<String>,
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
    let gateway = match optional_text(gateway).map(super::domain::parse_ip) {
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

fn subnet_range(subnet: &ip_subnet::Model) -> KeyRange {
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
async fn lock_pool(
    txn: &DatabaseTransaction,
    id: i32,
) -> Result<Option<ip_pool::Model>, IpamError> {
    let mut query = ip_pool::Entity::find_by_id(id);
    if txn.get_database_backend() != DbBackend::Sqlite {
        query = query.lock_exclusive();
    }
    query.one(txn).await.map_err(classify)
}

async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, IpamError> {
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

// ------------------------------------------------------ locks and ranges

/// Whether an error means "the lock was not granted in time".
fn is_lock_timeout(err: &DbErr) -> bool {
    let text = err.to_string();
    // PostgreSQL 55P03 lock_not_available (lock_timeout), MariaDB 1205,
    // SQLite SQLITE_BUSY after busy_timeout.
    text.contains("55P03")
        || text.contains("lock timeout")
        || text.contains("Lock wait timeout exceeded")
        || text.contains("database is locked")
}

/// Deadlocks and serialisation failures: the transaction may simply be retried.
fn is_retryable(err: &DbErr) -> bool {
    let text = err.to_string();
    text.contains("40P01") || text.contains("40001") || text.contains("Deadlock found")
}

fn classify(err: DbErr) -> IpamError {
    if is_lock_timeout(&err) {
        IpamError::Busy
    } else {
        IpamError::Db(err)
    }
}

/// Opens the transaction every change to a subnet's addresses runs in, and
/// takes the subnet's row lock, waiting at most `settings.lock_timeout`.
async fn lock_subnet(
    db: &DatabaseConnection,
    settings: IpamSettings,
    id: i32,
) -> Result<(DatabaseTransaction, ip_subnet::Model), IpamError> {
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;
    let millis = settings.lock_timeout.as_millis().max(1);
    match backend {
        DbBackend::Postgres => {
            txn.execute_unprepared(&format!("SET LOCAL lock_timeout = '{millis}ms'"))
                .await?;
        }
        DbBackend::MySql => {
            // Whole seconds, at least one; per session, set before each lock.
            let secs = settings.lock_timeout.as_secs().max(1);
            txn.execute_unprepared(&format!("SET SESSION innodb_lock_wait_timeout = {secs}"))
                .await?;
        }
        _ => {}
    }
    let mut query = ip_subnet::Entity::find_by_id(id);
    if backend != DbBackend::Sqlite {
        query = query.lock_exclusive();
    }
    let subnet = query
        .one(&txn)
        .await
        .map_err(classify)?
        .ok_or_else(|| IpamError::NotFound(format!("no subnet with id {id}")))?;
    Ok((txn, subnet))
}

async fn insert_free_range(
    db: &impl ConnectionTrait,
    subnet_id: i32,
    range: KeyRange,
) -> Result<(), DbErr> {
    ip_free_range::ActiveModel {
        subnet_id: Set(subnet_id),
        start_key: Set(key_bytes(range.start)),
        end_key: Set(key_bytes(range.end)),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

fn free_range_of(row: &ip_free_range::Model) -> KeyRange {
    KeyRange {
        start: key_from_bytes(&row.start_key).unwrap_or(0),
        end: key_from_bytes(&row.end_key).unwrap_or(0),
    }
}

/// Replaces a free range by what is left of it once `key` is taken.
async fn split_free_range(
    db: &impl ConnectionTrait,
    row: ip_free_range::Model,
    key: u128,
) -> Result<(), DbErr> {
    let (below, above) = free_range_of(&row).without(key);
    let subnet_id = row.subnet_id;
    match below {
        Some(below) => {
            let mut active: ip_free_range::ActiveModel = row.into();
            active.end_key = Set(key_bytes(below.end));
            active.update(db).await?;
        }
        None => {
            ip_free_range::Entity::delete_by_id(row.id).exec(db).await?;
        }
    }
    if let Some(above) = above {
        insert_free_range(db, subnet_id, above).await?;
    }
    Ok(())
}

/// The free range containing `key`, if any.
async fn free_range_containing(
    db: &impl ConnectionTrait,
    subnet_id: i32,
    key: u128,
) -> Result<Option<ip_free_range::Model>, DbErr> {
    let candidate = ip_free_range::Entity::find()
        .filter(ip_free_range::Column::SubnetId.eq(subnet_id))
        .filter(ip_free_range::Column::StartKey.lte(key_bytes(key)))
        .order_by_desc(ip_free_range::Column::StartKey)
        .one(db)
        .await?;
    Ok(candidate.filter(|row| free_range_of(row).contains(key)))
}

/// Takes `key` out of the free set; false if it was not free.
async fn take_free_key(
    db: &impl ConnectionTrait,
    subnet_id: i32,
    key: u128,
) -> Result<bool, DbErr> {
    match free_range_containing(db, subnet_id, key).await? {
        Some(row) => {
            split_free_range(db, row, key).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Puts `key` back into the free set, merging it with its neighbours.
async fn give_back_key(db: &impl ConnectionTrait, subnet_id: i32, key: u128) -> Result<(), DbErr> {
    let below = match key.checked_sub(1) {
        Some(prev) => {
            ip_free_range::Entity::find()
                .filter(ip_free_range::Column::SubnetId.eq(subnet_id))
                .filter(ip_free_range::Column::EndKey.eq(key_bytes(prev)))
                .one(db)
                .await?
        }
        None => None,
    };
    let above = match key.checked_add(1) {
        Some(next) => {
            ip_free_range::Entity::find()
                .filter(ip_free_range::Column::SubnetId.eq(subnet_id))
                .filter(ip_free_range::Column::StartKey.eq(key_bytes(next)))
                .one(db)
                .await?
        }
        None => None,
    };
    match (below, above) {
        (Some(below), Some(above)) => {
            let end = above.end_key.clone();
            ip_free_range::Entity::delete_by_id(above.id)
                .exec(db)
                .await?;
            let mut row: ip_free_range::ActiveModel = below.into();
            row.end_key = Set(end);
            row.update(db).await?;
        }
        (Some(below), None) => {
            let mut row: ip_free_range::ActiveModel = below.into();
            row.end_key = Set(key_bytes(key));
            row.update(db).await?;
        }
        (None, Some(above)) => {
            let mut row: ip_free_range::ActiveModel = above.into();
            row.start_key = Set(key_bytes(key));
            row.update(db).await?;
        }
        (None, None) => {
            insert_free_range(
                db,
                subnet_id,
                KeyRange {
                    start: key,
                    end: key,
                },
            )
            .await?
        }
    }
    Ok(())
}

// ------------------------------------------------------------ allocation

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
    let ip = match optional_text(&input.ip_address).map(super::domain::parse_ip) {
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
            Err(IpamError::Db(err))
                if attempt < ATTEMPTS
                    && matches!(
                        err.sql_err(),
                        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                    ) =>
            {
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

// ------------------------------------------------------ reads and reports

/// Up to `limit` free addresses of a subnet in order, starting after
/// `after`: a walk of the free ranges, so its cost depends on `limit`, not
/// on the subnet's size.
pub async fn available_ips(
    db: &impl ConnectionTrait,
    subnet_id: i32,
    after: Option<IpAddr>,
    limit: usize,
) -> Result<Vec<IpAddr>, IpamError> {
    let subnet = get_subnet(db, subnet_id).await?;
    let version = IpVersion::from_number(subnet.ip_version).unwrap_or(IpVersion::V4);
    let from = match after {
        Some(addr) if IpVersion::of(addr) != version => {
            return Err(IpamError::invalid(
                "after",
                format!("{addr} is not of this subnet's family"),
            ))
        }
        Some(addr) => match to_u128(addr).checked_add(1) {
            Some(next) => next,
            None => return Ok(Vec::new()),
        },
        None => 0,
    };
    let mut found = Vec::with_capacity(limit.min(1000));
    let mut ranges = ip_free_range::Entity::find()
        .filter(ip_free_range::Column::SubnetId.eq(subnet_id))
        .filter(ip_free_range::Column::EndKey.gte(key_bytes(from)))
        .order_by_asc(ip_free_range::Column::StartKey)
        .paginate(db, 64);
    while found.len() < limit {
        let Some(page) = ranges.fetch_and_next().await? else {
            break;
        };
        for row in page {
            let range = free_range_of(&row);
            let mut key = range.start.max(from);
            while key <= range.end && found.len() < limit {
                found.push(from_u128(key, version));
                match key.checked_add(1) {
                    Some(next) => key = next,
                    None => break,
                }
            }
            if found.len() >= limit {
                break;
            }
        }
    }
    Ok(found)
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Utilization {
    /// Usable addresses (less network, broadcast and gateway).
    #[schema(value_type = u64)]
    pub total: u128,
    #[schema(value_type = u64)]
    pub allocated: u128,
    #[schema(value_type = u64)]
    pub free: u128,
    /// allocated / total, in percent, two decimals.
    pub percent: f64,
}

impl Utilization {
    fn new(total: u128, allocated: u128) -> Self {
        let percent = if total == 0 {
            0.0
        } else {
            ((allocated as f64 / total as f64) * 10_000.0).round() / 100.0
        };
        Self {
            total,
            allocated,
            free: total.saturating_sub(allocated),
            percent,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SubnetUtilization {
    pub subnet_id: i32,
    #[schema(example = "100.64.0.0/24")]
    pub network: String,
    #[serde(flatten)]
    pub utilization: Utilization,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PoolUtilization {
    pub pool_id: i32,
    #[serde(flatten)]
    pub utilization: Utilization,
    pub subnets: Vec<SubnetUtilization>,
}

impl PoolUtilization {
    /// A pool without subnets.
    pub fn empty(pool_id: i32) -> Self {
        Self {
            pool_id,
            utilization: Utilization::new(0, 0),
            subnets: Vec::new(),
        }
    }
}

#[derive(FromQueryResult)]
struct CountPerSubnet {
    subnet_id: i32,
    allocated: i64,
}

/// Active allocations per subnet, counted by the database.
///
/// COUNT(subnet_id), not COUNT(id): every column the query reads is then in
/// the unique index on (subnet_id, ip_key, active), so PostgreSQL counts
/// the pool's entries with an index-only scan. COUNT(id) made it read the
/// whole table, every pool's allocations (docs/BENCHMARKS.md). (SQLite and
/// MariaDB keep the primary key in each index and were not affected.)
async fn allocated_per_subnet(
    db: &impl ConnectionTrait,
    subnet_ids: &[i32],
) -> Result<HashMap<i32, u128>, DbErr> {
    if subnet_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let counts = ip_allocation::Entity::find()
        .select_only()
        .column(ip_allocation::Column::SubnetId)
        .column_as(ip_allocation::Column::SubnetId.count(), "allocated")
        .filter(ip_allocation::Column::SubnetId.is_in(subnet_ids.iter().copied()))
        .filter(ip_allocation::Column::Active.eq(true))
        .group_by(ip_allocation::Column::SubnetId)
        .into_model::<CountPerSubnet>()
        .all(db)
        .await?;
    Ok(counts
        .into_iter()
        .map(|c| (c.subnet_id, c.allocated.max(0) as u128))
        .collect())
}

/// Utilization of a pool and of each of its subnets, from one aggregate
/// query (allocations are counted, not loaded).
pub async fn pool_utilization(
    db: &impl ConnectionTrait,
    pool_id: i32,
) -> Result<PoolUtilization, IpamError> {
    find_pool(db, pool_id).await?;
    let mut usage = pools_utilization(db, &[pool_id]).await?;
    Ok(usage
        .remove(&pool_id)
        .unwrap_or_else(|| PoolUtilization::empty(pool_id)))
}

/// Utilization of several pools (a page of the pool list) in two queries:
/// their subnets, and one aggregate count of active allocations.
pub async fn pools_utilization(
    db: &impl ConnectionTrait,
    pool_ids: &[i32],
) -> Result<HashMap<i32, PoolUtilization>, IpamError> {
    let subnets = ip_subnet::Entity::find()
        .filter(ip_subnet::Column::PoolId.is_in(pool_ids.iter().copied()))
        .order_by_asc(ip_subnet::Column::NetworkKey)
        .all(db)
        .await?;
    let per_subnet = subnets_utilization(db, &subnets).await?;
    let mut pools: HashMap<i32, PoolUtilization> = pool_ids
        .iter()
        .map(|&pool_id| (pool_id, PoolUtilization::empty(pool_id)))
        .collect();
    for subnet in &subnets {
        let Some(usage) = per_subnet.get(&subnet.id).cloned() else {
            continue;
        };
        if let Some(pool) = pools.get_mut(&subnet.pool_id) {
            pool.utilization = Utilization::new(
                pool.utilization.total.saturating_add(usage.total),
                pool.utilization.allocated + usage.allocated,
            );
            pool.subnets.push(SubnetUtilization {
                subnet_id: subnet.id,
                network: subnet_label(subnet),
                utilization: usage,
            });
        }
    }
    Ok(pools)
}

/// Utilization of each subnet given, from one aggregate count.
pub async fn subnets_utilization(
    db: &impl ConnectionTrait,
    subnets: &[ip_subnet::Model],
) -> Result<HashMap<i32, Utilization>, IpamError> {
    let ids: Vec<i32> = subnets.iter().map(|s| s.id).collect();
    let counts = allocated_per_subnet(db, &ids).await?;
    Ok(subnets
        .iter()
        .map(|s| {
            let usable = usable_count(&subnet_cidr(s), s.gateway.as_deref());
            let used = counts.get(&s.id).copied().unwrap_or(0);
            (s.id, Utilization::new(usable, used))
        })
        .collect())
}

/// Utilization of one subnet.
pub async fn subnet_utilization(
    db: &impl ConnectionTrait,
    subnet: &ip_subnet::Model,
) -> Result<Utilization, IpamError> {
    let mut usage = subnets_utilization(db, std::slice::from_ref(subnet)).await?;
    Ok(usage
        .remove(&subnet.id)
        .unwrap_or_else(|| Utilization::new(0, 0)))
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

/// Who held `ip` at `at`: the allocations whose holding interval contains
/// that moment (normally one; none if the address was free).
pub async fn address_history(
    db: &impl ConnectionTrait,
    ip: IpAddr,
    at: DateTime<Utc>,
) -> Result<Vec<ip_allocation_history::Model>, IpamError> {
    Ok(ip_allocation_history::Entity::find()
        .filter(ip_allocation_history::Column::IpKey.eq(key_bytes(to_u128(ip))))
        .filter(ip_allocation_history::Column::Action.eq("allocate"))
        .filter(ip_allocation_history::Column::AllocatedAt.lte(at.fixed_offset()))
        .filter(
            Condition::any()
                .add(ip_allocation_history::Column::ReleasedAt.is_null())
                .add(ip_allocation_history::Column::ReleasedAt.gt(at.fixed_offset())),
        )
        .order_by_desc(ip_allocation_history::Column::AllocatedAt)
        .all(db)
        .await?)
}

/// Every holding of `ip`, newest first (for the history page).
pub async fn address_timeline(
    db: &impl ConnectionTrait,
    ip: IpAddr,
    limit: u64,
) -> Result<Vec<ip_allocation_history::Model>, IpamError> {
    Ok(ip_allocation_history::Entity::find()
        .filter(ip_allocation_history::Column::IpKey.eq(key_bytes(to_u128(ip))))
        .order_by_desc(ip_allocation_history::Column::CreatedAt)
        .order_by_desc(ip_allocation_history::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}
