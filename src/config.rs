//! Typed settings, read from the environment (and `.env` when present).
//!
//! Every variable is documented once, in `.env.example`. A bad value is
//! reported as one line that names the variable and what is wrong with it;
//! secrets are never echoed back.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::crypto::AppKey;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl ConfigError {
    fn new(var: &'static str, problem: impl Into<String>) -> Self {
        Self {
            var,
            problem: problem.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Test,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub app_env: AppEnv,
    pub app_url: String,
    pub listen_addr: SocketAddr,
    pub log_level: String,
    pub log_format: LogFormat,
    /// None means "use the key file in the data directory" (not in production).
    pub app_key: Option<AppKey>,
    pub data_dir: PathBuf,
    pub static_dir: PathBuf,
    pub database_url: String,
    pub radius_database_url: String,
    pub redis_url: Option<String>,
    pub mikrotik_api_timeout: Duration,
    pub mikrotik_default_port: u16,
    pub ipam_allocation_timeout: Duration,
    pub ipam_lock_timeout: Duration,
    /// Sends of one Disconnect/CoA request before giving up (RADIUS_COA_ATTEMPTS).
    pub radius_coa_attempts: u32,
    /// The wait for a NAS's answer after each send (RADIUS_COA_TIMEOUT_MS).
    pub radius_coa_timeout: Duration,
    pub admin_password: Option<crate::crypto::Secret>,
    /// Requests a second allowed per client on /api/v1 and /metrics
    /// (a client is an API token, else an address); 0 turns limiting off.
    pub rate_limit_per_second: u32,
    /// Requests a client may make at once before the per-second rate applies.
    pub rate_limit_burst: u32,
    /// Sign-in attempts a minute per client address (the bucket holds as
    /// many); 0 turns this limit off (the per-username back-off stays).
    pub login_rate_limit_per_minute: u32,
    /// Whether a reverse proxy in front sets X-Forwarded-For: then the
    /// client address is its last entry, not the peer's.
    pub trust_proxy: bool,
    /// Job schedules, retries, timeouts and history (JOBS_*; see crate::jobs).
    pub jobs: crate::jobs::JobsSettings,
}

const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8080";
const DEFAULT_DATA_DIR: &str = "./data";

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process
    /// environment. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let app_env = match get("APP_ENV").as_deref() {
            None | Some("development") => AppEnv::Development,
            Some("test") => AppEnv::Test,
            Some("production") => AppEnv::Production,
            Some(other) => {
                return Err(ConfigError::new(
                    "APP_ENV",
                    format!("\"{other}\" is not one of development, test, production"),
                ))
            }
        };

        let listen_addr_text = get("LISTEN_ADDR").unwrap_or_else(|| DEFAULT_LISTEN_ADDR.into());
        let listen_addr: SocketAddr = listen_addr_text.parse().map_err(|_| {
            ConfigError::new(
                "LISTEN_ADDR",
                format!("\"{listen_addr_text}\" is not an address and port such as 127.0.0.1:8080"),
            )
        })?;

        let app_url = match get("APP_URL") {
            Some(url) => parse_app_url(&url)?,
            None => format!("http://{listen_addr}"),
        };

        let log_level = get("LOG_LEVEL").unwrap_or_else(|| "info".into());
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(ConfigError::new(
                "LOG_LEVEL",
                format!(
                    "\"{log_level}\" is not a log filter (use error, warn, info, debug, trace, or directives such as ispd=debug)"
                ),
            ));
        }

        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("\"{other}\" is not one of text, json"),
                ))
            }
        };

        let app_key = match get("APP_KEY") {
            Some(text) => Some(
                AppKey::from_base64(&text)
                    .map_err(|problem| ConfigError::new("APP_KEY", problem))?,
            ),
            None if app_env == AppEnv::Production => {
                return Err(ConfigError::new(
                    "APP_KEY",
                    "is required in production (generate one with `ispd key generate`)",
                ))
            }
            None => None,
        };

        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.into()));
        let database_url = parse_database_url(&get, "DATABASE_URL", &data_dir, "ispd.db")?;
        let radius_database_url =
            parse_database_url(&get, "RADIUS_DATABASE_URL", &data_dir, "radius.db")?;
        if radius_database_url == database_url {
            return Err(ConfigError::new(
                "RADIUS_DATABASE_URL",
                "must name a different database from DATABASE_URL (FreeRADIUS reads its tables over a connection of its own)",
            ));
        }

        let redis_url = match get("REDIS_URL") {
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => Some(url),
            Some(url) => {
                return Err(ConfigError::new(
                    "REDIS_URL",
                    format!(
                        "\"{}\" is not a redis:// or rediss:// URL",
                        redact_url(&url)
                    ),
                ))
            }
            None => None,
        };

        Ok(Self {
            app_env,
            app_url,
            listen_addr,
            log_level,
            log_format,
            app_key,
            data_dir,
            static_dir: PathBuf::from(get("STATIC_DIR").unwrap_or_else(|| "./static".into())),
            database_url,
            radius_database_url,
            redis_url,
            mikrotik_api_timeout: seconds(&get, "MIKROTIK_API_TIMEOUT", 30)?,
            mikrotik_default_port: port(&get, "MIKROTIK_DEFAULT_PORT", 8728)?,
            ipam_allocation_timeout: seconds(&get, "IPAM_ALLOCATION_TIMEOUT", 10)?,
            ipam_lock_timeout: seconds(&get, "IPAM_LOCK_TIMEOUT", 5)?,
            radius_coa_attempts: whole_number(&get, "RADIUS_COA_ATTEMPTS", 3, 1..=10)?,
            radius_coa_timeout: Duration::from_millis(u64::from(whole_number(
                &get,
                "RADIUS_COA_TIMEOUT_MS",
                3000,
                50..=60_000,
            )?)),
            admin_password: get("ADMIN_PASSWORD").map(crate::crypto::Secret::new),
            rate_limit_per_second: whole_number(&get, "RATE_LIMIT_PER_SECOND", 20, 0..=100_000)?,
            rate_limit_burst: whole_number(&get, "RATE_LIMIT_BURST", 100, 1..=100_000)?,
            login_rate_limit_per_minute: whole_number(
                &get,
                "LOGIN_RATE_LIMIT_PER_MINUTE",
                30,
                0..=10_000,
            )?,
            trust_proxy: boolean(&get, "TRUST_PROXY", false)?,
            jobs: crate::jobs::JobsSettings::from_lookup(get)?,
        })
    }

    /// Cookies get the Secure flag when the public URL is https.
    pub fn is_https(&self) -> bool {
        self.app_url.starts_with("https://")
    }

    /// What is unsafe about these settings for the environment they are
    /// for; `serve` logs each loudly at start-up.
    pub fn security_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.app_env == AppEnv::Production && !self.is_https() {
            warnings.push(format!(
                "APP_ENV=production with APP_URL={}: session cookies are not marked Secure \
                 and no HSTS header is sent, so sign-ins and sessions can travel in clear. \
                 Serve ispd behind a TLS-terminating proxy and set APP_URL to its https:// \
                 address (docs/DEPLOYMENT.md, Security).",
                self.app_url
            ));
        }
        warnings
    }

    /// True when both databases are the SQLite defaults: the one-command,
    /// embedded setup.
    pub fn uses_embedded_databases(&self) -> bool {
        self.database_url.starts_with("sqlite:") && self.radius_database_url.starts_with("sqlite:")
    }
}

