//! Configuration: defaults, and one clear error per malformed variable.

use std::collections::HashMap;
use std::time::Duration;

use ispd::config::{AppEnv, Config, LogFormat};

fn config_from(vars: &[(&str, &str)]) -> Result<Config, ispd::config::ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|name| map.get(name).cloned())
}

#[test]
fn an_empty_environment_gives_the_embedded_defaults() {
    let config = config_from(&[]).unwrap();
    assert_eq!(config.app_env, AppEnv::Development);
    assert_eq!(config.listen_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(config.app_url, "http://127.0.0.1:8080");
    assert_eq!(config.log_format, LogFormat::Text);
    assert!(config.app_key.is_none());
    assert!(config.redis_url.is_none());
    assert!(config.uses_embedded_databases());
    assert_ne!(config.database_url, config.radius_database_url);
    assert!(config.database_url.contains("data/ispd.db"));
    assert!(config.radius_database_url.contains("data/radius.db"));
    assert_eq!(config.mikrotik_api_timeout, Duration::from_secs(30));
    assert_eq!(config.mikrotik_default_port, 8728);
    assert!(!config.is_https());
    assert_eq!(config.rate_limit_per_second, 20);
    assert_eq!(config.rate_limit_burst, 100);
    assert!(!config.trust_proxy);
}

#[test]
fn every_variable_is_read() {
    let key = ispd::crypto::AppKey::generate();
    let config = config_from(&[
        ("APP_ENV", "production"),
        ("APP_URL", "https://ispd.example.net/"),
        ("LISTEN_ADDR", "0.0.0.0:9000"),
        ("LOG_LEVEL", "ispd=debug,warn"),
        ("LOG_FORMAT", "json"),
        ("APP_KEY", &key.to_base64()),
        ("DATABASE_URL", "postgres://ispd:pw@db/ispd"),
        (
            "RADIUS_DATABASE_URL",
            "mariadb://radius:pw@radius-db/radius",
        ),
        ("REDIS_URL", "redis://redis:6379"),
        ("MIKROTIK_API_TIMEOUT", "12"),
        ("MIKROTIK_DEFAULT_PORT", "8729"),
        ("IPAM_ALLOCATION_TIMEOUT", "7"),
        ("IPAM_LOCK_TIMEOUT", "3"),
        ("RADIUS_COA_ATTEMPTS", "5"),
        ("RADIUS_COA_TIMEOUT_MS", "750"),
        ("RATE_LIMIT_PER_SECOND", "5"),
        ("RATE_LIMIT_BURST", "10"),
        ("TRUST_PROXY", "true"),
    ])
    .unwrap();
    assert_eq!(config.app_env, AppEnv::Production);
    assert_eq!(config.app_url, "https://ispd.example.net");
    assert!(config.is_https());
    assert_eq!(config.listen_addr.port(), 9000);
    assert_eq!(config.log_format, LogFormat::Json);
    assert_eq!(config.app_key, Some(key));
    assert_eq!(
        config.radius_database_url, "mysql://radius:pw@radius-db/radius",
        "mariadb:// URLs go through the MySQL driver"
    );
    assert_eq!(config.redis_url.as_deref(), Some("redis://redis:6379"));
    assert_eq!(config.mikrotik_api_timeout, Duration::from_secs(12));
    assert_eq!(config.mikrotik_default_port, 8729);
    assert_eq!(config.ipam_allocation_timeout, Duration::from_secs(7));
    assert_eq!(config.ipam_lock_timeout, Duration::from_secs(3));
    assert_eq!(config.radius_coa_attempts, 5);
    assert_eq!(config.radius_coa_timeout, Duration::from_millis(750));
    assert_eq!(config.rate_limit_per_second, 5);
    assert_eq!(config.rate_limit_burst, 10);
    assert!(config.trust_proxy);
    assert!(!config.uses_embedded_databases());
}

#[test]
fn each_malformed_variable_gives_an_error_that_names_it() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "APP_ENV",
            "staging",
            "not one of development, test, production",
        ),
        (
            "APP_URL",
            "ispd.example.net",
            "not an http:// or https:// URL",
        ),
        ("LISTEN_ADDR", "localhost", "not an address and port"),
        ("LISTEN_ADDR", "127.0.0.1:99999", "not an address and port"),
        ("LOG_LEVEL", "loud[", "not a log filter"),
        ("LOG_FORMAT", "xml", "not one of text, json"),
        ("APP_KEY", "not base64!", "not valid base64"),
        ("APP_KEY", "c2hvcnQ=", "must decode to 32 bytes"),
        (
            "DATABASE_URL",
            "oracle://db",
            "not a sqlite:, postgres:// or mysql:// URL",
        ),
        ("RADIUS_DATABASE_URL", "/var/lib/radius.db", "not a sqlite:"),
        (
            "REDIS_URL",
            "localhost:6379",
            "not a redis:// or rediss:// URL",
        ),
        (
            "MIKROTIK_API_TIMEOUT",
            "soon",
            "not a whole number of seconds",
        ),
        ("MIKROTIK_API_TIMEOUT", "0", "between 1 and 3600"),
        ("MIKROTIK_DEFAULT_PORT", "70000", "not a TCP port"),
        ("MIKROTIK_DEFAULT_PORT", "0", "not a TCP port"),
        (
            "IPAM_ALLOCATION_TIMEOUT",
            "-5",
            "not a whole number of seconds",
        ),
        ("IPAM_LOCK_TIMEOUT", "1.5", "not a whole number of seconds"),
        (
            "RADIUS_COA_ATTEMPTS",
            "0",
            "not a whole number between 1 and 10",
        ),
        (
            "RADIUS_COA_TIMEOUT_MS",
            "10",
            "not a whole number between 50 and 60000",
        ),
        (
            "RATE_LIMIT_PER_SECOND",
            "fast",
            "not a whole number between 0 and 100000",
        ),
        (
            "RATE_LIMIT_PER_SECOND",
            "-1",
            "not a whole number between 0 and 100000",
        ),
        (
            "RATE_LIMIT_BURST",
            "0",
            "not a whole number between 1 and 100000",
        ),
        (
            "RATE_LIMIT_BURST",
            "100001",
            "not a whole number between 1 and 100000",
        ),
        ("TRUST_PROXY", "maybe", "not true or false"),
    ];
    for (var, value, expected) in cases {
        let err = config_from(&[(var, value)]).expect_err(&format!("{var}={value} must fail"));
        assert_eq!(err.var, *var, "{var}={value} blamed {}", err.var);
        let line = err.to_string();
        assert!(
            line.starts_with(&format!("{var}: ")) && line.contains(expected),
            "{var}={value}: got \"{line}\", expected it to mention \"{expected}\""
        );
        assert!(!line.contains('\n'), "one line: {line}");
    }
}

