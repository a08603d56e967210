//! Rows for unit tests: a package, a subscriber on it and a policy, to be
//! changed with struct update syntax (`Model { status: .., ..user() }`).

use chrono::Utc;

use super::entities::{network_user, service_package, service_policy};

/// "Home": 20M down, 5M up, RADIUS group `home`, the default policy.
pub fn package() -> service_package::Model {
    let now = Utc::now();
    service_package::Model {
        id: 1,
        name: "Home".into(),
        description: None,
        download_rate_kbps: 20_000,
        upload_rate_kbps: 5_000,
        burst_download_kbps: None,
        burst_upload_kbps: None,
        burst_threshold_download_kbps: None,
        burst_threshold_upload_kbps: None,
        burst_time_secs: None,
        session_timeout_secs: None,
        simultaneous_use: None,
        radius_group: "home".into(),
        mikrotik_profile: None,
        status: "active".into(),
        policy_id: None,
        grace_days: None,
        quota_bytes: None,
        quota_direction: None,
        cycle_anchor_day: None,
        quota_tiers: None,
        created_at: now.into(),
        updated_at: now.into(),
    }
}

/// alice, an active PPPoE subscriber (id 7) on [`package`], never enforced.
pub fn user() -> network_user::Model {
    let now = Utc::now();
    network_user::Model {
        id: 7,
        username: "alice".into(),
        password_encrypted: String::new(),
        service_type: "pppoe".into(),
        package_id: Some(1),
        status: "active".into(),
        static_ip: None,
        static_allocation_id: None,
        mac_address: None,
        expires_at: None,
        full_name: None,
        notes: None,
        radius_sync_pending: false,
        radius_synced_at: None,
        enforced_state: None,
        enforced_service: None,
        enforced_at: None,
        cycle_anchor_day: None,
        quota_policy_id: None,
        created_at: now.into(),
        updated_at: now.into(),
    }
}

/// "Unpaid" with this action: 1M down, 512k up, address list `unpaid`, no
/// pool, RADIUS group `unpaid`.
pub fn policy(action: &str) -> service_policy::Model {
    let now = Utc::now();
    service_policy::Model {
        id: 1,
        name: "Unpaid".into(),
        action: action.into(),
        download_rate_kbps: Some(1_000),
        upload_rate_kbps: Some(512),
        framed_pool: None,
        address_list: Some("unpaid".into()),
        radius_group: "unpaid".into(),
        mikrotik_profile: None,
        default_marker: None,
        created_at: now.into(),
        updated_at: now.into(),
    }
}
