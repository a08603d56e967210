//! `nasreload`: when each NAS last rebooted (Accounting-On/Off), written by
//! FreeRADIUS so that sessions opened before then count as closed.

use sea_orm::entity::prelude::*;

/// The last reload of one NAS.
///
/// On PostgreSQL `nasipaddress` is `inet`, which sqlx cannot decode into
/// `String`: reading this table there through the entity fails, so select
/// the column as text: `abbrev(nasipaddress) AS nasipaddress` gives the
/// address as PostgreSQL prints it (`10.0.0.1`), where `::text` appends
/// `/32`; e.g. with `Entity::find().from_raw_sql(..)`. sqlx also binds a `String` as `text`,
/// which PostgreSQL does not compare with or store into `inet` by itself, so
/// filters and writes need `CAST($1 AS inet)` there. FreeRADIUS writes this
/// table; ispd only reads it. On MySQL and SQLite the column is
/// `varchar(15)` and none of this applies.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "nasreload")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub nasipaddress: String,
    pub reloadtime: DateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
