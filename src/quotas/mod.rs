//! Fair-usage quotas: usage per billing cycle counted from accounting, and
//! subscribers moved into the tier it reaches (a throttle, a walled garden
//! or a hard cap), live, by the enforcement saga.
//!
//! A package's quota (bytes, direction, anchor day, tiers) is part of the
//! package (`crate::users::quota` holds its arithmetic). This room sits
//! above enforcement: [`metering`] reads radacct and counts, [`service`]
//! answers "how much this cycle" and takes top-ups, and both move a
//! subscriber between tiers through [`service::reassess`], which records
//! the tier's policy on the subscriber (`network_users.quota_policy_id`)
//! and calls `enforcement::service::enforce_user`. [`api`] and [`html`]
//! are its surfaces.

pub mod api;
pub mod entities;
pub mod html;
pub mod metering;
pub mod service;
