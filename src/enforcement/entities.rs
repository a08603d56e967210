//! The change each live session must receive, and what came of it.

pub mod enforcement_action {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "enforcement_actions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub user_id: Option<i32>,
        pub username: String,
        /// suspended, resumed, expired, disabled, changed.
        pub reason: String,
        /// The service the session must get: active, reject, walled_garden
        /// or throttle.
        pub target: String,
        /// coa or disconnect (to the NAS), or router_disconnect (the
        /// sessions of the subscriber's PPP secret on a router of ours).
        pub request: String,
        pub radacctid: Option<i64>,
        pub router_id: Option<i32>,
        pub acct_session_id: String,
        pub nas: String,
        /// The CoA's attributes, as JSON (`rate_limit`, `address_list`).
        pub attributes: Option<String>,
        /// pending, sent, confirmed, not_applied, superseded.
        pub status: String,
        /// The last answer: ack, nak, no_answer, unreachable,
        /// session_closed, or the code that stopped it.
        pub outcome: Option<String>,
        pub detail: Option<String>,
        pub attempts: i32,
        pub next_attempt_at: Option<DateTimeWithTimeZone>,
        pub sent_at: Option<DateTimeWithTimeZone>,
        pub confirmed_at: Option<DateTimeWithTimeZone>,
        pub created_at: DateTimeWithTimeZone,
        pub updated_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
