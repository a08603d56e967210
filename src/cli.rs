//! The `ispd` command line: one binary for the web server, the worker, and
//! every administrative task.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{ArgGroup, Args, Parser, Subcommand};
use migration::{Migrator, MigratorTrait, RadiusMigrator};

use crate::app::{self, AppState};
use crate::audit::Actor;
use crate::config::{AppEnv, Config};
use crate::crypto::{random_password, AppKey, Secret};
use crate::db::Databases;
use crate::jobs;
use crate::staff::service::{self as staff, StaffError};
use crate::staff::{validate_password, Role, StaffUsername};

#[derive(Debug, Parser)]
#[command(
    name = "ispd",
    version,
    about = "Network services for ISPs: IP address management, RADIUS subscribers, MikroTik routers",
    long_about = "Network services for ISPs: IP address management, RADIUS subscribers, MikroTik routers.\n\n\
        Settings come from the environment and from a .env file in the working directory; \
        .env.example documents each one. With none set, ispd runs on SQLite files under ./data."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web UI and the JSON API (/api/v1). Databases must be migrated.
    Serve,
    /// Run background jobs and their schedule.
    Worker,
    /// Migrate, create the first admin if there is none, then serve web and worker in one process.
    Run,
    /// Apply (or inspect, or roll back) migrations of both databases.
    Migrate(MigrateArgs),
    /// Manage staff accounts.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Application key (APP_KEY) tools.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Load demo data: a few pools, subnets, packages, users and a router entry.
    Seed,
    /// `run` with the demo data and a mock MikroTik router (PPPoE sessions
    /// online) wired to the demo router: a working system to look around in.
    Demo(DemoArgs),
    /// RADIUS tasks.
    #[command(subcommand)]
    Radius(RadiusCommand),
    /// MikroTik tasks.
    #[command(subcommand)]
    Mikrotik(MikrotikCommand),
    /// IP address management tasks.
    #[command(subcommand)]
    Ipam(IpamCommand),
    /// Network-wide checks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Background jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Run a mock MikroTik router (RouterOS API) until Ctrl-C, for development and demos.
    MockRouteros(crate::mikrotik::routeros::mock::MockRouterosArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the mock router's RouterOS API listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub router_listen: std::net::SocketAddr,
    /// PPPoE sessions the mock router has online.
    #[arg(long, default_value_t = 25)]
    pub sessions: u32,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub action: Option<MigrateAction>,
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration (the default).
    Up,
    /// Show applied and pending migrations.
    Status,
    /// Roll back the most recent migrations of both databases.
    Down {
        /// How many migrations to roll back on each database.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a staff member. Prints a generated password unless --password-stdin is given.
    Create {
        #[arg(long)]
        username: String,
        /// admin, operator or viewer.
        #[arg(long, default_value = "admin")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password for a staff member. Prints a generated one unless --password-stdin is given.
    ResetPassword {
        #[arg(long)]
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it once.
    Create {
        /// What the token is for, e.g. "billing".
        #[arg(long)]
        name: String,
        /// admin, operator or viewer.
        #[arg(long)]
        role: String,
        /// Lifetime such as 90d, 12h or 2w. Without it the token does not expire.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Revoke a token by id: it stops working at once.
    Revoke { id: i32 },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print a new random APP_KEY (32 bytes, base64).
    Generate,
    /// Re-encrypt every stored secret from the current APP_KEY to a new
    /// key, in one transaction (all or nothing). Stop serve and worker first.
    Rotate(KeyRotateArgs),
}

/// The new key comes from exactly one of --new-key, --new-key-file and
/// --generate; --dry-run alone needs none.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("what")
        .args(["new_key", "new_key_file", "generate", "dry_run"])
        .required(true)
        .multiple(true)
))]
pub struct KeyRotateArgs {
    /// The new key, base64 (it shows in the process list and shell history:
    /// prefer --new-key-file or --generate).
    #[arg(long, value_name = "BASE64", conflicts_with_all = ["new_key_file", "generate"])]
    pub new_key: Option<String>,
    /// Read the new key (base64) from this file; /dev/stdin reads it from
    /// standard input.
    #[arg(long, value_name = "PATH", conflicts_with = "generate")]
    pub new_key_file: Option<PathBuf>,
    /// Generate the new key and print it once to standard output.
    #[arg(long)]
    pub generate: bool,
    /// Decrypt every stored secret with the current key and count them;
    /// write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum RadiusCommand {
    /// Write every user and package into the RADIUS tables.
    SyncUsers {
        /// Print the drift without writing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Sync the users still flagged for RADIUS sync (what the radius-retry
    /// job does every 5 minutes).
    Retry,
    /// Close open sessions with no accounting update for three interim
    /// intervals (what the radius-close-stale job does every 5 minutes).
    CloseStale {
        /// Count the stale sessions without closing them.
        #[arg(long)]
        dry_run: bool,
        /// Interim interval assumed for sessions whose row has none, in
        /// seconds (60 to 86400).
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(i64).range(60..=86_400))]
        default_interval: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum MikrotikCommand {
    /// Read active sessions from every router into ispd. Exits 1 only when
    /// no router at all could be synced.
    SyncSessions {
        /// Routers read at once.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
        concurrency: u16,
    },
}

#[derive(Debug, Subcommand)]
pub enum IpamCommand {
    /// Release expired allocations.
    Cleanup,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Queue a run of a job for the workers (as "Run now" does); refused
    /// while a run of it is queued or running. Prints the run's id.
    Run {
        /// The job's name, e.g. ipam-cleanup (the Jobs page lists them).
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Check that every router and database answers. Exits 1 when anything is down.
    HealthCheck {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Failures the caller reports as a configuration problem (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct BadConfig(#[from] pub crate::config::ConfigError);

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Key(KeyCommand::Generate) => {
            println!("{}", AppKey::generate().to_base64());
            Ok(())
        }
        // Needs no configuration or database.
        Command::MockRouteros(args) => {
            crate::mikrotik::routeros::mock::run(args, app::shutdown_signal()).await
        }
        command => {
            let config = Config::from_env().map_err(BadConfig)?;
            crate::telemetry::init(&config.log_level, config.log_format);
            run_with_config(command, config).await
        }
    }
}

async fn run_with_config(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let state = prepare(config, false).await?;
            serve(state, app::shutdown_signal()).await
        }
        Command::Worker => {
            let state = prepare(config, false).await?;
            jobs::run_worker(job_context(&state), app::shutdown_signal()).await
        }
        Command::Run => {
            let state = prepare(config, true).await?;
            ensure_first_admin(&state).await?;
            serve_and_work(state).await
        }
        Command::Demo(args) => {
            let state = prepare(config, true).await?;
            ensure_first_admin(&state).await?;
            println!(
                "{}",
                crate::seed::load_demo_data(&state.db.main, &state.app_key).await?
            );
            let router = crate::seed::start_demo_router(
                &state.db.main,
                &state.app_key,
                args.router_listen,
                args.sessions,
            )
            .await?;
            println!(
                "Mock MikroTik router \"{}\" on {} with {} PPPoE sessions online.",
                crate::seed::DEMO_ROUTER,
                router.addr(),
                args.sessions
            );
            serve_and_work(state).await
        }
        Command::Migrate(args) => migrate(&config, args.action.unwrap_or(MigrateAction::Up)).await,
        Command::Admin(admin) => {
            let db = Databases::connect(&config).await?;
            require_migrated(&db).await?;
            match admin {
                AdminCommand::Create {
                    username,
                    role,
                    password_stdin,
                } => {
                    let username = StaffUsername::parse(&username)
                        .map_err(|e| anyhow::anyhow!("--username: {e}"))?;
                    let role: Role = role.parse().map_err(|e| anyhow::anyhow!("--role: {e}"))?;
                    let (password, generated) = password_from(password_stdin)?;
                    staff::create_staff(&db.main, &Actor::cli(), &username, role, &password)
                        .await?;
                    println!("Created {role} \"{}\".", username.as_str());
                    if generated {
                        println!("Password: {}", password.expose());
                    }
                    Ok(())
                }
                AdminCommand::ResetPassword {
                    username,
                    password_stdin,
                } => {
                    let (password, generated) = password_from(password_stdin)?;
                    staff::reset_password(&db.main, &Actor::cli(), &username, &password).await?;
                    println!("Password of \"{username}\" changed.");
                    if generated {
                        println!("New password: {}", password.expose());
                    }
                    Ok(())
                }
            }
        }
        Command::Token(token) => {
            let db = Databases::connect(&config).await?;
            require_migrated(&db).await?;
            match token {
                TokenCommand::Create {
                    name,
                    role,
                    expires,
                } => {
                    let name = name.trim();
                    if name.is_empty() || name.len() > 100 {
                        bail!("--name: must be 1 to 100 characters long");
                    }
                    let role: Role = role.parse().map_err(|e| anyhow::anyhow!("--role: {e}"))?;
                    let expires_at = match expires {
                        Some(text) => Some(
                            chrono::Utc::now()
                                + staff::parse_lifetime(&text)
                                    .map_err(|e| anyhow::anyhow!("--expires: {e}"))?,
                        ),
                        None => None,
                    };
                    let issued =
                        staff::create_token(&db.main, &Actor::cli(), name, role, expires_at)
                            .await?;
                    eprintln!(
                        "Created token {} \"{}\" ({role}{}). It is shown only now:",
                        issued.token.id,
                        issued.token.name,
                        expires_at
                            .map(|at| format!(", expires {}", at.format("%Y-%m-%d %H:%M UTC")))
                            .unwrap_or_default()
                    );
                    println!("{}", issued.plaintext.expose());
                    Ok(())
                }
                TokenCommand::Revoke { id } => {
                    let token = staff::revoke_token(&db.main, &Actor::cli(), id)
                        .await
                        .map_err(|e| match e {
                            StaffError::NoSuchToken(_) => anyhow::anyhow!("{e}"),
                            other => other.into(),
                        })?;
                    println!("Token {} \"{}\" is revoked.", token.id, token.name);
                    Ok(())
                }
            }
        }
        Command::Key(KeyCommand::Rotate(args)) => rotate_key(&config, args).await,
        Command::Seed => {
            let state = prepare(config, true).await?;
            let summary = crate::seed::load_demo_data(&state.db.main, &state.app_key).await?;
            println!("{summary}");
            Ok(())
        }
        Command::Key(KeyCommand::Generate) | Command::MockRouteros(_) => {
            unreachable!("handled before configuration")
        }
        Command::Radius(RadiusCommand::SyncUsers { dry_run }) => {
            let state = prepare(config, false).await?;
            use std::io::{IsTerminal, Write};
            let tty = std::io::stderr().is_terminal();
            let report = crate::radius::service::sync_all_with_progress(
                &state.db.main,
                &state.db.radius,
                &state.app_key,
                dry_run,
                |done, total| {
                    if tty {
                        eprint!("\rsyncing users: {done}/{total}");
                        let _ = std::io::stderr().flush();
                    }
                },
            )
            .await?;
            if tty {
                eprintln!();
            }
            println!("{report}");
            if !report.failed.is_empty() {
                bail!(
                    "{} user(s) could not be synced (their password does not decrypt with this APP_KEY): {}",
                    report.failed.len(),
                    report.failed.join(", ")
                );
            }
            Ok(())
        }
        Command::Radius(RadiusCommand::CloseStale {
            dry_run,
            default_interval,
        }) => {
            let db = Databases::connect(&config).await?;
            require_migrated(&db).await?;
            let settings = crate::radius::accounting::StaleSettings {
                default_interval_secs: default_interval,
            };
            let report = crate::radius::accounting::close_stale(
                &db.main,
                &db.radius,
                &Actor::cli(),
                settings,
                dry_run,
            )
            .await?;
            println!("{report}");
            Ok(())
        }
        Command::Radius(RadiusCommand::Retry) => {
            let state = prepare(config, false).await?;
            let report = crate::radius::resync::sync_pending_users(
                &state.db.main,
                &state.db.radius,
                &state.app_key,
                crate::radius::resync::RETRY_BATCH_SIZE,
            )
            .await?;
            println!("{report}");
            if report.stopped_by.is_some() || report.failed > 0 {
                bail!("some users are still waiting for RADIUS sync");
            }
            Ok(())
        }
        Command::Mikrotik(MikrotikCommand::SyncSessions { concurrency }) => {
            let state = prepare(config, false).await?;
            let options = crate::mikrotik::sessions::SyncOptions {
                concurrency: concurrency.into(),
            };
            let report = crate::mikrotik::sessions::sync_sessions(
                &state.db.main,
                &state.router_pool,
                options,
            )
            .await?;
            println!("{report}");
            if report.all_failed() {
                bail!("no router could be synced ({} failed)", report.failed());
            }
            if report.failed() > 0 {
                eprintln!(
                    "ispd: warning: {} of {} router(s) could not be synced and are marked offline",
                    report.failed(),
                    report.routers.len()
                );
            }
            Ok(())
        }
        Command::Ipam(IpamCommand::Cleanup) => {
            let db = Databases::connect(&config).await?;
            require_migrated(&db).await?;
            let settings = crate::ipam::service::IpamSettings::from_config(&config);
            let report =
                crate::ipam::service::cleanup_expired(&db.main, settings, &Actor::cli()).await?;
            println!(
                "Released {} expired allocation(s); {} had been released already.",
                report.released, report.already_released
            );
            Ok(())
        }
        Command::Jobs(JobsCommand::Run { name }) => {
            let db = Databases::connect(&config).await?;
            require_migrated(&db).await?;
            let run = jobs::runs::request_run(&db.main, &name, jobs::Trigger::Cli, &Actor::cli())
                .await
                .map_err(|e| match e {
                    jobs::JobsError::Db(db) => anyhow::Error::from(db),
                    other => anyhow::anyhow!("{other}"),
                })?;
            println!(
                "Queued run {} of \"{name}\"; a worker (`ispd worker` or `ispd run`) starts it.",
                run.id
            );
            Ok(())
        }
        Command::Network(NetworkCommand::HealthCheck { json }) => {
            use crate::network::health;
            let app_key = resolve_app_key(&config)?;
            let (main, radius) = health::connect(&config).await;
            let connections = health::Connections {
                main: main.as_ref().map_err(Clone::clone),
                radius: radius.as_ref().map_err(Clone::clone),
            };
            let report = health::check_everything(&config, connections, &app_key).await;
            if let Ok(main) = &main {
                if let Err(err) = health::store(main, &report).await {
                    tracing::warn!(error = %err, "cannot store the health check results");
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            if !report.healthy {
                bail!("{} of {} check(s) down", report.down(), report.checks.len());
            }
            Ok(())
        }
    }
}

fn job_context(state: &AppState) -> jobs::JobContext {
    jobs::JobContext {
        db: state.db.clone(),
        config: state.config.clone(),
        app_key: state.app_key.clone(),
        router_pool: state.router_pool.clone(),
    }
}

/// Connects, migrates when asked (or checks that no migration is pending),
/// and resolves the application key.
async fn prepare(config: Config, migrate: bool) -> anyhow::Result<AppState> {
    let app_key = resolve_app_key(&config)?;
    let db = Databases::connect(&config).await?;
    if migrate {
        db.migrate().await?;
    } else {
        require_migrated(&db).await?;
    }
    Ok(AppState::new(config, db, app_key))
}

async fn require_migrated(db: &Databases) -> anyhow::Result<()> {
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

/// `ispd key rotate`: the old key is the configured one (APP_KEY, else the
/// key file, which must exist already).
///
/// With APP_KEY set, no file is touched: the operator sets APP_KEY to the
/// new key. With the key file, the new key is written beside it
/// (`app.key.new`, 0600) *before* the commit and renamed over `app.key`
/// after it, so that at every moment the key the data needs is on disk.
/// A generated key is printed to stdout before the commit for the same
/// reason; if the rotation then fails, that key was never used.
async fn rotate_key(config: &Config, args: KeyRotateArgs) -> anyhow::Result<()> {
    let key_file = config.data_dir.join("app.key");
    let (old, key_file) = match &config.app_key {
        Some(key) => (key.clone(), None),
        None => {
            if !key_file.exists() {
                bail!(
                    "APP_KEY is not set and there is no key file {}: there is no key to rotate from",
                    key_file.display()
                );
            }
            (AppKey::load_or_create(&key_file)?, Some(key_file))
        }
    };
    let new = match (&args.new_key, &args.new_key_file, args.generate) {
        (Some(text), _, _) => {
            Some(AppKey::from_base64(text).map_err(|p| anyhow::anyhow!("--new-key {p}"))?)
        }
        (None, Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--new-key-file: reading {}", path.display()))?;
            Some(
                AppKey::from_base64(&text)
                    .map_err(|p| anyhow::anyhow!("--new-key-file {}: {p}", path.display()))?,
            )
        }
        (None, None, true) => Some(AppKey::generate()),
        (None, None, false) => None,
    };
    let db = Databases::connect(config).await?;
    require_migrated(&db).await?;

    if args.dry_run {
        // A given new key is checked (it must differ), never stored or printed.
        let new = new.unwrap_or_else(AppKey::generate);
        let report = crate::keys::rotate(&db.main, &old, &new, true).await?;
        eprintln!("{report}");
        return Ok(());
    }
    let new = new.expect("clap requires a new key without --dry-run");
    if old == new {
        bail!("{}", crate::keys::RotateError::SameKey);
    }

    let staged = match &key_file {
        Some(path) => Some(stage_key_file(path, &new)?),
        None => None,
    };
    if args.generate {
        use std::io::Write;
        println!("{}", new.to_base64());
        std::io::stdout().flush().context("printing the new key")?;
    }
    let report = match crate::keys::rotate(&db.main, &old, &new, false).await {
        Ok(report) => report,
        Err(err) => {
            if let Some(staged) = &staged {
                let _ = std::fs::remove_file(staged);
            }
            if args.generate {
                eprintln!("ispd: nothing was changed; the key printed above was not used");
            }
            return Err(err.into());
        }
    };
    eprintln!("{report}");
    match (key_file, staged) {
        (Some(path), Some(staged)) => {
            std::fs::rename(&staged, &path).with_context(|| {
                format!(
                    "the secrets are re-encrypted, but {} could not replace {}: move it there by hand before starting ispd",
                    staged.display(),
                    path.display()
                )
            })?;
            sync_parent_dir(&path);
            eprintln!(
                "The new key is now in {}. Start serve and worker again.",
                path.display()
            );
        }
        _ => eprintln!(
            "Set APP_KEY to the new key for every ispd process (serve, worker, and their .env or \
             environment files), then start serve and worker again: the old key no longer decrypts \
             anything in this database."
        ),
    }
    Ok(())
}

/// Writes the new key beside the key file as `app.key.new` (mode 0600,
/// never overwriting: one left over from an interrupted rotation may hold
/// the key the data needs).
fn stage_key_file(path: &Path, key: &AppKey) -> anyhow::Result<PathBuf> {
    let staged = path.with_extension("key.new");
    if staged.exists() {
        bail!(
            "{} exists, left by an interrupted rotation: find out which key the data uses (`ispd key rotate --dry-run` with APP_KEY set to it succeeds), then remove the file",
            staged.display()
        );
    }
    AppKey::write_key_file(&staged, key)
        .with_context(|| format!("writing the new key to {}", staged.display()))?;
    Ok(staged)
}

/// Makes a rename durable (best effort; directories cannot be opened on
/// every platform).
fn sync_parent_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
}

/// APP_KEY when set; otherwise (outside production) the key file in the
/// data directory, created on first use and never overwritten.
fn resolve_app_key(config: &Config) -> anyhow::Result<AppKey> {
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

async fn serve(
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = state.config.listen_addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (LISTEN_ADDR)"))?;
    app::serve(state, listener, shutdown).await
}

/// On first run there is no staff member: create `admin` and print its
/// password once. ADMIN_PASSWORD, when set, is used instead of a random one.
/// There is never a default password.
/// Web and worker in one process, until a signal stops both.
async fn serve_and_work(state: AppState) -> anyhow::Result<()> {
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

async fn ensure_first_admin(state: &AppState) -> anyhow::Result<()> {
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

async fn migrate(config: &Config, action: MigrateAction) -> anyhow::Result<()> {
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

/// A password from stdin, or a generated one (second value true).
fn password_from(stdin: bool) -> anyhow::Result<(Secret, bool)> {
    if !stdin {
        return Ok((Secret::new(random_password(20)), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    validate_password(&password).map_err(|e| anyhow::anyhow!("password: {e}"))?;
    Ok((Secret::new(password), false))
}