fn parse_app_url(url: &str) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => {
            Ok(url.trim_end_matches('/').to_string())
        }
        _ => Err(ConfigError::new(
            "APP_URL",
            format!("\"{url}\" is not an http:// or https:// URL such as https://ispd.example.net"),
        )),
    }
}

fn parse_database_url(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    data_dir: &std::path::Path,
    default_file: &str,
) -> Result<String, ConfigError> {
    match get(var) {
        Some(url) => {
            let known = [
                "sqlite:",
                "postgres://",
                "postgresql://",
                "mysql://",
                "mariadb://",
            ];
            if known.iter().any(|scheme| url.starts_with(scheme)) {
                // sqlx speaks MariaDB through its MySQL driver.
                Ok(match url.strip_prefix("mariadb://") {
                    Some(rest) => format!("mysql://{rest}"),
                    None => url,
                })
            } else {
                Err(ConfigError::new(
                    var,
                    format!(
                        "\"{}\" is not a sqlite:, postgres:// or mysql:// URL",
                        redact_url(&url)
                    ),
                ))
            }
        }
        None => Ok(format!(
            "sqlite://{}?mode=rwc",
            data_dir.join(default_file).display()
        )),
    }
}

fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
) -> Result<Duration, ConfigError> {
    match get(var) {
        None => Ok(Duration::from_secs(default)),
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) if (1..=3600).contains(&n) => Ok(Duration::from_secs(n)),
            _ => Err(ConfigError::new(
                var,
                format!("\"{text}\" is not a whole number of seconds between 1 and 3600"),
            )),
        },
    }
}

fn port(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u16,
) -> Result<u16, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(text) => match text.trim().parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ConfigError::new(
                var,
                format!("\"{text}\" is not a TCP port between 1 and 65535"),
            )),
        },
    }
}

fn whole_number(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(text) => match text.trim().parse::<u32>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ConfigError::new(
                var,
                format!(
                    "\"{text}\" is not a whole number between {} and {}",
                    range.start(),
                    range.end()
                ),
            )),
        },
    }
}

fn boolean(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(var).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(_) => Err(ConfigError::new(
            var,
            format!(
                "\"{}\" is not true or false",
                get(var).unwrap_or_default().trim()
            ),
        )),
    }
}

/// Hides the password in a URL before it goes into an error message.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{path}")
            } else {
                format!("{scheme}://{user}@{host}{path}")
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://ispd:s3cret@db:5432/ispd"),
            "postgres://ispd:***@db:5432/ispd"
        );
        assert_eq!(redact_url("redis://redis:6379"), "redis://redis:6379");
        assert_eq!(redact_url("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }
}
