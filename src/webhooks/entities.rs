//! Where events are pushed, and each event's delivery to each endpoint.

pub mod webhook_endpoint {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_endpoints")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub name: String,
        pub url: String,
        /// The signing secret, sealed with APP_KEY; never shown.
        pub secret_encrypted: String,
        /// `*`, or event type names separated by commas.
        pub event_types: String,
        pub active: bool,
        pub created_at: DateTimeWithTimeZone,
        pub updated_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod webhook_delivery {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_deliveries")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub endpoint_id: i32,
        /// The same for every retry and replay of the event.
        pub event_id: String,
        pub event_type: String,
        /// The JSON body, as sent.
        pub payload: String,
        /// pending, delivered or failed.
        pub status: String,
        /// Attempts since the event was queued (or last replayed).
        pub attempts: i32,
        pub next_attempt_at: Option<DateTimeWithTimeZone>,
        pub last_status_code: Option<i32>,
        pub last_error: Option<String>,
        pub delivered_at: Option<DateTimeWithTimeZone>,
        pub created_at: DateTimeWithTimeZone,
        pub updated_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
