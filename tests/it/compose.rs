//! Checks on docker-compose.yml: the services a deployment needs are there,
//! each with a health check, and they are wired together as documented.

use std::path::PathBuf;

use serde_norway::Value;

const SERVICES: [&str; 7] = [
    "app",
    "worker",
    "db",
    "radius-db",
    "redis",
    "mock-mikrotik",
    "freeradius",
];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> Value {
    let path = repo_root().join("docker-compose.yml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_norway::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose
        .get("services")
        .and_then(|services| services.get(name))
        .unwrap_or_else(|| panic!("docker-compose.yml has no service {name:?}"))
}

/// A command as its words, whether written as a list or as one string.
fn words(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| panic!("command word {item:?} is not a string"))
            })
            .collect(),
        other => panic!("command {other:?} is neither a string nor a list"),
    }
}

/// The names of the services that a service depends on, in either form.
fn dependencies(service: &Value) -> Vec<String> {
    match service.get("depends_on") {
        None => Vec::new(),
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        Some(Value::Mapping(map)) => map
            .keys()
            .filter_map(|key| key.as_str().map(str::to_owned))
            .collect(),
        Some(other) => panic!("depends_on {other:?} is neither a list nor a mapping"),
    }
}

#[test]
fn compose_file_defines_every_service_with_a_health_check() {
    let compose = compose();
    for name in SERVICES {
        let healthcheck = service(&compose, name)
            .get("healthcheck")
            .unwrap_or_else(|| panic!("service {name:?} has no healthcheck"));
        assert_ne!(
            healthcheck.get("disable").and_then(Value::as_bool),
            Some(true),
            "service {name:?} disables its healthcheck"
        );
        let test = healthcheck
            .get("test")
            .unwrap_or_else(|| panic!("service {name:?} has a healthcheck without a test"));
        assert!(
            !words(test).is_empty(),
            "service {name:?} has an empty healthcheck test"
        );
    }
}

#[test]
fn app_and_worker_run_the_same_image() {
    let compose = compose();
    let app = service(&compose, "app");
    let worker = service(&compose, "worker");
    assert!(
        app.get("build").is_some() || app.get("image").is_some(),
        "app has neither build nor image"
    );
    assert_eq!(
        app.get("build"),
        worker.get("build"),
        "app and worker build differently"
    );
    assert_eq!(
        app.get("image"),
        worker.get("image"),
        "app and worker name different images"
    );
}

#[test]
fn worker_runs_the_ispd_worker_command() {
    let compose = compose();
    let command = service(&compose, "worker")
        .get("command")
        .expect("worker has no command");
    assert_eq!(words(command), ["ispd", "worker"]);
}

#[test]
fn app_serves_http_and_depends_on_both_databases_and_redis() {
    let compose = compose();
    let app = service(&compose, "app");
    let command = app.get("command").expect("app has no command");
    assert_eq!(words(command), ["ispd", "serve"]);

    let deps = dependencies(app);
    for needed in ["db", "radius-db", "redis"] {
        assert!(
            deps.iter().any(|dep| dep == needed),
            "app does not depend on {needed:?}; it depends on {deps:?}"
        );
    }
}

#[test]
fn app_environment_names_the_documented_variables() {
    let compose = compose();
    let environment = service(&compose, "app")
        .get("environment")
        .and_then(Value::as_mapping)
        .expect("app environment is not a mapping");
    let url = |key: &str| {
        environment
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("app environment has no {key}"))
            .to_owned()
    };
    assert!(url("DATABASE_URL").starts_with("postgres://"));
    assert!(url("DATABASE_URL").contains("@db:5432/"));
    assert!(url("RADIUS_DATABASE_URL").contains("@radius-db:5432/"));
    assert!(url("REDIS_URL").starts_with("redis://redis:6379"));
    assert_eq!(url("APP_ENV"), "production");
    assert!(
        environment.contains_key("APP_KEY"),
        "app environment has no APP_KEY"
    );
}

#[test]
fn every_file_mounted_from_the_repository_exists() {
    let compose = compose();
    let root = repo_root();
    let services = compose
        .get("services")
        .and_then(Value::as_mapping)
        .expect("services is not a mapping");
    for (name, definition) in services {
        let Some(volumes) = definition.get("volumes").and_then(Value::as_sequence) else {
            continue;
        };
        for volume in volumes.iter().filter_map(Value::as_str) {
            let source = volume.split(':').next().unwrap_or_default();
            if source.starts_with("./") {
                let path = root.join(source);
                assert!(
                    path.exists(),
                    "service {name:?} mounts {source}, which does not exist"
                );
            }
        }
    }
}

#[test]
fn migrations_run_once_before_app_and_worker_start() {
    let compose = compose();
    let migrate = service(&compose, "migrate");
    assert_eq!(
        words(migrate.get("command").expect("migrate has no command")),
        ["ispd", "migrate"]
    );
    for name in ["app", "worker"] {
        let condition = service(&compose, name)
            .get("depends_on")
            .and_then(|deps| deps.get("migrate"))
            .and_then(|dep| dep.get("condition"))
            .and_then(Value::as_str);
        assert_eq!(
            condition,
            Some("service_completed_successfully"),
            "{name} waits for the migrations"
        );
    }
}

/// Every `ispd ...` command the compose file runs is one the binary
/// accepts, its required options included.
#[test]
fn every_ispd_command_in_the_compose_file_parses() {
    use clap::Parser;
    let compose = compose();
    let services = compose.get("services").and_then(Value::as_mapping).unwrap();
    let mut checked = 0;
    for (name, service) in services {
        let Some(command) = service.get("command") else {
            continue;
        };
        let words = words(command);
        if words.first().map(String::as_str) != Some("ispd") {
            continue;
        }
        if let Err(e) = ispd::cli::Cli::try_parse_from(&words) {
            panic!("service {name:?} runs {words:?}, which ispd refuses:\n{e}");
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} ispd commands found");
}
