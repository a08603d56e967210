//! The free address ranges of each subnet.
//!
//! Allocation takes the lowest free address by reading the first free range
//! of the subnet (one index seek) instead of searching the allocations for a
//! gap, which costs a step per allocated address below the gap. Release
//! gives the address back, merging it with its neighbours. Both happen in
//! the allocation's transaction, under the subnet's row lock.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000002_ip_free_ranges"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("ip_free_ranges")
                    .col(big_pk_auto("id"))
                    .col(integer("subnet_id"))
                    // Inclusive bounds, 16-byte keys as in ip_allocations.
                    .col(binary_len("start_key", 16))
                    .col(binary_len("end_key", 16))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ip_free_ranges_subnet")
                            .from("ip_free_ranges", "subnet_id")
                            .to("ip_subnets", "id")
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_ip_free_ranges_subnet_start")
                    .table("ip_free_ranges")
                    .col("subnet_id")
                    .col("start_key")
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ip_free_ranges_subnet_end")
                    .table("ip_free_ranges")
                    .col("subnet_id")
                    .col("end_key")
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("ip_free_ranges").if_exists().take())
            .await
    }
}
