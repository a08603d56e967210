//! A subscriber's effective state, and the service that state gives it.
//!
//! The stored `status` is what staff or a billing system set (active,
//! suspended, disabled). The effective state adds what time does: an
//! active subscriber whose `expires_at`, plus its package's grace days, has
//! passed is `expired`. What a subscriber who is not active gets is its
//! package's **policy** (or the default policy):
//!
//! - `reject`: FreeRADIUS refuses the login and live sessions are cut;
//! - `walled_garden`: it stays online in a restricted service (a pool, an
//!   address list the router redirects, a low rate) from the policy's group;
//! - `throttle`: a reduced rate only, from the policy's group.
//!
//! A disabled subscriber is always refused: disabling closes the account,
//! whatever the package says. Without any policy a suspended or expired
//! subscriber is refused, as before policies existed.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};

use super::domain::{Rate, RateLimit};
use super::entities::{network_user, service_package, service_policy};

/// Where a subscriber stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EffectiveState {
    Active,
    Suspended,
    Disabled,
    Expired,
}

impl EffectiveState {
    /// The state at `now`: the stored status, or expired once `expires_at`
    /// plus the package's grace days has passed. Suspended and disabled win
    /// over expired: they are what someone decided.
    pub fn of(
        user: &network_user::Model,
        package: Option<&service_package::Model>,
        now: DateTime<Utc>,
    ) -> Self {
        match user.status.as_str() {
            "suspended" => return Self::Suspended,
            "active" => {}
            _ => return Self::Disabled,
        }
        match expiry_with_grace(user, package) {
            Some(at) if at <= now => Self::Expired,
            _ => Self::Active,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for EffectiveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When the subscriber stops being active by itself: `expires_at` plus the
/// package's grace days.
pub fn expiry_with_grace(
    user: &network_user::Model,
    package: Option<&service_package::Model>,
) -> Option<DateTime<Utc>> {
    let grace = package
        .and_then(|p| p.grace_days)
        .filter(|d| *d > 0)
        .unwrap_or(0);
    user.expires_at
        .map(|at| at.with_timezone(&Utc) + Duration::days(i64::from(grace)))
}

/// What a policy does to a subscriber who is not active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyAction {
    Reject,
    WalledGarden,
    Throttle,
}

impl PolicyAction {
    pub const ALL: [PolicyAction; 3] = [Self::Reject, Self::WalledGarden, Self::Throttle];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reject => "reject",
            Self::WalledGarden => "walled_garden",
            Self::Throttle => "throttle",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Reject => "Reject",
            Self::WalledGarden => "Walled garden",
            Self::Throttle => "Throttle",
        }
    }
}

impl FromStr for PolicyAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "reject" => Ok(Self::Reject),
            "walled_garden" => Ok(Self::WalledGarden),
            "throttle" => Ok(Self::Throttle),
            other => Err(format!(
                "\"{other}\" is not a policy action (reject, walled_garden or throttle)"
            )),
        }
    }
}

/// The Mikrotik-Rate-Limit value of a policy's restricted rate; None when
/// it sets none.
pub fn policy_rate_limit(policy: &service_policy::Model) -> Option<String> {
    let rate = |v: Option<i64>| v.and_then(Rate::from_column);
    Some(
        RateLimit {
            download: rate(policy.download_rate_kbps)?,
            upload: rate(policy.upload_rate_kbps)?,
            burst: None,
        }
        .to_mikrotik(),
    )
}

/// What a subscriber's sessions get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service<'a> {
    /// Its package, in full.
    Package(&'a service_package::Model),
    /// The restricted service of a walled-garden or throttle policy.
    Restricted(&'a service_policy::Model),
    /// No service: FreeRADIUS refuses the login, live sessions are cut.
    Refused,
}

impl Service<'_> {
    /// The name used in the enforcement log and the API: active, reject,
    /// walled_garden or throttle.
    pub fn target(&self) -> &'static str {
        match self {
            Service::Package(_) => "active",
            Service::Restricted(policy) => policy
                .action
                .parse::<PolicyAction>()
                .map(PolicyAction::as_str)
                .unwrap_or("throttle"),
            Service::Refused => "reject",
        }
    }
}

/// What a subscriber gets, from its package, the policy that applies to
/// it when not active (the package's, else the default), and the policy of
/// the quota tier it has reached, if any.
#[derive(Debug, Clone, Copy, Default)]
pub struct Entitlement<'a> {
    pub package: Option<&'a service_package::Model>,
    pub policy: Option<&'a service_policy::Model>,
    /// The policy of the quota tier reached this cycle (see `quotas`).
    pub quota: Option<&'a service_policy::Model>,
}

