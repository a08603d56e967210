//! `nas`: RADIUS clients (routers) FreeRADIUS loads when `read_clients` is on.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "nas")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// The client's address, network or host name.
    pub nasname: String,
    /// `NOT NULL` on PostgreSQL, nullable on MySQL and SQLite.
    pub shortname: Option<String>,
    /// FreeRADIUS's `type` column (`other`, `cisco`, ...); `NOT NULL` on
    /// PostgreSQL only.
    #[sea_orm(column_name = "type")]
    pub nas_type: Option<String>,
    pub ports: Option<i32>,
    /// The RADIUS shared secret, in clear: FreeRADIUS reads it as stored.
    pub secret: String,
    /// The virtual server that handles this client.
    pub server: Option<String>,
    pub community: Option<String>,
    pub description: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
