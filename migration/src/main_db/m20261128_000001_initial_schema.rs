//! The first main-DB schema: every table ispd starts with.
//!
//! Addresses are stored twice: as text for display, and as a 16-byte key
//! (`*_key`) that sorts and compares numerically on every backend, because
//! a byte-wise comparison of big-endian bytes is a numeric comparison. IPv4
//! keys are IPv4-mapped IPv6 addresses (::ffff:a.b.c.d), so both families
//! share one column type and never collide.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000001_initial_schema"
    }
}

/// Tables in creation order; `down` drops them in reverse.
const TABLES: &[&str] = &[
    "staff_users",
    "staff_sessions",
    "api_tokens",
    "audit_log",
    "ip_pools",
    "ip_subnets",
    "ip_allocations",
    "ip_allocation_history",
    "service_packages",
    "network_users",
    "mikrotik_routers",
    "network_user_sessions",
    "mikrotik_pppoe_users",
];

/// Column builders that differ per backend.
struct Cols {
    backend: DbBackend,
}

impl Cols {
    /// A UTC timestamp. MySQL's TIMESTAMP ends in 2038 and has only second
    /// precision by default, so MySQL gets DATETIME(6) holding UTC.
    fn ts(&self, name: &'static str) -> ColumnDef {
        let mut col = ColumnDef::new(name);
        match self.backend {
            DbBackend::MySql => col.custom("datetime(6)"),
            _ => col.timestamp_with_time_zone(),
        };
        col.not_null().take()
    }

    fn ts_null(&self, name: &'static str) -> ColumnDef {
        let mut col = self.ts(name);
        col.null();
        col
    }

    /// An address key: 16 bytes, compared byte-wise.
    fn ip_key(&self, name: &'static str) -> ColumnDef {
        binary_len(name, 16)
    }

    fn with_timestamps(&self, mut table: TableCreateStatement) -> TableCreateStatement {
        table
            .col(self.ts("created_at"))
            .col(self.ts("updated_at"))
            .take()
    }
}

fn address(name: &'static str) -> ColumnDef {
    string_len(name, 45)
}

fn address_null(name: &'static str) -> ColumnDef {
    string_len_null(name, 45)
}

fn status() -> ColumnDef {
    string_len("status", 16)
}

fn fk(
    name: &str,
    from: (&'static str, &'static str),
    to: (&'static str, &'static str),
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(on_delete)
        .on_update(ForeignKeyAction::Cascade)
        .take()
}

fn index(name: &str, table: &'static str, columns: &[&'static str]) -> IndexCreateStatement {
    let mut idx = Index::create().name(name).table(table).take();
    for column in columns {
        idx.col(*column);
    }
    idx
}

