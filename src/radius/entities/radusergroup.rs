//! `radusergroup`: which groups a user belongs to, in priority order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "radusergroup")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: u32,
    pub username: String,
    pub groupname: String,
    /// Lower is processed first. The column default is 0 on PostgreSQL and
    /// 1 on MySQL and SQLite, so set it explicitly.
    pub priority: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
