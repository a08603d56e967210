//! Which request carries a change of service to a live session: a CoA that
//! changes it in place, or a Disconnect that makes it log in again (and so
//! read the new rows). Pure: no database, no network.

use serde::{Deserialize, Serialize};

use crate::radius::coa::CoaChanges;
use crate::users::domain::mikrotik_rate_limit;
use crate::users::state::{policy_rate_limit, PolicyAction, Service};

/// What to send to each open session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Change the session in place.
    Change(SessionChange),
    /// End it: the next login gets the new rows.
    Disconnect,
}

impl Request {
    pub fn name(&self) -> &'static str {
        match self {
            Request::Change(_) => "coa",
            Request::Disconnect => "disconnect",
        }
    }
}

/// The attributes of a CoA, as the action row stores them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_list: Option<String>,
}

impl SessionChange {
    pub fn to_coa(&self) -> CoaChanges {
        CoaChanges {
            rate_limit: self.rate_limit.clone(),
            session_timeout_secs: None,
            address_list: self.address_list.clone(),
        }
    }
}

/// What a session of the service gets, as stored once it was carried to
/// the sessions (`network_users.enforced_service`): enough to tell whether
/// a later service differs, and what a CoA cannot undo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceMark {
    /// active, reject, walled_garden or throttle.
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_list: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framed_pool: Option<String>,
    /// The PPP profile the subscriber's secrets on our routers were moved
    /// to (a restricted service with one); their sessions there must
    /// redial to leave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mikrotik_profile: Option<String>,
}

impl ServiceMark {
    pub fn of(service: &Service<'_>) -> Self {
        let text = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        match service {
            Service::Package(package) => Self {
                target: service.target().into(),
                group: Some(package.radius_group.clone()),
                rate_limit: Some(mikrotik_rate_limit(package)).filter(|r| !r.is_empty()),
                ..Default::default()
            },
            Service::Restricted(policy) => {
                let walled = policy.action.parse() == Ok(PolicyAction::WalledGarden);
                Self {
                    target: service.target().into(),
                    group: Some(policy.radius_group.clone()),
                    rate_limit: policy_rate_limit(policy),
                    address_list: text(&policy.address_list).filter(|_| walled),
                    framed_pool: text(&policy.framed_pool).filter(|_| walled),
                    mikrotik_profile: text(&policy.mikrotik_profile),
                }
            }
            Service::Refused => Self {
                target: service.target().into(),
                ..Default::default()
            },
        }
    }

    /// The stored form; None when the column holds something else.
    pub fn parse(stored: Option<&str>) -> Option<Self> {
        serde_json::from_str(stored?).ok()
    }

    pub fn stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether it put the session somewhere a CoA cannot take it back
    /// from: an address list (RouterOS has no attribute that removes a list
    /// entry) or a pool (the address changes only on a new login).
    fn leaves_traces(&self) -> bool {
        self.address_list.is_some() || self.framed_pool.is_some()
    }
}

