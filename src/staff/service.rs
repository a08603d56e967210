//! Creating staff, resetting passwords, issuing and revoking API tokens.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use sha2::{Digest, Sha256};

use super::entities::{api_token, staff_session, staff_user};
use super::{Role, StaffUsername};
use crate::audit::{self, Actor};
use crate::crypto::Secret;
use crate::db::begin_write;
use crate::query::{contains, fetch_page, PageRequest, Sort};

#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("a staff member named \"{0}\" already exists")]
    UsernameTaken(String),
    #[error("no staff member named \"{0}\"")]
    NoSuchUser(String),
    #[error("no API token with id {0}")]
    NoSuchToken(i32),
    /// A token lifetime its role does not allow.
    #[error("{0}")]
    TokenLifetime(String),
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
}

/// The longest an admin token lasts, and what it gets when no lifetime is
/// asked for: a leaked admin token must not work for ever.
pub const ADMIN_TOKEN_MAX_DAYS: i64 = 90;

/// When a new token of `role` expires: as asked, except that an admin
/// token always expires, within [`ADMIN_TOKEN_MAX_DAYS`] (by default at
/// that limit).
pub fn token_expiry(
    role: Role,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, String> {
    if role != Role::Admin {
        return Ok(expires_at);
    }
    let limit = now + Duration::days(ADMIN_TOKEN_MAX_DAYS);
    match expires_at {
        None => Ok(Some(limit)),
        // A minute of slack for the time between the edge and here.
        Some(at) if at <= limit + Duration::minutes(1) => Ok(Some(at)),
        Some(_) => Err(format!(
            "an admin token lasts at most {ADMIN_TOKEN_MAX_DAYS} days; choose a shorter lifetime"
        )),
    }
}

/// Prefix of every API token, so that leaked tokens are easy to recognise
/// (and to find with secret scanners).
pub const TOKEN_PREFIX: &str = "ispd_";

pub async fn count_staff(db: &impl ConnectionTrait) -> Result<u64, StaffError> {
    Ok(staff_user::Entity::find().count(db).await?)
}

pub async fn find_by_username(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<staff_user::Model>, StaffError> {
    Ok(staff_user::Entity::find()
        .filter(staff_user::Column::Username.eq(username))
        .one(db)
        .await?)
}

/// The orders staff accounts can be listed in.
pub const STAFF_SORTS: &[(&str, staff_user::Column)] = &[
    ("id", staff_user::Column::Id),
    ("username", staff_user::Column::Username),
    ("role", staff_user::Column::Role),
    ("created_at", staff_user::Column::CreatedAt),
    ("last_login_at", staff_user::Column::LastLoginAt),
];

/// The orders API tokens can be listed in.
pub const TOKEN_SORTS: &[(&str, api_token::Column)] = &[
    ("id", api_token::Column::Id),
    ("name", api_token::Column::Name),
    ("role", api_token::Column::Role),
    ("created_at", api_token::Column::CreatedAt),
    ("expires_at", api_token::Column::ExpiresAt),
    ("last_used_at", api_token::Column::LastUsedAt),
];

pub async fn find_staff(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<Option<staff_user::Model>, StaffError> {
    Ok(staff_user::Entity::find_by_id(id).one(db).await?)
}

pub async fn create_staff(
    db: &DatabaseConnection,
    actor: &Actor,
    username: &StaffUsername,
    role: Role,
    password: &Secret,
) -> Result<staff_user::Model, StaffError> {
    let password_hash = hash_password(password).await;
    let txn = begin_write(db).await?;
    if find_by_username(&txn, username.as_str()).await?.is_some() {
        return Err(StaffError::UsernameTaken(username.as_str().into()));
    }
    let now = Utc::now();
    let user = staff_user::ActiveModel {
        username: Set(username.as_str().into()),
        password_hash: Set(password_hash),
        role: Set(role.as_str().into()),
        is_active: Set(true),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        actor,
        "staff.create",
        "staff_user",
        Some(user.id.to_string()),
        serde_json::json!({ "username": user.username, "role": user.role }),
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

pub async fn reset_password(
    db: &DatabaseConnection,
    actor: &Actor,
    username: &str,
    password: &Secret,
) -> Result<staff_user::Model, StaffError> {
    let password_hash = hash_password(password).await;
    let txn = begin_write(db).await?;
    let user = find_by_username(&txn, username)
        .await?
        .ok_or_else(|| StaffError::NoSuchUser(username.into()))?;
    let mut active: staff_user::ActiveModel = user.into();
    active.password_hash = Set(password_hash);
    active.updated_at = Set(Utc::now().into());
    let user = active.update(&txn).await?;
    audit::record(
        &txn,
        actor,
        "staff.reset_password",
        "staff_user",
        Some(user.id.to_string()),
        serde_json::json!({ "username": user.username }),
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

pub async fn record_login(db: &impl ConnectionTrait, id: i32) -> Result<(), StaffError> {
    staff_user::Entity::update_many()
        .col_expr(
            staff_user::Column::LastLoginAt,
            sea_orm::sea_query::Expr::value(Utc::now().fixed_offset()),
        )
        .filter(staff_user::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Enables or disables a staff member. A disabled member cannot sign in,
/// and their sessions are deleted in the same transaction.
pub async fn set_staff_active(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
    active: bool,
) -> Result<staff_user::Model, StaffError> {
    let txn = begin_write(db).await?;
    let user = staff_user::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| StaffError::NoSuchUser(format!("#{id}")))?;
    let mut row: staff_user::ActiveModel = user.into();
    row.is_active = Set(active);
    row.updated_at = Set(Utc::now().into());
    let user = row.update(&txn).await?;
    if !active {
        staff_session::Entity::delete_many()
            .filter(staff_session::Column::StaffUserId.eq(id))
            .exec(&txn)
            .await?;
    }
    audit::record(
        &txn,
        actor,
        if active {
            "staff.enable"
        } else {
            "staff.disable"
        },
        "staff_user",
        Some(id.to_string()),
        serde_json::json!({ "username": user.username }),
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// argon2 is deliberately slow: hash off the async runtime's threads.
pub async fn hash_password(password: &Secret) -> String {
    let password = password.clone();
    tokio::task::spawn_blocking(move || password_auth::generate_hash(password.expose()))
        .await
        .expect("password hashing does not panic")
}

/// A newly created token: the only time its plaintext exists.
pub struct IssuedToken {
    pub token: api_token::Model,
    pub plaintext: Secret,
}

pub async fn create_token(
    db: &DatabaseConnection,
    actor: &Actor,
    name: &str,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
) -> Result<IssuedToken, StaffError> {
    let now = Utc::now();
    let expires_at = token_expiry(role, expires_at, now).map_err(StaffError::TokenLifetime)?;
    let plaintext = format!("{TOKEN_PREFIX}{}", crate::crypto::random_token(32));
    let txn = begin_write(db).await?;
    let token = api_token::ActiveModel {
        name: Set(name.into()),
        token_hash: Set(hash_token(&plaintext)),
        token_prefix: Set(plaintext.chars().take(12).collect()),
        role: Set(role.as_str().into()),
        created_by: Set(actor.staff_id()),
        expires_at: Set(expires_at.map(Into::into)),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        actor,
        "token.create",
        "api_token",
        Some(token.id.to_string()),
        serde_json::json!({ "name": token.name, "role": token.role, "expires_at": token.expires_at }),
    )
    .await?;
    txn.commit().await?;
    Ok(IssuedToken {
        token,
        plaintext: Secret::new(plaintext),
    })
}

pub async fn revoke_token(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i32,
) -> Result<api_token::Model, StaffError> {
    let txn = begin_write(db).await?;
    let token = api_token::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(StaffError::NoSuchToken(id))?;
    if token.revoked_at.is_some() {
        return Ok(token);
    }
    let mut active: api_token::ActiveModel = token.into();
    let now = Utc::now();
    active.revoked_at = Set(Some(now.into()));
    active.updated_at = Set(now.into());
    let token = active.update(&txn).await?;
    audit::record(
        &txn,
        actor,
        "token.revoke",
        "api_token",
        Some(token.id.to_string()),
        serde_json::json!({ "name": token.name }),
    )
    .await?;
    txn.commit().await?;
    Ok(token)
}

/// Deletes staff sessions past their expiry; returns how many.
pub async fn purge_expired_sessions(db: &impl ConnectionTrait) -> Result<u64, StaffError> {
    let result = staff_session::Entity::delete_many()
        .filter(staff_session::Column::ExpiryDate.lt(Utc::now().fixed_offset()))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Tokens carry 256 random bits, so one SHA-256 is enough to store them: no
/// guessing attack needs a slow hash, and the lookup stays an index seek.
pub fn hash_token(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

/// Parses a lifetime such as `90d`, `12h` or `2w`.
pub fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a lifetime such as 90d, 12h or 2w"))?;
    let duration = match unit {
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => {
            return Err(format!(
                "\"{text}\" is not a lifetime such as 90d, 12h or 2w"
            ))
        }
    };
    // Checked: a huge number is out of range, never an overflow.
    match duration {
        Some(duration) if n > 0 && duration <= Duration::days(3650) => Ok(duration),
        _ => Err(format!("\"{text}\" must be between 1h and 3650d")),
    }
}

// Queries behind the token and staff lists (API and pages).

/// `last_used_at` is written at most this often per token, so that a busy
/// script does not turn every request into a write.
pub const LAST_USED_RESOLUTION: Duration = Duration::seconds(60);

/// The token whose plaintext this is, if it is known, not revoked and not
/// expired. Records its use (see [`LAST_USED_RESOLUTION`]).
pub async fn authenticate_token(
    db: &impl ConnectionTrait,
    plaintext: &str,
) -> Result<Option<api_token::Model>, DbErr> {
    // A token made by a staff member works only while that member is
    // active (tokens of the CLI have no maker).
    let active_staff = Query::select()
        .column(staff_user::Column::Id)
        .from(staff_user::Entity)
        .and_where(staff_user::Column::IsActive.eq(true))
        .to_owned();
    let Some(token) = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(hash_token(plaintext)))
        .filter(
            Condition::any()
                .add(api_token::Column::CreatedBy.is_null())
                .add(api_token::Column::CreatedBy.in_subquery(active_staff)),
        )
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let now = Utc::now();
    if !is_active(&token, now) {
        return Ok(None);
    }
    let stale = now - LAST_USED_RESOLUTION;
    if token.last_used_at.is_none_or(|at| at < stale) {
        // The condition repeats the check, so that concurrent requests
        // write once between them.
        let written = api_token::Entity::update_many()
            .col_expr(
                api_token::Column::LastUsedAt,
                Expr::value(now.fixed_offset()),
            )
            .filter(api_token::Column::Id.eq(token.id))
            .filter(
                Condition::any()
                    .add(api_token::Column::LastUsedAt.is_null())
                    .add(api_token::Column::LastUsedAt.lt(stale.fixed_offset())),
            )
            .exec(db)
            .await;
        if let Err(err) = written {
            // Not worth failing the request over.
            tracing::warn!(token.id = token.id, error = %err, "could not record the token's use");
        }
    }
    Ok(Some(token))
}

/// Not revoked, and not past its expiry.
pub fn is_active(token: &api_token::Model, now: DateTime<Utc>) -> bool {
    token.revoked_at.is_none() && token.expires_at.is_none_or(|at| at > now)
}

#[derive(Debug, Default, Clone)]
pub struct TokenFilter {
    /// Part of the name, any case.
    pub name: Option<String>,
    pub role: Option<Role>,
    /// Only tokens that work now (true) or that no longer do (false).
    pub active: Option<bool>,
}

pub async fn list_tokens(
    db: &impl ConnectionTrait,
    filter: &TokenFilter,
    sort: &Sort<api_token::Column>,
    page: PageRequest,
) -> Result<(Vec<api_token::Model>, u64), DbErr> {
    let mut select = api_token::Entity::find();
    if let Some(name) = &filter.name {
        select = select.filter(contains(api_token::Column::Name, name));
    }
    if let Some(role) = filter.role {
        select = select.filter(api_token::Column::Role.eq(role.as_str()));
    }
    if let Some(active) = filter.active {
        let now = Utc::now();
        let works = Condition::all()
            .add(api_token::Column::RevokedAt.is_null())
            .add(
                Condition::any()
                    .add(api_token::Column::ExpiresAt.is_null())
                    .add(api_token::Column::ExpiresAt.gt(now.fixed_offset())),
            );
        select = select.filter(if active { works } else { works.not() });
    }
    fetch_page(db, sort.apply(select, api_token::Column::Id), page).await
}

pub async fn get_token(
    db: &impl ConnectionTrait,
    id: i32,
) -> Result<Option<api_token::Model>, DbErr> {
    api_token::Entity::find_by_id(id).one(db).await
}

#[derive(Debug, Default, Clone)]
pub struct StaffFilter {
    pub role: Option<Role>,
    /// Part of the username, any case.
    pub search: Option<String>,
    pub active: Option<bool>,
}

pub async fn list_staff(
    db: &impl ConnectionTrait,
    filter: &StaffFilter,
    sort: &Sort<staff_user::Column>,
    page: PageRequest,
) -> Result<(Vec<staff_user::Model>, u64), DbErr> {
    let mut select = staff_user::Entity::find();
    if let Some(role) = filter.role {
        select = select.filter(staff_user::Column::Role.eq(role.as_str()));
    }
    if let Some(search) = &filter.search {
        select = select.filter(contains(staff_user::Column::Username, search));
    }
    if let Some(active) = filter.active {
        select = select.filter(staff_user::Column::IsActive.eq(active));
    }
    fetch_page(db, sort.apply(select, staff_user::Column::Id), page).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse() {
        assert_eq!(parse_lifetime("90d").unwrap(), Duration::days(90));
        assert_eq!(parse_lifetime("12h").unwrap(), Duration::hours(12));
        assert_eq!(parse_lifetime("2w").unwrap(), Duration::weeks(2));
        // Checked arithmetic: out of range, not a panic.
        for huge in ["9223372036854775807w", "999999999999999d", "0d", "3651d"] {
            assert!(parse_lifetime(huge).is_err(), "{huge}");
        }
        for bad in ["", "d", "0d", "90", "90y", "-1d", "99999d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn token_hash_is_hex_sha256() {
        let hash = hash_token("ispd_abc");
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, hash_token("ispd_abd"));
    }
}
