//! MikroTik routers and the PPPoE secrets ispd keeps on them.

pub mod mikrotik_router {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mikrotik_routers")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub name: String,
        /// An address or host name.
        pub ip_address: String,
        pub api_port: i32,
        pub use_tls: bool,
        pub tls_fingerprint: Option<String>,
        pub username: String,
        /// Encrypted with APP_KEY; never returned by the API.
        pub password_encrypted: String,
        pub status: String,
        pub identity: Option<String>,
        pub version: Option<String>,
        pub last_seen_at: Option<DateTimeWithTimeZone>,
        pub last_error: Option<String>,
        pub created_at: DateTimeWithTimeZone,
        pub updated_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(has_many = "super::mikrotik_pppoe_user::Entity")]
        PppoeUsers,
    }

    impl Related<super::mikrotik_pppoe_user::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::PppoeUsers.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod mikrotik_pppoe_user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "mikrotik_pppoe_users")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub router_id: i32,
        pub network_user_id: Option<i32>,
        pub username: String,
        /// Encrypted with APP_KEY; never returned by the API.
        pub password_encrypted: String,
        pub service: String,
        pub profile: Option<String>,
        pub local_address: Option<String>,
        pub remote_address: Option<String>,
        /// The router's id for the secret, such as `*1A`.
        pub router_item_id: Option<String>,
        pub status: String,
        pub last_synced_at: Option<DateTimeWithTimeZone>,
        pub created_at: DateTimeWithTimeZone,
        pub updated_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::mikrotik_router::Entity",
            from = "Column::RouterId",
            to = "super::mikrotik_router::Column::Id"
        )]
        Router,
    }

    impl Related<super::mikrotik_router::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Router.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}
