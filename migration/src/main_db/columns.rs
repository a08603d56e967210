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

/// Adds the columns to `table`, one ALTER each: SQLite adds one column per
/// statement.
pub async fn add_columns(
    manager: &SchemaManager<'_>,
    table: &'static str,
    columns: impl IntoIterator<Item = ColumnDef>,
) -> Result<(), DbErr> {
    for column in columns {
        manager
            .alter_table(Table::alter().table(table).add_column(column).take())
            .await?;
    }
    Ok(())
}

/// Drops the columns from `table`, one ALTER each.
pub async fn drop_columns(
    manager: &SchemaManager<'_>,
    table: &'static str,
    columns: &[&'static str],
) -> Result<(), DbErr> {
    for column in columns {
        manager
            .alter_table(Table::alter().table(table).drop_column(*column).take())
            .await?;
    }
    Ok(())
}
