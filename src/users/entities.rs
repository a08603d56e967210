//! Subscribers ("network users"), their service packages and sessions.

pub mod service_package {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "service_packages")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub name: String,
        pub description: Option<String>,
        pub download_rate_kbps: i64,
        pub upload_rate_kbps: i64,
        pub burst_download_kbps: Option<i64>,
        pub burst_upload_kbps: Option<i64>,
        pub burst_threshold_download_kbps: Option<i64>,
        pub burst_threshold_upload_kbps: Option<i64>,
        pub burst_time_secs: Option<i32>,
        pub session_timeout_secs: Option<i32>,
        pub simultaneous_use: Option<i32>,
        #[sea_orm(unique)]
        pub radius_group: String,
        pub mikrotik_profile: Option<String>,
        pub status: String,
        /// What its subscribers get while not active; None: the default
        /// policy (see `service_policy`).
        pub policy_id: Option<i32>,
        /// Days past a subscriber's `expires_at` before it counts as expired.
        pub grace_days: Option<i32>,
        /// Bytes a subscriber may use per billing cycle; None: no quota.
        pub quota_bytes: Option<i64>,
        /// What counts towards the quota: total, download or upload.
        pub quota_direction: Option<String>,
        /// The day of the month (1 to 28) its subscribers' cycles start,
        /// unless a subscriber has its own.
        pub cycle_anchor_day: Option<i32>,
        /// The quota's tiers as JSON (see `quotas::domain::Tiers`).
        pub quota_tiers: Option<String>,
        pub created_at: DateTimeWithTimeZone,
        pub updated_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(has_many = "super::network_user::Entity")]
        Users,
    }

    impl Related<super::network_user::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Users.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// What a subscriber who is not active gets: a refusal, a walled garden or
/// a throttled rate, from the policy's own RADIUS group.
pub mod service_policy {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "service_policies")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub name: String,
        /// reject, walled_garden or throttle.
        pub action: String,
        /// The restricted rate, kbit/s (both or neither).
        pub download_rate_kbps: Option<i64>,
        pub upload_rate_kbps: Option<i64>,
        pub framed_pool: Option<String>,
        pub address_list: Option<String>,
        pub radius_group: String,
        /// The PPP profile its subscribers' secrets get on routers that
        /// authenticate them locally (walled garden, throttle).
        pub mikrotik_profile: Option<String>,
        /// Some(1) on the default policy; NULL elsewhere (unique).
        pub default_marker: Option<i16>,
        pub created_at: DateTimeWithTimeZone,
        pub updated_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod network_user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "network_users")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub username: String,
        /// Encrypted with APP_KEY (see `crypto`); never returned by the API.
        pub password_encrypted: String,
        pub service_type: String,
        pub package_id: Option<i32>,
        pub status: String,
        pub static_ip: Option<String>,
        pub static_allocation_id: Option<i64>,
        pub mac_address: Option<String>,
        pub expires_at: Option<DateTimeWithTimeZone>,
        pub full_name: Option<String>,
        pub notes: Option<String>,
        pub radius_sync_pending: bool,
        pub radius_synced_at: Option<DateTimeWithTimeZone>,
        /// The state last carried to RADIUS and the live sessions (active,
        /// suspended, disabled, expired); None before the first time.
        pub enforced_state: Option<String>,
        /// The service last carried to the sessions, as JSON (see
        /// `enforcement::plan::ServiceMark`).
        pub enforced_service: Option<String>,
        /// When the user was read for that; changes after it are found by
        /// the enforcement job.
        pub enforced_at: Option<DateTimeWithTimeZone>,
        /// The day of the month its billing cycle starts; None: the
        /// package's (else the 1st).
        pub cycle_anchor_day: Option<i32>,
        /// The policy of the quota tier it is in now; None: under every
        /// tier (or no quota). Set by the quota metering.
        pub quota_policy_id: Option<i32>,
        pub created_at: DateTimeWithTimeZone,
        pub updated_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::service_package::Entity",
            from = "Column::PackageId",
            to = "super::service_package::Column::Id"
        )]
        Package,
    }

    impl Related<super::service_package::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Package.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod network_user_session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "network_user_sessions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub user_id: Option<i32>,
        pub username: String,
        pub session_id: String,
        /// Where the session was seen: radius or mikrotik.
        pub source: String,
        pub router_id: Option<i32>,
        pub start_time: DateTimeWithTimeZone,
        pub end_time: Option<DateTimeWithTimeZone>,
        pub upload_bytes: i64,
        pub download_bytes: i64,
        pub ip_address: Option<String>,
        pub mac_address: Option<String>,
        pub nas_ip: String,
        pub status: String,
        pub created_at: DateTimeWithTimeZone,
        pub updated_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