fn unique_index(name: &str, table: &'static str, columns: &[&'static str]) -> IndexCreateStatement {
    let mut idx = index(name, table, columns);
    idx.unique();
    idx
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Cols {
            backend: manager.get_database_backend(),
        };

        // Staff, their sessions, API tokens and the audit log.
        manager
            .create_table(
                c.with_timestamps(
                    Table::create()
                        .table("staff_users")
                        .col(pk_auto("id"))
                        .col(string_len_uniq("username", 64))
                        .col(string_len("password_hash", 255))
                        .col(string_len("role", 16))
                        .col(boolean("is_active").default(true))
                        .col(c.ts_null("last_login_at"))
                        .take(),
                ),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("staff_sessions")
                    .col(string_len("id", 128).primary_key())
                    .col(integer_null("staff_user_id"))
                    .col(blob("data"))
                    .col(c.ts("expiry_date"))
                    .foreign_key(&mut fk(
                        "fk_staff_sessions_staff_user",
                        ("staff_sessions", "staff_user_id"),
                        ("staff_users", "id"),
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_staff_sessions_expiry",
                "staff_sessions",
                &["expiry_date"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_staff_sessions_staff_user",
                "staff_sessions",
                &["staff_user_id"],
            ))
            .await?;

        manager
            .create_table(
                c.with_timestamps(
                    Table::create()
                        .table("api_tokens")
                        .col(pk_auto("id"))
                        .col(string_len("name", 100))
                        // SHA-256 of the token, hex: tokens are random, so a fast
                        // hash is enough and lets the lookup use this index.
                        .col(char_len_uniq("token_hash", 64))
                        .col(string_len("token_prefix", 16))
                        .col(string_len("role", 16))
                        .col(integer_null("created_by"))
                        .col(c.ts_null("expires_at"))
                        .col(c.ts_null("last_used_at"))
                        .col(c.ts_null("revoked_at"))
                        .foreign_key(&mut fk(
                            "fk_api_tokens_created_by",
                            ("api_tokens", "created_by"),
                            ("staff_users", "id"),
                            ForeignKeyAction::SetNull,
                        ))
                        .take(),
                ),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("audit_log")
                    .col(big_pk_auto("id"))
                    .col(string_len("actor_kind", 16))
                    .col(integer_null("actor_id"))
                    .col(string_len("actor_name", 100))
                    .col(string_len("action", 64))
                    .col(string_len("entity_type", 64))
                    .col(string_len_null("entity_id", 64))
                    .col(text_null("details"))
                    .col(address_null("ip_address"))
                    .col(c.ts("created_at"))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_audit_log_created_at",
                "audit_log",
                &["created_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_audit_log_entity",
                "audit_log",
                &["entity_type", "entity_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_audit_log_actor",
                "audit_log",
                &["actor_kind", "actor_id"],
            ))
            .await?;

        // IPAM.
        manager
            .create_table(
                c.with_timestamps(
                    Table::create()
                        .table("ip_pools")
                        .col(pk_auto("id"))
                        .col(string_len_uniq("name", 100))
                        .col(text_null("description"))
                        .col(small_integer("ip_version"))
                        .col(address("start_ip"))
                        .col(address("end_ip"))
                        .col(c.ip_key("start_key"))
                        .col(c.ip_key("end_key"))
                        .col(address_null("gateway"))
                        // A JSON array of addresses.
                        .col(text_null("dns_servers"))
                        .col(integer_null("vlan_id"))
                        .col(status())
                        .take(),
                ),
            )
            .await?;
        manager
            .create_index(index(
                "idx_ip_pools_range",
                "ip_pools",
                &["start_key", "end_key"],
            ))
            .await?;

        manager
            .create_table(
                c.with_timestamps(
                    Table::create()
                        .table("ip_subnets")
                        .col(pk_auto("id"))
                        .col(integer("pool_id"))
                        .col(small_integer("ip_version"))
                        .col(address("network"))
                        .col(small_integer("prefix_length"))
                        // First and last address of the network, for overlap
                        // checks: two subnets overlap when each starts before the
                        // other ends.
                        .col(c.ip_key("network_key"))
                        .col(c.ip_key("last_key"))
                        .col(address_null("gateway"))
                        .col(integer_null("vlan_id"))
                        .col(text_null("description"))
                        .col(status())
                        .foreign_key(&mut fk(
                            "fk_ip_subnets_pool",
                            ("ip_subnets", "pool_id"),
                            ("ip_pools", "id"),
                            ForeignKeyAction::Restrict,
                        ))
                        .take(),
                ),
            )
            .await?;
        manager
            .create_index(index("idx_ip_subnets_pool", "ip_subnets", &["pool_id"]))
            .await?;
        manager
            .create_index(index(
                "idx_ip_subnets_range",
                "ip_subnets",
                &["network_key", "last_key"],
            ))
            .await?;

        manager
            .create_table(
                c.with_timestamps(
                    Table::create()
                        .table("ip_allocations")
                        .col(big_pk_auto("id"))
                        .col(integer("subnet_id"))
                        .col(address("ip_address"))
                        .col(c.ip_key("ip_key"))
                        .col(string_len_null("mac_address", 17))
                        .col(string_len_null("username", 64))
                        .col(c.ts("allocated_at"))
                        .col(c.ts_null("released_at"))
                        .col(c.ts_null("expires_at"))
                        .col(status())
                        // TRUE while the allocation is active, NULL afterwards.
                        // A unique index ignores rows with a NULL column on all
                        // three backends, so (subnet_id, ip_key, active) is
                        // unique among active allocations only: a partial index
                        // that MariaDB can also express.
                        .col(boolean_null("active"))
                        .foreign_key(&mut fk(
                            "fk_ip_allocations_subnet",
                            ("ip_allocations", "subnet_id"),
                            ("ip_subnets", "id"),
                            ForeignKeyAction::Restrict,
                        ))
                        .take(),
                ),
            )
            .await?;
        manager
            .create_index(unique_index(
                "uq_ip_allocations_active_address",
                "ip_allocations",
                &["subnet_id", "ip_key", "active"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_ip_allocations_subnet_mac",
                "ip_allocations",
                &["subnet_id", "mac_address"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_ip_allocations_username",
                "ip_allocations",
                &["username"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_ip_allocations_expiry",
                "ip_allocations",
                &["status", "expires_at"],
            ))
            .await?;

        manager
            .create_table(
                c.with_timestamps(
                    Table::create()
                        .table("ip_allocation_history")
                        .col(big_pk_auto("id"))
                        .col(big_integer_null("allocation_id"))
                        .col(integer_null("subnet_id"))
                        .col(address("ip_address"))
                        .col(c.ip_key("ip_key"))
                        .col(string_len_null("mac_address", 17))
                        .col(string_len_null("username", 64))
                        .col(string_len("action", 16))
                        .col(c.ts("allocated_at"))
                        .col(c.ts_null("released_at"))
                        // History outlives the allocation and the subnet.
                        .foreign_key(&mut fk(
                            "fk_ip_allocation_history_allocation",
                            ("ip_allocation_history", "allocation_id"),
                            ("ip_allocations", "id"),
                            ForeignKeyAction::SetNull,
                        ))
                        .foreign_key(&mut fk(
                            "fk_ip_allocation_history_subnet",
                            ("ip_allocation_history", "subnet_id"),
                            ("ip_subnets", "id"),
                            ForeignKeyAction::SetNull,
                        ))
                        .take(),
                ),
            )
            .await?;
        // "Who held this address at time T": key equality, then a range on
        // allocated_at, then released_at checked on the few rows left.
        manager
            .create_index(index(
                "idx_ip_allocation_history_address_time",
                "ip_allocation_history",
                &["ip_key", "allocated_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_ip_allocation_history_allocation",
                "ip_allocation_history",
                &["allocation_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_ip_allocation_history_username",
                "ip_allocation_history",
                &["username", "allocated_at"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_ip_allocation_history_mac",
                "ip_allocation_history",
                &["mac_address", "allocated_at"],
            ))
            .await?;

        // Subscribers and their packages.
        manager
            .create_table(
                c.with_timestamps(
                    Table::create()
                        .table("service_packages")
                        .col(pk_auto("id"))
                        .col(string_len_uniq("name", 64))
                        .col(text_null("description"))
                        .col(big_integer("download_rate_kbps"))
                        .col(big_integer("upload_rate_kbps"))
                        .col(big_integer_null("burst_download_kbps"))
                        .col(big_integer_null("burst_upload_kbps"))
                        .col(big_integer_null("burst_threshold_download_kbps"))
                        .col(big_integer_null("burst_threshold_upload_kbps"))
                        .col(integer_null("burst_time_secs"))
                        .col(integer_null("session_timeout_secs"))
                        .col(integer_null("simultaneous_use"))
                        .col(string_len_uniq("radius_group", 64))
                        .col(string_len_null("mikrotik_profile", 64))
                        .col(status())
                        .take(),
                ),
            )
            .await?;

        manager
            .create_table(
                c.with_timestamps(
                    Table::create()
                        .table("network_users")
                        .col(pk_auto("id"))
                        .col(string_len_uniq("username", 64))
                        // AES-256-GCM with APP_KEY: nonce and ciphertext, base64.
                        .col(text("password_encrypted"))
                        .col(string_len("service_type", 16))
                        .col(integer_null("package_id"))
                        .col(status())
                        .col(address_null("static_ip"))
                        .col(big_integer_null("static_allocation_id"))
                        .col(string_len_null("mac_address", 17))
                        .col(c.ts_null("expires_at"))
                        .col(string_len_null("full_name", 128))
                        .col(text_null("notes"))
                        // Set with every change, cleared by a successful RADIUS
                        // sync: a failed sync stays visible and is retried.
                        .col(boolean("radius_sync_pending").default(true))
                        .col(c.ts_null("radius_synced_at"))
                        .foreign_key(&mut fk(
                            "fk_network_users_package",
                            ("network_users", "package_id"),
                            ("service_packages", "id"),
                            ForeignKeyAction::Restrict,
                        ))
                        .foreign_key(&mut fk(
                            "fk_network_users_static_allocation",
                            ("network_users", "static_allocation_id"),
                            ("ip_allocations", "id"),
                            ForeignKeyAction::SetNull,
                        ))
                        .take(),
                ),
            )
            .await?;
        manager
            .create_index(index(
                "idx_network_users_package",
                "network_users",
                &["package_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_network_users_status",
                "network_users",
                &["status"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_network_users_sync_pending",
                "network_users",
                &["radius_sync_pending"],
            ))
            .await?;

        // MikroTik routers, then sessions (which may name a router).
        manager
            .create_table(
                c.with_timestamps(
                    Table::create()
                        .table("mikrotik_routers")
                        .col(pk_auto("id"))
                        .col(string_len_uniq("name", 64))
                        .col(string_len("ip_address", 255))
                        .col(integer("api_port"))
                        .col(boolean("use_tls").default(false))
                        // SHA-256 of the router's certificate, pinned.
                        .col(string_len_null("tls_fingerprint", 95))
                        .col(string_len("username", 64))
                        .col(text("password_encrypted"))
                        .col(status())
                        .col(string_len_null("identity", 128))
                        .col(string_len_null("version", 64))
                        .col(c.ts_null("last_seen_at"))
                        .col(text_null("last_error"))
                        .take(),
                ),
            )
            .await?;

        manager
            .create_table(
                c.with_timestamps(
                    Table::create()
                        .table("network_user_sessions")
                        .col(big_pk_auto("id"))
                        .col(integer_null("user_id"))
                        .col(string_len("username", 64))
                        .col(string_len("session_id", 64))
                        .col(string_len("source", 16))
                        .col(integer_null("router_id"))
                        .col(c.ts("start_time"))
                        .col(c.ts_null("end_time"))
                        .col(big_integer("upload_bytes").default(0))
                        .col(big_integer("download_bytes").default(0))
                        .col(address_null("ip_address"))
                        .col(string_len_null("mac_address", 17))
                        .col(address("nas_ip"))
                        .col(status())
                        .foreign_key(&mut fk(
                            "fk_network_user_sessions_user",
                            ("network_user_sessions", "user_id"),
                            ("network_users", "id"),
                            ForeignKeyAction::SetNull,
                        ))
                        .foreign_key(&mut fk(
                            "fk_network_user_sessions_router",
                            ("network_user_sessions", "router_id"),
                            ("mikrotik_routers", "id"),
                            ForeignKeyAction::SetNull,
                        ))
                        .take(),
                ),
            )
            .await?;
        manager
            .create_index(unique_index(
                "uq_network_user_sessions_nas_session",
                "network_user_sessions",
                &["nas_ip", "session_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_network_user_sessions_user_start",
                "network_user_sessions",
                &["user_id", "start_time"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_network_user_sessions_status",
                "network_user_sessions",
                &["status", "start_time"],
            ))
            .await?;

        manager
            .create_table(
                c.with_timestamps(
                    Table::create()
                        .table("mikrotik_pppoe_users")
                        .col(pk_auto("id"))
                        .col(integer("router_id"))
                        .col(integer_null("network_user_id"))
                        .col(string_len("username", 64))
                        .col(text("password_encrypted"))
                        .col(string_len("service", 16))
                        .col(string_len_null("profile", 64))
                        .col(address_null("local_address"))
                        .col(address_null("remote_address"))
                        // The router's own id for the secret, such as *1A.
                        .col(string_len_null("router_item_id", 16))
                        .col(status())
                        .col(c.ts_null("last_synced_at"))
                        .foreign_key(&mut fk(
                            "fk_mikrotik_pppoe_users_router",
                            ("mikrotik_pppoe_users", "router_id"),
                            ("mikrotik_routers", "id"),
                            ForeignKeyAction::Cascade,
                        ))
                        .foreign_key(&mut fk(
                            "fk_mikrotik_pppoe_users_network_user",
                            ("mikrotik_pppoe_users", "network_user_id"),
                            ("network_users", "id"),
                            ForeignKeyAction::SetNull,
                        ))
                        .take(),
                ),
            )
            .await?;
        manager
            .create_index(unique_index(
                "uq_mikrotik_pppoe_users_router_username",
                "mikrotik_pppoe_users",
                &["router_id", "username"],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_mikrotik_pppoe_users_network_user",
                "mikrotik_pppoe_users",
                &["network_user_id"],
            ))
            .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES.iter().rev() {
            manager
                .drop_table(Table::drop().table(*table).if_exists().take())
                .await?;
        }
        Ok(())
    }
}
