//! `radpostauth`: FreeRADIUS's log of authentication results.

use sea_orm::entity::prelude::*;

/// One authentication attempt, as FreeRADIUS logged it.
///
/// PostgreSQL's table also has `calledstationid` and `callingstationid`,
/// which MySQL's and SQLite's lack; they are not fields here, so that the
/// entity reads the same columns on every backend.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "radpostauth")]
pub struct Model {
    /// `bigserial` on PostgreSQL, `int` on MySQL.
    #[sea_orm(primary_key)]
    pub id: i64,
    pub username: String,
    /// Nullable on PostgreSQL only.
    pub pass: Option<String>,
    /// The reply packet type (`Access-Accept`, `Access-Reject`); nullable on
    /// PostgreSQL only.
    pub reply: Option<String>,
    /// `timestamptz` on PostgreSQL, `timestamp(6)` on MySQL, text written by
    /// FreeRADIUS on SQLite (see the module docs of `entities`).
    pub authdate: DateTimeWithTimeZone,
    pub class: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
