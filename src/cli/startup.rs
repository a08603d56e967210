//! What the serving commands share: connecting and migrating, the key,
//! the first admin, and running the web server and the worker.

use anyhow::{bail, Context};
use migration::{Migrator, MigratorTrait, RadiusMigrator};

use super::MigrateAction;
use crate::app::{self, AppState};
use crate::audit::Actor;
use crate::config::{AppEnv, Config};
use crate::crypto::{random_password, AppKey, Secret};
use crate::db::Databases;
use crate::jobs;
use crate::staff::service as staff;
use crate::staff::{validate_password, Role, StaffUsername};

pub(super) fn job_context(state: &AppState) -> jobs::JobContext {
    jobs::JobContext {
        db: state.db.clone(),
        config: state.config.clone(),
        app_key: state.app_key.clone(),
        router_pool: state.router_pool.clone(),
    }
}

/// Connects, migrates when asked (or checks that no migration is pending),
/// and resolves the application key.
pub(super) async fn prepare(config: Config, migrate: bool) -> anyhow::Result<AppState> {
    let app_key = resolve_app_key(&config)?;
    let db = Databases::connect(&config).await?;
    if migrate {
        db.migrate().await?;
    } else {
        require_migrated(&db).await?;
    }
    Ok(AppState::new(config, db, app_key))
}

pub(super) async fn require_migrated(db: &Databases) -> anyhow::Result<()> {
    let pending = db.pending_migrations().await?;
    if !pending.is_empty() {
        bail!(
            "the databases need migrating ({} pending: {}); run `ispd migrate`",
            pending.len(),
            pending.join(", ")
        );
    }
    Ok(())
}

/// APP_KEY when set; otherwise (outside production) the key file in the
/// data directory, created on first use and never overwritten.
pub(super) fn resolve_app_key(config: &Config) -> anyhow::Result<AppKey> {
    match &config.app_key {
        Some(key) => Ok(key.clone()),
        None => {
            debug_assert!(config.app_env != AppEnv::Production);
            let path = config.data_dir.join("app.key");
            let key = AppKey::load_or_create(&path)?;
            tracing::info!(path = %path.display(), "using the application key file (APP_KEY is not set)");
            Ok(key)
        }
    }
}

pub(super) async fn serve(
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = state.config.listen_addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (LISTEN_ADDR)"))?;
    app::serve(state, listener, shutdown).await
}

/// Web and worker in one process, until a signal stops both.
pub(super) async fn serve_and_work(state: AppState) -> anyhow::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        app::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let wait_for_stop = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|&stop| stop).await;
    };
    let worker = jobs::run_worker(job_context(&state), wait_for_stop(stopped.clone()));
    tokio::try_join!(serve(state, wait_for_stop(stopped)), worker)?;
    Ok(())
}

/// On first run there is no staff member: create `admin` and print its
/// password once. ADMIN_PASSWORD, when set, is used instead of a random one.
/// There is never a default password.
pub(super) async fn ensure_first_admin(state: &AppState) -> anyhow::Result<()> {
    if staff::count_staff(&state.db.main).await? > 0 {
        return Ok(());
    }
    let (password, generated) = match &state.config.admin_password {
        Some(password) => {
            validate_password(password.expose())
                .map_err(|e| anyhow::anyhow!("ADMIN_PASSWORD: {e}"))?;
            (password.clone(), false)
        }
        None => (Secret::new(random_password(20)), true),
    };
    let username = StaffUsername::parse("admin").expect("a valid name");
    staff::create_staff(
        &state.db.main,
        &Actor::system(),
        &username,
        Role::Admin,
        &password,
    )
    .await?;
    let line = "=".repeat(64);
    // stdout, never the log: the password must not end up in log storage.
    println!("{line}");
    println!("  First run: created the staff account \"admin\".");
    if generated {
        println!("  Password:  {}", password.expose());
        println!("  It is shown only this once. Sign in and change it.");
    } else {
        println!("  Password:  the value of ADMIN_PASSWORD.");
    }
    println!("{line}");
    Ok(())
}

pub(super) async fn migrate(config: &Config, action: MigrateAction) -> anyhow::Result<()> {
    let db = Databases::connect(config).await?;
    match action {
        MigrateAction::Up => {
            db.migrate().await?;
            println!("Both databases are up to date.");
        }
        MigrateAction::Status => {
            for (label, migrations) in [
                ("main", Migrator::get_migration_with_status(&db.main).await?),
                (
                    "radius",
                    RadiusMigrator::get_migration_with_status(&db.radius).await?,
                ),
            ] {
                for m in migrations {
                    println!(
                        "{label:<7} {:<10} {}",
                        format!("{:?}", m.status()),
                        m.name()
                    );
                }
            }
        }
        MigrateAction::Down { steps } => {
            Migrator::down(&db.main, Some(steps)).await?;
            RadiusMigrator::down(&db.radius, Some(steps)).await?;
            println!("Rolled back {steps} migration(s) on each database.");
        }
    }
    Ok(())
}
