//! The model: which radcheck, radreply and group rows a package and a
//! network user stand for.

use chrono::{DateTime, Utc};

use super::rows::{AttrRow, GroupRows, UserRows};
use super::{RadiusError, ACCT_INTERIM_INTERVAL_SECS, CLEARTEXT_PASSWORD};
use crate::crypto::{AppKey, Secret};
use crate::users::domain::mikrotik_rate_limit;
use crate::users::entities::{network_user, service_package, service_policy};
use crate::users::state::{
    expiry_with_grace, policy_rate_limit, EffectiveState, Entitlement, PolicyAction, Service,
};

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

/// The rows a policy's group must have: the restricted service a
/// walled-garden or throttle policy gives (a reject policy's group is
/// empty: its subscribers are refused before any group is read).
pub fn policy_rows(policy: &service_policy::Model) -> GroupRows {
    let mut reply = Vec::new();
    if policy.action.parse() == Ok(PolicyAction::Reject) {
        return GroupRows::default();
    }
    if let Some(rate) = policy_rate_limit(policy) {
        reply.push(AttrRow::set("Mikrotik-Rate-Limit", rate));
    }
    if policy.action.parse() == Ok(PolicyAction::WalledGarden) {
        if let Some(pool) = policy.framed_pool.as_deref().filter(|p| !p.is_empty()) {
            reply.push(AttrRow::set("Framed-Pool", pool));
        }
        if let Some(list) = policy.address_list.as_deref().filter(|l| !l.is_empty()) {
            reply.push(AttrRow::set("Mikrotik-Address-List", list));
        }
    }
    reply.push(AttrRow::set(
        "Acct-Interim-Interval",
        ACCT_INTERIM_INTERVAL_SECS.to_string(),
    ));
    GroupRows {
        check: Vec::new(),
        reply,
    }
    .sorted()
}

/// The rows a user must have at `now`, for the service its state gives it
/// ([`Entitlement::service`]):
///
/// - its package: the package's group, and `Expiration` at `expires_at`
///   plus the grace days when the expired service would be a refusal (so
///   FreeRADIUS refuses on the second itself). A walled-garden or throttle
///   package gets no `Expiration`: the minute job moves the subscriber into
///   the restricted group instead, and an `Expiration` would refuse it;
/// - a restricted service: the policy's group only, and no static address
///   when the policy hands out its own pool;
/// - refused: `Auth-Type := Reject` (the package's group stays, as it
///   always did, so that the user's rows still say what it is on).
pub fn user_rows(
    user: &network_user::Model,
    password: &Secret,
    entitlement: Entitlement<'_>,
    now: DateTime<Utc>,
) -> UserRows {
    let state = EffectiveState::of(user, entitlement.package, now);
    let service = entitlement.service(state);
    let mut check = vec![AttrRow::set(CLEARTEXT_PASSWORD, password.expose())];
    let refused_when_expired = entitlement.restricted() == Service::Refused;
    if let Some(at) = expiry_with_grace(user, entitlement.package) {
        if refused_when_expired || service == Service::Refused {
            check.push(AttrRow::set("Expiration", expiration_value(at)));
        }
    }
    let mut reply = Vec::new();
    let static_ip = user
        .static_ip
        .as_deref()
        .filter(|ip| user.service_type == "static" && !ip.is_empty());
    let groups = match service {
        Service::Package(package) => {
            if let Some(ip) = static_ip {
                reply.push(AttrRow::set("Framed-IP-Address", ip));
            }
            vec![(package.radius_group.clone(), 1)]
        }
        Service::Restricted(policy) => {
            let own_pool = policy.framed_pool.as_deref().is_some_and(|p| !p.is_empty())
                && policy.action.parse() == Ok(PolicyAction::WalledGarden);
            if let Some(ip) = static_ip.filter(|_| !own_pool) {
                reply.push(AttrRow::set("Framed-IP-Address", ip));
            }
            vec![(policy.radius_group.clone(), 1)]
        }
        Service::Refused => {
            check.push(AttrRow::set("Auth-Type", "Reject"));
            if let Some(ip) = static_ip {
                reply.push(AttrRow::set("Framed-IP-Address", ip));
            }
            entitlement
                .package
                .map(|p| vec![(p.radius_group.clone(), 1)])
                .unwrap_or_default()
        }
    };
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