#[test]
fn production_requires_an_app_key() {
    let err = config_from(&[("APP_ENV", "production")]).unwrap_err();
    assert_eq!(err.var, "APP_KEY");
    assert!(err.to_string().contains("ispd key generate"));
}

#[test]
fn the_two_databases_must_differ() {
    let err = config_from(&[
        ("DATABASE_URL", "postgres://db/ispd"),
        ("RADIUS_DATABASE_URL", "postgres://db/ispd"),
    ])
    .unwrap_err();
    assert_eq!(err.var, "RADIUS_DATABASE_URL");
}

#[test]
fn errors_never_echo_secrets() {
    let err = config_from(&[("APP_KEY", "c3VwZXItc2VjcmV0LWJ1dC1zaG9ydA==")]).unwrap_err();
    assert!(!err.to_string().contains("c3VwZXIt"));
    let err = config_from(&[("DATABASE_URL", "oracle://scott:tiger@db/x")]).unwrap_err();
    assert!(!err.to_string().contains("tiger"), "{err}");
    let err = config_from(&[("REDIS_URL", "http://:hunter2@redis")]).unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

/// docs/DEPLOYMENT.md's table of settings names every variable of
/// .env.example, so that an operator reading it misses none.
#[test]
fn the_deployment_guide_lists_every_setting() {
    let root = env!("CARGO_MANIFEST_DIR");
    let example = std::fs::read_to_string(format!("{root}/.env.example")).unwrap();
    let guide = std::fs::read_to_string(format!("{root}/docs/DEPLOYMENT.md")).unwrap();
    let missing: Vec<&str> = example
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim()))
        .filter(|name| !guide.contains(&format!("| `{name}` |")))
        .collect();
    assert!(missing.is_empty(), "not in docs/DEPLOYMENT.md: {missing:?}");
}
