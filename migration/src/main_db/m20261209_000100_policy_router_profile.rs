//! `service_policies.mikrotik_profile`: the PPP profile a walled-garden or
//! throttle policy puts a subscriber's PPP secret on, on the routers that
//! authenticate it locally (without RADIUS): the router-side form of the
//! restricted service (its profile sets the rate and the address list).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261209_000100_policy_router_profile"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("service_policies")
                    .add_column(string_len_null("mikrotik_profile", 64))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("service_policies")
                    .drop_column("mikrotik_profile")
                    .take(),
            )
            .await
    }
}
