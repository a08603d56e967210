//! Column builders the migrations share.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// A UTC timestamp. MySQL's TIMESTAMP ends in 2038 and keeps only seconds,
/// so MySQL gets DATETIME(6) holding UTC.
pub fn timestamp_col(name: &'static str, backend: DbBackend, null: bool) -> ColumnDef {
    let mut col = ColumnDef::new(name);
    match backend {
        DbBackend::MySql => col.custom("datetime(6)"),
        _ => col.timestamp_with_time_zone(),
    };
    if null {
        col.null();
    } else {
        col.not_null();
    }
    col
}
