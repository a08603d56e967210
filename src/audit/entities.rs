//! The audit log: who changed what, and when.

pub mod audit_log {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// staff, token, cli or system.
        pub actor_kind: String,
        pub actor_id: Option<i32>,
        pub actor_name: String,
        pub action: String,
        pub entity_type: String,
        pub entity_id: Option<String>,
        /// JSON with the change; never a secret.
        pub details: Option<String>,
        pub ip_address: Option<String>,
        pub created_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