/// The request that moves an open session from `previous` (None: not
/// known) to `next`; None when the session needs nothing.
pub fn request_for(previous: Option<&ServiceMark>, next: &Service<'_>) -> Option<Request> {
    if previous == Some(&ServiceMark::of(next)) {
        return None;
    }
    match next {
        Service::Refused => Some(Request::Disconnect),
        Service::Restricted(policy) => {
            let walled = policy.action.parse() == Ok(PolicyAction::WalledGarden);
            if walled && policy.framed_pool.as_deref().is_some_and(|p| !p.is_empty()) {
                return Some(Request::Disconnect);
            }
            let change = SessionChange {
                rate_limit: policy_rate_limit(policy),
                address_list: policy
                    .address_list
                    .clone()
                    .filter(|l| walled && !l.is_empty()),
            };
            if change == SessionChange::default() {
                Some(Request::Disconnect)
            } else {
                Some(Request::Change(change))
            }
        }
        Service::Package(package) => {
            if previous.is_some_and(ServiceMark::leaves_traces) {
                return Some(Request::Disconnect);
            }
            let rate = mikrotik_rate_limit(package);
            if rate.is_empty() {
                return None;
            }
            Some(Request::Change(SessionChange {
                rate_limit: Some(rate),
                address_list: None,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::entities::{service_package, service_policy};
    use crate::users::samples;

    fn package() -> service_package::Model {
        samples::package()
    }

    fn policy(action: &str, pool: Option<&str>, list: Option<&str>) -> service_policy::Model {
        service_policy::Model {
            framed_pool: pool.map(Into::into),
            address_list: list.map(Into::into),
            ..samples::policy(action)
        }
    }

    #[test]
    fn a_refusal_disconnects() {
        let package = package();
        assert_eq!(
            request_for(
                Some(&ServiceMark::of(&Service::Package(&package))),
                &Service::Refused
            ),
            Some(Request::Disconnect)
        );
        assert_eq!(
            request_for(None, &Service::Refused),
            Some(Request::Disconnect)
        );
    }

    #[test]
    fn a_walled_garden_changes_the_session_in_place_unless_it_has_a_pool() {
        let package = package();
        let garden = policy("walled_garden", None, Some("unpaid"));
        assert_eq!(
            request_for(
                Some(&ServiceMark::of(&Service::Package(&package))),
                &Service::Restricted(&garden)
            ),
            Some(Request::Change(SessionChange {
                rate_limit: Some("512k/1M".into()),
                address_list: Some("unpaid".into()),
            }))
        );
        let pooled = policy("walled_garden", Some("garden"), Some("unpaid"));
        assert_eq!(
            request_for(None, &Service::Restricted(&pooled)),
            Some(Request::Disconnect)
        );
    }

    #[test]
    fn a_throttle_sends_only_its_rate() {
        let throttle = policy("throttle", None, Some("ignored"));
        assert_eq!(
            request_for(None, &Service::Restricted(&throttle)),
            Some(Request::Change(SessionChange {
                rate_limit: Some("512k/1M".into()),
                address_list: None,
            }))
        );
    }

    #[test]
    fn leaving_a_walled_garden_with_an_address_list_needs_a_new_login() {
        let package = package();
        let garden = policy("walled_garden", None, Some("unpaid"));
        assert_eq!(
            request_for(
                Some(&ServiceMark::of(&Service::Restricted(&garden))),
                &Service::Package(&package)
            ),
            Some(Request::Disconnect)
        );
        let throttle = policy("throttle", None, None);
        assert_eq!(
            request_for(
                Some(&ServiceMark::of(&Service::Restricted(&throttle))),
                &Service::Package(&package)
            ),
            Some(Request::Change(SessionChange {
                rate_limit: Some("5M/20M".into()),
                address_list: None,
            }))
        );
    }

    #[test]
    fn an_unchanged_service_needs_nothing() {
        let package = package();
        assert_eq!(
            request_for(
                Some(&ServiceMark::of(&Service::Package(&package))),
                &Service::Package(&package)
            ),
            None
        );
        // A new rate on the same package: a CoA with it.
        let mut faster = package.clone();
        faster.download_rate_kbps = 50_000;
        assert_eq!(
            request_for(
                Some(&ServiceMark::of(&Service::Package(&package))),
                &Service::Package(&faster)
            ),
            Some(Request::Change(SessionChange {
                rate_limit: Some("5M/50M".into()),
                address_list: None,
            }))
        );
    }

    #[test]
    fn a_mark_survives_its_stored_form() {
        let garden = policy("walled_garden", Some("garden"), Some("unpaid"));
        let mark = ServiceMark::of(&Service::Restricted(&garden));
        assert_eq!(ServiceMark::parse(Some(&mark.stored())), Some(mark.clone()));
        assert!(mark.leaves_traces());
        assert_eq!(ServiceMark::parse(Some("not json")), None);
    }
}
