//! Usage per subscriber and cycle, and the session counters already
//! counted.

pub mod quota_usage {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "quota_usage")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub user_id: i32,
        /// The start of the billing cycle (00:00 UTC on the anchor day).
        pub cycle_start: DateTimeWithTimeZone,
        /// Octets to the subscriber (radacct's output), gigawords included.
        pub download_bytes: i64,
        /// Octets from the subscriber (radacct's input).
        pub upload_bytes: i64,
        /// Bytes added to this cycle's allowance.
        pub topup_bytes: i64,
        pub updated_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod quota_session_counter {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "quota_session_counters")]
    pub struct Model {
        /// radacct's id, in the RADIUS database.
        #[sea_orm(primary_key, auto_increment = false)]
        pub radacctid: i64,
        pub user_id: i32,
        /// The octets already counted (gigawords included).
        pub input_octets: i64,
        pub output_octets: i64,
        /// Whether the session's stop was counted.
        pub stopped: bool,
        pub seen_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
