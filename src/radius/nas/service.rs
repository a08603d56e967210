//! NAS management: the RADIUS clients (routers) in FreeRADIUS's `nas`
//! table, on the RADIUS connection (`state.db.radius`).
//!
//! FreeRADIUS loads this table when `read_clients = yes` in its `sql`
//! module: each row lets the NAS at `nasname` send requests signed with
//! `secret`, and ispd reads the same row to send that NAS Disconnect and
//! CoA requests (see [`crate::radius::coa`]).
//!
//! **The secret and the SNMP community are write-only.** FreeRADIUS reads
//! `nas.secret` (and `checkrad` the community) as stored,
//! so it is kept in clear in the RADIUS database: that is inherent to
//! FreeRADIUS's schema, and the RADIUS database must be protected
//! accordingly. ispd never returns either (no API view or page has them;
//! they say only whether one is set), never logs them ([`NasInput`] holds
//! them as [`Secret`]s, whose `Debug` prints `[redacted]`) and records in
//! the audit log only that they changed. An update without them keeps the
//! stored ones; a new address needs the secret again; `clear_community`
//! removes the community. A new secret has at least [`NEW_SECRET_MIN_LEN`]
//! characters; shorter ones already stored keep working.
//!
//! **Validation.** `nasname` is one IPv4/IPv6 address or a host name
//! (stored in its canonical, lower-case form) and unique, compared without
//! regard to case. The other limits are the narrowest column widths of
//! FreeRADIUS's three schemas (MySQL/SQLite): shortname 32, type 30,
//! secret 60, server 64, community 50, description 200 characters.
//!
//! **Uniqueness under concurrency.** FreeRADIUS's schema has no unique
//! index on `nasname`, so the check and the write share one transaction
//! that serialises NAS writers: `BEGIN IMMEDIATE` on SQLite, a
//! `SHARE ROW EXCLUSIVE` table lock on PostgreSQL, `SELECT ... FOR UPDATE`
//! on MySQL/MariaDB (there two racing inserts of one name can end in a
//! deadlock error for one of them, never in a duplicate).

use std::net::IpAddr;

use sea_orm::sea_query::{Expr, Func, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect, Set,
};
use serde_json::json;
use tracing::instrument;

use crate::audit::{self, Actor};
use crate::crypto::Secret;
use crate::db::begin_write;
use crate::error::{AppError, FieldErrors};
use crate::query::{contains, fetch_page, PageRequest, Sort};
use crate::radius::coa::DEFAULT_COA_PORT;
use crate::radius::entities::nas;
use crate::text::has_control;

/// The `type` values ispd accepts: FreeRADIUS's `checkrad` types, plus
/// `mikrotik`. `other` is FreeRADIUS's default.
pub const NAS_TYPES: &[&str] = &[
    "other",
    "mikrotik",
    "cisco",
    "juniper",
    "livingston",
    "computone",
    "max40xx",
    "multitech",
    "netserver",
    "pathras",
    "patton",
    "portslave",
    "tc",
    "usrhiper",
];

pub const SECRET_MIN_LEN: usize = 8;
/// The shortest secret ispd accepts for a new NAS, or as a new secret: a
/// shared secret is the only key of RADIUS's MD5-based signatures, and
/// RFC 6614's advice is 16 characters or more.
pub const NEW_SECRET_MIN_LEN: usize = 16;
/// `varchar(60)` in FreeRADIUS's MySQL and SQLite schemas.
pub const SECRET_MAX_LEN: usize = 60;

/// The sort keys of `GET /nas`.
pub const NAS_SORTS: &[(&str, nas::Column)] = &[
    ("id", nas::Column::Id),
    ("nasname", nas::Column::Nasname),
    ("shortname", nas::Column::Shortname),
    ("type", nas::Column::NasType),
];

