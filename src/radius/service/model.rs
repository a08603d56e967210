//! The model: which radcheck, radreply and group rows a package and a
//! network user stand for.

use chrono::{DateTime, Utc};

use super::rows::{AttrRow, GroupRows, UserRows};
use super::{RadiusError, ACCT_INTERIM_INTERVAL_SECS, CLEARTEXT_PASSWORD};
use crate::crypto::{AppKey, Secret};
use crate::users::domain::mikrotik_rate_limit;
use crate::users::entities::{network_user, service_package};

/// The `Expiration` value, in the form FreeRADIUS's rlm_expiration parses:
/// `Jan 05 2027 13:00:00`.
pub fn expiration_value<Tz: chrono::TimeZone>(at: DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    at.with_timezone(&Utc)
        .format("%b %d %Y %H:%M:%S")
        .to_string()
}

/// The rows a package's group must have.
pub fn package_rows(package: &service_package::Model) -> GroupRows {
    let mut reply = Vec::new();
    let rate = mikrotik_rate_limit(package);
    if !rate.is_empty() {
        reply.push(AttrRow::set("Mikrotik-Rate-Limit", rate));
    }
    if let Some(timeout) = package.session_timeout_secs.filter(|t| *t > 0) {
        reply.push(AttrRow::set("Session-Timeout", timeout.to_string()));
    }
    reply.push(AttrRow::set(
        "Acct-Interim-Interval",
        ACCT_INTERIM_INTERVAL_SECS.to_string(),
    ));
    let mut check = Vec::new();
    if let Some(limit) = package.simultaneous_use.filter(|n| *n > 0) {
        check.push(AttrRow::set("Simultaneous-Use", limit.to_string()));
    }
    GroupRows { check, reply }.sorted()
}

/// Whether FreeRADIUS must refuse the user: not active, or expired at `now`.
pub fn is_rejected(user: &network_user::Model, now: DateTime<Utc>) -> bool {
    user.status != "active" || user.expires_at.is_some_and(|at| at <= now)
}

/// The rows a user must have. A user without a package gets no group and
/// is rejected: it has no service to receive.
pub fn user_rows(
    user: &network_user::Model,
    password: &Secret,
    package: Option<&service_package::Model>,
    now: DateTime<Utc>,
) -> UserRows {
    let mut check = vec![AttrRow::set(CLEARTEXT_PASSWORD, password.expose())];
    if let Some(at) = user.expires_at {
        check.push(AttrRow::set("Expiration", expiration_value(at)));
    }
    if is_rejected(user, now) || package.is_none() {
        check.push(AttrRow::set("Auth-Type", "Reject"));
    }
    let mut reply = Vec::new();
    if user.service_type == "static" {
        if let Some(ip) = user.static_ip.as_deref().filter(|ip| !ip.is_empty()) {
            reply.push(AttrRow::set("Framed-IP-Address", ip));
        }
    }
    let groups = package
        .map(|p| vec![(p.radius_group.clone(), 1)])
        .unwrap_or_default();
    UserRows {
        check,
        reply,
        groups,
    }
    .sorted()
}

pub(super) fn decrypt(key: &AppKey, user: &network_user::Model) -> Result<Secret, RadiusError> {
    key.decrypt(&user.password_encrypted)
        .map_err(|source| RadiusError::Crypto {
            username: user.username.clone(),
            source,
        })
}
