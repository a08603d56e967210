//! The `ispd` command line: one binary for the web server, the worker, and
//! every administrative task.

mod key;
mod startup;

use key::rotate_key;
use startup::{
    ensure_first_admin, job_context, migrate, prepare, require_migrated, resolve_app_key, serve,
    serve_and_work,
};

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{ArgGroup, Args, Parser, Subcommand};

use crate::app;
use crate::audit::Actor;
use crate::config::Config;
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
    /// Carry subscriber states that moved on (an expiry, an edit) to RADIUS
    /// and the live sessions, and send and confirm the session changes that
    /// are due (what the enforcement job does every minute).
    Enforce,
    /// Count usage from the accounting updates and move subscribers into
    /// or out of their quota tiers (what the quota-metering job does every
    /// 15 seconds).
    Meter,
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
        Command::Radius(RadiusCommand::Meter) => {
            let state = prepare(config, false).await?;
            let reach = crate::enforcement::Reach::from_app(&state);
            let report = crate::quotas::metering::meter(&reach, &Actor::cli()).await?;
            println!("{report}");
            if report.not_enforced > 0 {
                bail!(
                    "{} subscriber(s) changed quota tier but could not be enforced yet",
                    report.not_enforced
                );
            }
            Ok(())
        }
        Command::Radius(RadiusCommand::Enforce) => {
            let state = prepare(config, false).await?;
            let reach = crate::enforcement::Reach::from_app(&state);
            let report = crate::enforcement::service::run_pass(&reach, &Actor::cli()).await?;
            println!("{report}");
            if report.failed > 0 {
                bail!("{} subscriber(s) could not be enforced", report.failed);
            }
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