impl<'a> Entitlement<'a> {
    /// The service in `state`. A subscriber without a package has nothing to
    /// receive and is refused.
    pub fn service(&self, state: EffectiveState) -> Service<'a> {
        let Some(package) = self.package else {
            return Service::Refused;
        };
        match state {
            EffectiveState::Active => match self.quota {
                // A quota tier restricts an active subscriber; one that
                // rejects is a hard cap.
                Some(tier) if tier.action.parse() == Ok(PolicyAction::Reject) => Service::Refused,
                Some(tier) => Service::Restricted(tier),
                None => Service::Package(package),
            },
            EffectiveState::Disabled => Service::Refused,
            EffectiveState::Suspended | EffectiveState::Expired => self.restricted(),
        }
    }

    /// What a suspended or expired subscriber gets.
    pub fn restricted(&self) -> Service<'a> {
        match self.policy {
            Some(policy) if policy.action.parse() != Ok(PolicyAction::Reject) => {
                Service::Restricted(policy)
            }
            _ => Service::Refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::samples;

    fn user(status: &str, expires_at: Option<DateTime<Utc>>) -> network_user::Model {
        network_user::Model {
            status: status.into(),
            expires_at: expires_at.map(Into::into),
            ..samples::user()
        }
    }

    fn package(grace_days: Option<i32>) -> service_package::Model {
        service_package::Model {
            grace_days,
            ..samples::package()
        }
    }

    fn policy(action: PolicyAction) -> service_policy::Model {
        samples::policy(action.as_str())
    }

    #[test]
    fn expiry_counts_only_after_the_grace_days() {
        let now = Utc::now();
        let lapsed = user("active", Some(now - Duration::days(2)));
        assert_eq!(
            EffectiveState::of(&lapsed, Some(&package(None)), now),
            EffectiveState::Expired
        );
        assert_eq!(
            EffectiveState::of(&lapsed, Some(&package(Some(3))), now),
            EffectiveState::Active
        );
        assert_eq!(
            EffectiveState::of(&lapsed, Some(&package(Some(1))), now),
            EffectiveState::Expired
        );
        let future = user("active", Some(now + Duration::hours(1)));
        assert_eq!(
            EffectiveState::of(&future, Some(&package(None)), now),
            EffectiveState::Active
        );
    }

    #[test]
    fn a_decided_status_wins_over_expiry() {
        let now = Utc::now();
        let past = Some(now - Duration::days(9));
        assert_eq!(
            EffectiveState::of(&user("suspended", past), None, now),
            EffectiveState::Suspended
        );
        assert_eq!(
            EffectiveState::of(&user("disabled", past), None, now),
            EffectiveState::Disabled
        );
    }

    #[test]
    fn the_policy_decides_what_a_suspended_or_expired_subscriber_gets() {
        let package = package(None);
        let garden = policy(PolicyAction::WalledGarden);
        let reject = policy(PolicyAction::Reject);
        let with = |policy| Entitlement {
            package: Some(&package),
            policy,
            quota: None,
        };
        assert_eq!(
            with(Some(&garden)).service(EffectiveState::Active),
            Service::Package(&package)
        );
        for state in [EffectiveState::Suspended, EffectiveState::Expired] {
            assert_eq!(
                with(Some(&garden)).service(state),
                Service::Restricted(&garden)
            );
            assert_eq!(with(Some(&reject)).service(state), Service::Refused);
            assert_eq!(with(None).service(state), Service::Refused);
        }
        assert_eq!(
            with(Some(&garden)).service(EffectiveState::Disabled),
            Service::Refused
        );
        let no_package = Entitlement {
            package: None,
            policy: Some(&garden),
            quota: None,
        };
        assert_eq!(no_package.service(EffectiveState::Active), Service::Refused);
        assert_eq!(
            with(Some(&garden))
                .service(EffectiveState::Suspended)
                .target(),
            "walled_garden"
        );
    }

    #[test]
    fn a_quota_tier_restricts_only_an_active_subscriber() {
        let package = package(None);
        let garden = policy(PolicyAction::WalledGarden);
        let throttle = policy(PolicyAction::Throttle);
        let cap = policy(PolicyAction::Reject);
        let with = |quota| Entitlement {
            package: Some(&package),
            policy: Some(&garden),
            quota,
        };
        assert_eq!(
            with(Some(&throttle)).service(EffectiveState::Active),
            Service::Restricted(&throttle)
        );
        assert_eq!(
            with(Some(&cap)).service(EffectiveState::Active),
            Service::Refused
        );
        // Suspended wins: its policy, not the tier's.
        assert_eq!(
            with(Some(&throttle)).service(EffectiveState::Suspended),
            Service::Restricted(&garden)
        );
        assert_eq!(
            with(None).service(EffectiveState::Active),
            Service::Package(&package)
        );
    }
}
