//! `radgroupreply`: reply items shared by every member of a group (members are listed in `radusergroup`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "radgroupreply")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: u32,
    pub groupname: String,
    pub attribute: String,
    /// The operator (`:=`, `==`, `+=`, ...); the column default is `=`.
    pub op: String,
    pub value: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
