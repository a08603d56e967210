//! The latest health check results.

pub mod network_health_check {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "network_health_checks")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        /// `router`, `database`, `radius_database` or `redis`.
        pub kind: String,
        pub name: String,
        /// `host:port`, or a URL without its password.
        pub target: String,
        /// `up` or `down`.
        pub status: String,
        pub detail: Option<String>,
        pub latency_ms: i64,
        pub checked_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
