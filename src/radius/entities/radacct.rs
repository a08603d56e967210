//! `radacct`: accounting sessions, written by FreeRADIUS (Start, Interim-Update,
//! Stop, Accounting-On/Off).

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, ValueType, ValueTypeErr};
use sea_orm::{ActiveValue, ColIdx, IntoActiveValue, QueryResult, TryGetError, TryGetable};

/// One accounting session.
///
/// **Reading on PostgreSQL needs casts.** There the address columns
/// (`nasipaddress`, `framedipaddress`, `framedipv6address`,
/// `framedipv6prefix`, `delegatedipv6prefix`) are `inet`, which sqlx cannot
/// decode into `String`, so `Entity::find()` fails on PostgreSQL. Select
/// them as text instead, e.g. `abbrev(nasipaddress) AS nasipaddress` with
/// `Entity::find().from_raw_sql(..)` (`abbrev` prints `10.0.0.1` and
/// `2001:db8::/56`; a plain `::text` cast appends `/32` to host addresses).
/// Filters on them need `CAST($1 AS inet)`, since sqlx binds a `String` as
/// `text`. On MySQL and SQLite they are `varchar` and read directly. ispd
/// only reads this table; FreeRADIUS writes it.
///
/// Text columns that PostgreSQL allows to be NULL (most of them) are
/// `Option`, although MySQL and SQLite declare them `NOT NULL DEFAULT ''`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "radacct")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub radacctid: i64,
    pub acctsessionid: String,
    pub acctuniqueid: String,
    pub username: Option<String>,
    pub realm: Option<String>,
    /// `inet` on PostgreSQL: see the type's documentation.
    pub nasipaddress: String,
    pub nasportid: Option<String>,
    pub nasporttype: Option<String>,
    pub acctstarttime: Option<DateTimeWithTimeZone>,
    pub acctupdatetime: Option<DateTimeWithTimeZone>,
    /// NULL while the session is open.
    pub acctstoptime: Option<DateTimeWithTimeZone>,
    pub acctinterval: Option<i64>,
    pub acctsessiontime: Option<SessionTime>,
    pub acctauthentic: Option<String>,
    pub connectinfo_start: Option<String>,
    pub connectinfo_stop: Option<String>,
    /// The full 64-bit count: FreeRADIUS combines Acct-Input-Gigawords and
    /// Acct-Input-Octets when it writes the row.
    pub acctinputoctets: Option<i64>,
    pub acctoutputoctets: Option<i64>,
    pub calledstationid: Option<String>,
    pub callingstationid: Option<String>,
    pub acctterminatecause: Option<String>,
    pub servicetype: Option<String>,
    pub framedprotocol: Option<String>,
    /// `inet` on PostgreSQL.
    pub framedipaddress: Option<String>,
    /// `inet` on PostgreSQL.
    pub framedipv6address: Option<String>,
    /// `inet` on PostgreSQL.
    pub framedipv6prefix: Option<String>,
    pub framedinterfaceid: Option<String>,
    /// `inet` on PostgreSQL.
    pub delegatedipv6prefix: Option<String>,
    pub class: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// `radacct.acctsessiontime`, in seconds.
///
/// FreeRADIUS declares this column `bigint` on PostgreSQL, `int unsigned`
/// on MySQL and `int` on SQLite. sqlx reads an unsigned MySQL column only
/// into an unsigned Rust type and a PostgreSQL `bigint` only into `i64`, so
/// no plain integer type reads it on every backend; this one tries `i64`
/// and falls back to `u32`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionTime(pub i64);

impl From<SessionTime> for Value {
    fn from(seconds: SessionTime) -> Self {
        Value::BigInt(Some(seconds.0))
    }
}

impl TryGetable for SessionTime {
    fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
        match i64::try_get_by(res, idx) {
            Ok(seconds) => Ok(Self(seconds)),
            Err(TryGetError::Null(column)) => Err(TryGetError::Null(column)),
            // MySQL's `int unsigned`; keep the first error if this fails too.
            Err(TryGetError::DbErr(as_i64)) => match u32::try_get_by(res, idx) {
                Ok(seconds) => Ok(Self(seconds.into())),
                Err(TryGetError::Null(column)) => Err(TryGetError::Null(column)),
                Err(TryGetError::DbErr(_)) => Err(TryGetError::DbErr(as_i64)),
            },
        }
    }
}

impl ValueType for SessionTime {
    fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
        <i64 as ValueType>::try_from(v).map(Self)
    }

    fn type_name() -> String {
        "SessionTime".to_owned()
    }

    fn array_type() -> ArrayType {
        ArrayType::BigInt
    }

    fn column_type() -> ColumnType {
        ColumnType::BigInteger
    }
}

impl Nullable for SessionTime {
    fn null() -> Value {
        Value::BigInt(None)
    }
}

impl IntoActiveValue<SessionTime> for SessionTime {
    fn into_active_value(self) -> ActiveValue<SessionTime> {
        ActiveValue::Set(self)
    }
}
