//! IPAM tables. Each `*_key` column holds an address as 16 big-endian bytes
//! (IPv4 as ::ffff:a.b.c.d), so it sorts numerically; see `ipam::key`.

pub mod ip_pool {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ip_pools")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub name: String,
        pub description: Option<String>,
        pub ip_version: i16,
        pub start_ip: String,
        pub end_ip: String,
        #[sea_orm(column_type = "Binary(16)")]
        pub start_key: Vec<u8>,
        #[sea_orm(column_type = "Binary(16)")]
        pub end_key: Vec<u8>,
        pub gateway: Option<String>,
        /// A JSON array of addresses.
        pub dns_servers: Option<String>,
        pub vlan_id: Option<i32>,
        pub status: String,
        pub created_at: DateTimeWithTimeZone,
        pub updated_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(has_many = "super::ip_subnet::Entity")]
        Subnets,
    }

    impl Related<super::ip_subnet::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Subnets.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod ip_subnet {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ip_subnets")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub pool_id: i32,
        pub ip_version: i16,
        pub network: String,
        pub prefix_length: i16,
        #[sea_orm(column_type = "Binary(16)")]
        pub network_key: Vec<u8>,
        #[sea_orm(column_type = "Binary(16)")]
        pub last_key: Vec<u8>,
        pub gateway: Option<String>,
        pub vlan_id: Option<i32>,
        pub description: Option<String>,
        pub status: String,
        pub created_at: DateTimeWithTimeZone,
        pub updated_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::ip_pool::Entity",
            from = "Column::PoolId",
            to = "super::ip_pool::Column::Id"
        )]
        Pool,
        #[sea_orm(has_many = "super::ip_allocation::Entity")]
        Allocations,
    }

    impl Related<super::ip_pool::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Pool.def()
        }
    }

    impl Related<super::ip_allocation::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Allocations.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod ip_allocation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ip_allocations")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub subnet_id: i32,
        pub ip_address: String,
        #[sea_orm(column_type = "Binary(16)")]
        pub ip_key: Vec<u8>,
        pub mac_address: Option<String>,
        pub username: Option<String>,
        pub allocated_at: DateTimeWithTimeZone,
        pub released_at: Option<DateTimeWithTimeZone>,
        pub expires_at: Option<DateTimeWithTimeZone>,
        pub status: String,
        /// `Some(true)` while active, `None` once released: the unique index
        /// on (subnet_id, ip_key, active) then covers active rows only.
        pub active: Option<bool>,
        pub created_at: DateTimeWithTimeZone,
        pub updated_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::ip_subnet::Entity",
            from = "Column::SubnetId",
            to = "super::ip_subnet::Column::Id"
        )]
        Subnet,
    }

    impl Related<super::ip_subnet::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Subnet.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod ip_allocation_history {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ip_allocation_history")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub allocation_id: Option<i64>,
        pub subnet_id: Option<i32>,
        pub ip_address: String,
        #[sea_orm(column_type = "Binary(16)")]
        pub ip_key: Vec<u8>,
        pub mac_address: Option<String>,
        pub username: Option<String>,
        pub action: String,
        pub allocated_at: DateTimeWithTimeZone,
        pub released_at: Option<DateTimeWithTimeZone>,
        pub created_at: DateTimeWithTimeZone,
        pub updated_at: DateTimeWithTimeZone,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod ip_free_range {
    use sea_orm::entity::prelude::*;

    /// A run of free addresses in a subnet, bounds included.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ip_free_ranges")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub subnet_id: i32,
        #[sea_orm(column_type = "Binary(16)")]
        pub start_key: Vec<u8>,
        #[sea_orm(column_type = "Binary(16)")]
        pub end_key: Vec<u8>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
