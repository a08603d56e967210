//! ispd's integration tests: one binary, one module per area.

mod helpers;

/// Runs `async fn $name(arg)` once per variant, with `arg` the variant's
/// value, as the tests `$name::$variant` on a runtime of `$threads` threads.
#[macro_export]
macro_rules! test_each {
    ($name:ident, $threads:literal, $($variant:ident => $arg:expr),+ $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use $crate::helpers::Backend;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
                async fn $variant() {
                    super::$name($arg).await
                }
            )+
        }
    };
}

/// Runs `async fn $name(backend: Backend)` once per backend, as the tests
/// `$name::sqlite`, `$name::postgres` and `$name::mariadb`.
#[macro_export]
macro_rules! on_every_backend {
    ($name:ident) => {
        $crate::test_each!(
            $name,
            2,
            sqlite => Backend::Sqlite,
            postgres => Backend::Postgres,
            mariadb => Backend::MySql,
        );
    };
}

mod api;
mod backup;
mod cli;
mod compose;
mod config;
mod dashboard;
mod enforcement;
mod enforcement_web;
mod freeradius;
mod ipam;
mod ipam_api;
mod ipam_web;
mod jobs;
mod key_rotate;
mod migrations;
mod mikrotik_pppoe;
mod mikrotik_routers;
mod mikrotik_sessions;
mod network_health;
mod policies;
mod policies_web;
mod probes;
mod quotas;
mod radius_accounting;
mod radius_coa;
mod radius_nas;
mod radius_resync;
mod radius_schema;
mod radius_sync;
mod routeros;
mod scale_out;
mod security;
mod users;
mod users_api;
mod users_web;
mod web;
mod webhooks;
mod webhooks_web;