#[derive(Debug, thiserror::Error)]
pub enum NasError {
    #[error("{0}")]
    NotFound(String),
    /// 422, one message per field.
    #[error("some fields are not valid")]
    Invalid(FieldErrors),
    /// 409: another NAS has this nasname.
    #[error("{0}")]
    Duplicate(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl From<NasError> for AppError {
    fn from(err: NasError) -> Self {
        match err {
            NasError::NotFound(what) => AppError::NotFound(what),
            NasError::Invalid(fields) => AppError::validation(fields),
            NasError::Duplicate(message) => AppError::Conflict {
                code: "nas_exists",
                message,
            },
            NasError::Db(db) => db.into(),
        }
    }
}

/// What a form or API body gives for a NAS; [`NasInput::validate`] turns it
/// into what is written. Its `Debug` is safe to log: the secret is a
/// [`Secret`], which prints `[redacted]`.
#[derive(Debug, Clone, Default)]
pub struct NasInput {
    pub nasname: String,
    pub shortname: Option<String>,
    pub nas_type: Option<String>,
    pub ports: Option<i64>,
    /// Required to create; `None` on update keeps the stored one.
    pub secret: Option<Secret>,
    pub server: Option<String>,
    /// `None` on update keeps the stored one (write-only).
    pub community: Option<Secret>,
    /// Removes the stored community.
    pub clear_community: bool,
    pub description: Option<String>,
}

/// A validated NAS, ready to write.
#[derive(Debug, Clone)]
pub struct ValidNas {
    pub nasname: String,
    pub shortname: String,
    pub nas_type: String,
    pub ports: Option<i32>,
    pub secret: Option<Secret>,
    pub server: Option<String>,
    pub community: Option<Secret>,
    pub clear_community: bool,
    pub description: Option<String>,
}

fn trimmed(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// An IP address (in its canonical text) or a host name (lower case).
pub fn parse_nasname(raw: &str) -> Result<String, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("is required: the NAS's IP address or host name".into());
    }
    if text.chars().count() > 128 {
        return Err("must be at most 128 characters long".into());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &&str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    // A last label of digits only would make "10.0.0.300" a host name.
    let last_is_numeric = labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    if labels.iter().all(label_ok) && !last_is_numeric {
        Ok(name)
    } else {
        Err(format!(
            "\"{text}\" is neither an IP address (such as 10.0.0.1) nor a host name (such as nas1.example.net)"
        ))
    }
}

/// A RADIUS shared secret: 8 to 60 printable ASCII characters. ASCII only,
/// because both ends must agree on the bytes.
pub fn check_secret(secret: &str) -> Result<(), String> {
    let len = secret.chars().count();
    if !(SECRET_MIN_LEN..=SECRET_MAX_LEN).contains(&len) {
        return Err(format!(
            "must be {SECRET_MIN_LEN} to {SECRET_MAX_LEN} characters long"
        ));
    }
    if !secret.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(
            "may contain only printable ASCII characters (no accents or control characters)".into(),
        );
    }
    if secret.trim() != secret {
        return Err("must not begin or end with a space".into());
    }
    Ok(())
}

/// Letters, digits and `. _ -`, 1 to `max` characters.
fn check_name(field: &str, value: &str, max: usize, errors: &mut FieldErrors) {
    if value.chars().count() > max {
        errors.insert(
            field.into(),
            format!("must be at most {max} characters long"),
        );
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        errors.insert(
            field.into(),
            "may contain only letters, digits and . _ -".into(),
        );
    }
}

fn check_text(field: &str, value: &str, max: usize, errors: &mut FieldErrors) {
    if value.chars().count() > max {
        errors.insert(
            field.into(),
            format!("must be at most {max} characters long"),
        );
    } else if has_control(value) {
        errors.insert(field.into(), "must not contain control characters".into());
    }
}

impl NasInput {
    /// Checks every field; `creating` makes the secret required.
    pub fn validate(&self, creating: bool) -> Result<ValidNas, NasError> {
        let mut errors = FieldErrors::new();
        let nasname = parse_nasname(&self.nasname)
            .map_err(|e| errors.insert("nasname".into(), e))
            .unwrap_or_default();
        let shortname = match trimmed(&self.shortname) {
            Some(s) => {
                check_name("shortname", &s, 32, &mut errors);
                s
            }
            // PostgreSQL's column is NOT NULL; FreeRADIUS names the
            // client by it in its logs.
            None => nasname.chars().take(32).collect(),
        };
        let nas_type = match trimmed(&self.nas_type).map(|t| t.to_ascii_lowercase()) {
            None => "other".to_string(),
            Some(t) if NAS_TYPES.contains(&t.as_str()) => t,
            Some(t) => {
                errors.insert(
                    "type".into(),
                    format!(
                        "\"{t}\" is not a NAS type; use one of {}",
                        NAS_TYPES.join(", ")
                    ),
                );
                String::new()
            }
        };
        let ports = match self.ports {
            None => None,
            Some(p) if (1..=65535).contains(&p) => Some(p as i32),
            Some(_) => {
                errors.insert(
                    "ports".into(),
                    "must be a UDP port between 1 and 65535 (the NAS's CoA/Disconnect port)".into(),
                );
                None
            }
        };
        let secret = match &self.secret {
            Some(secret) if !secret.expose().is_empty() => {
                if let Err(e) = check_secret(secret.expose()) {
                    errors.insert("secret".into(), e);
                } else if secret.expose().chars().count() < NEW_SECRET_MIN_LEN {
                    errors.insert(
                        "secret".into(),
                        format!(
                            "must be at least {NEW_SECRET_MIN_LEN} characters long for a new secret \
                             (set the same one on the NAS)"
                        ),
                    );
                }
                Some(secret.clone())
            }
            _ if creating => {
                errors.insert(
                    "secret".into(),
                    "is required: the RADIUS shared secret the NAS is configured with".into(),
                );
                None
            }
            _ => None,
        };
        let server = trimmed(&self.server);
        if let Some(s) = &server {
            check_name("server", s, 64, &mut errors);
        }
        let community = self
            .community
            .as_ref()
            .map(|c| c.expose().trim())
            .filter(|c| !c.is_empty())
            .map(Secret::new);
        if let Some(c) = &community {
            check_text("community", c.expose(), 50, &mut errors);
        }
        let description = trimmed(&self.description);
        if let Some(d) = &description {
            check_text("description", d, 200, &mut errors);
        }
        if !errors.is_empty() {
            return Err(NasError::Invalid(errors));
        }
        Ok(ValidNas {
            nasname,
            shortname,
            nas_type,
            ports,
            secret,
            server,
            community,
            clear_community: self.clear_community,
            description,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct NasFilter {
    /// Part of the nasname, shortname or description, any case.
    pub q: Option<String>,
}

pub async fn list_nas(
    radius_db: &DatabaseConnection,
    filter: &NasFilter,
    sort: &Sort<nas::Column>,
    page: PageRequest,
) -> Result<(Vec<nas::Model>, u64), NasError> {
    let mut select = nas::Entity::find();
    if let Some(q) = &filter.q {
        select = select.filter(
            sea_orm::Condition::any()
                .add(contains(nas::Column::Nasname, q))
                .add(contains(nas::Column::Shortname, q))
                .add(contains(nas::Column::Description, q)),
        );
    }
    Ok(fetch_page(radius_db, sort.apply(select, nas::Column::Id), page).await?)
}

/// The UDP port Disconnect/CoA requests go to: `ports` when it is one,
/// else 3799.
pub fn coa_port(n: &nas::Model) -> u16 {
    n.ports
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_COA_PORT)
}

pub async fn get_nas(radius_db: &impl ConnectionTrait, id: i32) -> Result<nas::Model, NasError> {
    nas::Entity::find_by_id(id)
        .one(radius_db)
        .await?
        .ok_or_else(|| NasError::NotFound(format!("there is no NAS {id}")))
}

/// `lower(nasname) = <name in lower case>`, the same on every backend.
fn nasname_is(nasname: &str) -> SimpleExpr {
    // Imported here only: ExprTrait's min/max would shadow Ord's elsewhere.
    use sea_orm::sea_query::ExprTrait;
    Expr::expr(Func::lower(Expr::col(nas::Column::Nasname))).eq(nasname.to_lowercase())
}

/// The NAS whose `nasname` is this address (as FreeRADIUS wrote it into
/// `radacct.nasipaddress`), compared without regard to case.
pub async fn find_by_nasname(
    radius_db: &impl ConnectionTrait,
    nasname: &str,
) -> Result<Option<nas::Model>, DbErr> {
    nas::Entity::find()
        .filter(nasname_is(nasname))
        .one(radius_db)
        .await
}

/// Inside a write transaction: fails with [`NasError::Duplicate`] when
/// another NAS (not `except`) has this nasname. Serialises NAS writers first
/// (see the module's documentation).
async fn ensure_unique(
    txn: &DatabaseTransaction,
    nasname: &str,
    except: Option<i32>,
) -> Result<(), NasError> {
    let mut select = nas::Entity::find().filter(nasname_is(nasname));
    if let Some(id) = except {
        select = select.filter(nas::Column::Id.ne(id));
    }
    match txn.get_database_backend() {
        DbBackend::Postgres => {
            txn.execute_unprepared("LOCK TABLE nas IN SHARE ROW EXCLUSIVE MODE")
                .await?;
        }
        DbBackend::MySql => {
            select = select.lock_exclusive();
        }
        _ => {}
    }
    if let Some(other) = select.one(txn).await? {
        return Err(NasError::Duplicate(format!(
            "a NAS named \"{}\" already exists (id {})",
            other.nasname, other.id
        )));
    }
    Ok(())
}

/// What the audit log records of a NAS: everything but the secret.
fn audit_details(nas: &nas::Model, secret_changed: bool) -> serde_json::Value {
    json!({
        "nasname": nas.nasname,
        "shortname": nas.shortname,
        "type": nas.nas_type,
        "ports": nas.ports,
        "server": nas.server,
        "community_set": nas.community.is_some(),
        "description": nas.description,
        "secret_changed": secret_changed,
    })
}

/// Adds a NAS; FreeRADIUS sees it after its next client reload (restart or
/// HUP, since it reads the table at start-up).
#[instrument(skip_all)]
pub async fn create_nas(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    actor: &Actor,
    input: &NasInput,
) -> Result<nas::Model, NasError> {
    let valid = input.validate(true)?;
    let secret = valid
        .secret
        .as_ref()
        .map(|s| s.expose().to_string())
        .unwrap_or_default();
    let txn = begin_write(radius_db).await?;
    ensure_unique(&txn, &valid.nasname, None).await?;
    let created = nas::ActiveModel {
        nasname: Set(valid.nasname),
        shortname: Set(Some(valid.shortname)),
        nas_type: Set(Some(valid.nas_type)),
        ports: Set(valid.ports),
        secret: Set(secret),
        server: Set(valid.server),
        community: Set(valid.community.map(|c| c.expose().to_string())),
        description: Set(valid.description),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    // The audit log is in the main DB: it cannot share the RADIUS
    // transaction, so it follows the commit.
    audit::record(
        main_db,
        actor,
        "nas.create",
        "nas",
        Some(created.id.to_string()),
        audit_details(&created, true),
    )
    .await?;
    tracing::info!(nas.id = created.id, nas.name = %created.nasname, "NAS created");
    Ok(created)
}

/// Replaces a NAS's settings; without a secret the stored one stays, but
/// only while its address does: a new `nasname` needs the secret again.
#[instrument(skip_all, fields(nas.id = id))]
pub async fn update_nas(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
    input: &NasInput,
) -> Result<nas::Model, NasError> {
    let valid = input.validate(false)?;
    let txn = begin_write(radius_db).await?;
    let current = get_nas(&txn, id).await?;
    ensure_unique(&txn, &valid.nasname, Some(id)).await?;
    if valid.secret.is_none() && valid.nasname != current.nasname {
        return Err(NasError::Invalid(FieldErrors::from([(
            "secret".to_string(),
            format!(
                "is required again because the address changed (from {} to {}): \
                 a stored shared secret is only ever used with the NAS it was stored for",
                current.nasname, valid.nasname
            ),
        )])));
    }
    let secret_changed = valid
        .secret
        .as_ref()
        .is_some_and(|s| s.expose() != current.secret);
    let mut model: nas::ActiveModel = current.into();
    model.nasname = Set(valid.nasname);
    model.shortname = Set(Some(valid.shortname));
    model.nas_type = Set(Some(valid.nas_type));
    model.ports = Set(valid.ports);
    if let Some(secret) = &valid.secret {
        model.secret = Set(secret.expose().to_string());
    }
    model.server = Set(valid.server);
    if let Some(community) = &valid.community {
        model.community = Set(Some(community.expose().to_string()));
    } else if valid.clear_community {
        model.community = Set(None);
    }
    model.description = Set(valid.description);
    let updated = model.update(&txn).await?;
    txn.commit().await?;
    audit::record(
        main_db,
        actor,
        "nas.update",
        "nas",
        Some(id.to_string()),
        audit_details(&updated, secret_changed),
    )
    .await?;
    Ok(updated)
}

/// Deletes a NAS; FreeRADIUS stops accepting it after its next client
/// reload.
#[instrument(skip_all, fields(nas.id = id))]
pub async fn delete_nas(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
) -> Result<nas::Model, NasError> {
    let txn = begin_write(radius_db).await?;
    let current = get_nas(&txn, id).await?;
    nas::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    audit::record(
        main_db,
        actor,
        "nas.delete",
        "nas",
        Some(id.to_string()),
        audit_details(&current, false),
    )
    .await?;
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nasnames_are_addresses_or_host_names() {
        assert_eq!(parse_nasname(" 10.0.0.1 ").unwrap(), "10.0.0.1");
        assert_eq!(parse_nasname("2001:DB8::1").unwrap(), "2001:db8::1");
        assert_eq!(
            parse_nasname("NAS1.Example.NET.").unwrap(),
            "nas1.example.net"
        );
        assert_eq!(parse_nasname("nas-1").unwrap(), "nas-1");
        for bad in [
            "",
            "10.0.0.300",
            "10.0.0",
            "-nas.example",
            "nas_1.example",
            "a..b",
            "10.0.0.0/24",
            "nas 1",
        ] {
            assert!(parse_nasname(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_nasname(&"a".repeat(129)).is_err());
    }

    #[test]
    fn secrets_are_printable_ascii_of_8_to_60() {
        assert!(check_secret("testing123").is_ok());
        assert!(check_secret("with space inside").is_ok());
        assert!(check_secret("short").is_err());
        assert!(check_secret(&"x".repeat(61)).is_err());
        assert!(check_secret(&"x".repeat(60)).is_ok());
        assert!(check_secret("geheim-schlüssel").is_err());
        assert!(check_secret("tab\there-long").is_err());
        assert!(check_secret(" leading-space").is_err());
    }

    #[test]
    fn validation_names_every_bad_field() {
        let input = NasInput {
            nasname: "not a host".into(),
            shortname: Some("bad name!".into()),
            nas_type: Some("router9000".into()),
            ports: Some(70000),
            secret: None,
            server: Some("x y".into()),
            community: Some(Secret::new("c".repeat(51))),
            clear_community: false,
            description: Some("d".repeat(201)),
        };
        let Err(NasError::Invalid(fields)) = input.validate(true) else {
            panic!("expected field errors");
        };
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "community",
                "description",
                "nasname",
                "ports",
                "secret",
                "server",
                "shortname",
                "type"
            ]
        );
    }

    #[test]
    fn defaults_fill_shortname_and_type_and_update_may_omit_the_secret() {
        let input = NasInput {
            nasname: "192.0.2.10".into(),
            ..Default::default()
        };
        let valid = input.validate(false).unwrap();
        assert_eq!(valid.shortname, "192.0.2.10");
        assert_eq!(valid.nas_type, "other");
        assert!(valid.secret.is_none());
        assert!(
            matches!(input.validate(true), Err(NasError::Invalid(f)) if f.contains_key("secret"))
        );
    }

    #[test]
    fn the_input_never_prints_its_secret() {
        let input = NasInput {
            nasname: "10.0.0.1".into(),
            secret: Some(Secret::new("hunter2-hunter2")),
            ..Default::default()
        };
        assert!(!format!("{input:?}").contains("hunter2"));
    }
}
