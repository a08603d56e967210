//! `ispd network health-check`: routers (login and identity), both
//! databases and Redis; JSON and table output, exit codes, the stored
//! results and the dashboard that shows them.

use ispd::crypto::AppKey;
use ispd::mikrotik::entities::mikrotik_router;
use ispd::mikrotik::routeros::MockRouter;
use ispd::network::health;
use ispd::staff::Role;
use sea_orm::EntityTrait;
use serde_json::Value;

use crate::helpers::{ispd_command, Backend, TestApp, TestDb};
use crate::mikrotik_sessions::{add_router, dead_address};

const USER: &str = "api";
const PASSWORD: &str = "router-pass=1";

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

async fn health_check(
    main: &TestDb,
    radius: &TestDb,
    key: &AppKey,
    extra: &[(&str, &str)],
    json: bool,
) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = ispd_command(dir.path());
    cmd.args(["network", "health-check"])
        .env("DATABASE_URL", &main.url)
        .env("RADIUS_DATABASE_URL", &radius.url)
        .env("APP_KEY", key.to_base64())
        .env("MIKROTIK_API_TIMEOUT", "3");
    if json {
        cmd.arg("--json");
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn find<'a>(report: &'a Value, kind: &str, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind && c["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}: {report}"))
}

async fn health_check_reports_json_and_exit_codes(backend: Backend) {
    let Some((main, radius)) = TestDb::migrated_pair(backend).await else {
        return;
    };
    let key = AppKey::generate();
    let mock = MockRouter::start(USER, PASSWORD).await.unwrap();
    let router = add_router(&main.conn, &key, "core", mock.addr(), PASSWORD).await;

    let ok = health_check(&main, &radius, &key, &[], true).await;
    assert_eq!(ok.code, Some(0), "{}{}", ok.stdout, ok.stderr);
    let report = ok.json();
    assert_eq!(report["healthy"], true);
    assert_eq!(report["checks"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(find(&report, "database", "main")["status"], "up");
    assert_eq!(find(&report, "radius_database", "radius")["status"], "up");
    let core = find(&report, "router", "core");
    assert_eq!(core["status"], "up");
    assert_eq!(core["target"], mock.addr().to_string());
    assert_eq!(
        core["detail"],
        "identity MikroTik, RouterOS 7.16.2 (stable)"
    );
    assert!(core["latency_ms"].is_u64());
    let row = mikrotik_router::Entity::find_by_id(router.id)
        .one(&main.conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, "online");
    assert_eq!(row.identity.as_deref(), Some("MikroTik"));
    assert_eq!(row.version.as_deref(), Some("7.16.2 (stable)"));
    assert_eq!(mock.connections(), 0, "the check logs out");

    // A dead router and a Redis that does not answer: exit 1, table output.
    add_router(&main.conn, &key, "dead", dead_address().await, PASSWORD).await;
    let redis = [("REDIS_URL", "redis://127.0.0.1:1")];
    let down = health_check(&main, &radius, &key, &redis, false).await;
    assert_eq!(down.code, Some(1), "{}{}", down.stdout, down.stderr);
    let header = down.stdout.lines().next().unwrap();
    for column in ["CHECK", "NAME", "TARGET", "STATUS", "LATENCY", "DETAIL"] {
        assert!(header.contains(column), "{header}");
    }
    let dead = down.stdout.lines().find(|l| l.contains("dead")).unwrap();
    assert!(
        dead.contains(" down ") && dead.contains("unreachable"),
        "{dead}"
    );
    assert!(down
        .stdout
        .lines()
        .any(|l| l.starts_with("redis") && l.contains(" down ")));
    assert!(
        down.stdout.contains("2 of 5 check(s) down."),
        "{}",
        down.stdout
    );
    assert!(
        down.stderr.contains("2 of 5 check(s) down"),
        "{}",
        down.stderr
    );

    // The results are stored for the dashboard, replacing the last ones.
    let stored = health::latest(&main.conn).await.unwrap().unwrap();
    assert!(!stored.healthy);
    assert_eq!(stored.checks.len(), 5);
    assert_eq!(stored.down(), 2);

    let json = health_check(&main, &radius, &key, &[], true).await;
    assert_eq!(json.code, Some(1));
    assert_eq!(json.json()["healthy"], false);
    assert_eq!(find(&json.json(), "router", "dead")["status"], "down");
}
crate::on_every_backend!(health_check_reports_json_and_exit_codes);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_is_checked_when_configured() {
    let Ok(redis_url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!("skipped: TEST_REDIS_URL is not set");
        return;
    };
    let (Some(main), Some(radius)) = (
        TestDb::fresh(Backend::Sqlite).await,
        TestDb::fresh(Backend::Sqlite).await,
    ) else {
        return;
    };
    ispd::db::Databases {
        main: main.conn.clone(),
        radius: radius.conn.clone(),
    }
    .migrate()
    .await
    .unwrap();
    let key = AppKey::generate();
    let outcome = health_check(&main, &radius, &key, &[("REDIS_URL", &redis_url)], true).await;
    assert_eq!(
        outcome.code,
        Some(0),
        "{}{}",
        outcome.stdout,
        outcome.stderr
    );
    assert_eq!(find(&outcome.json(), "redis", "redis")["status"], "up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_main_database_that_does_not_answer_is_reported_down() {
    let Some(radius) = TestDb::fresh(Backend::Sqlite).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = ispd_command(dir.path());
    cmd.args(["network", "health-check", "--json"])
        .env("DATABASE_URL", "postgres://ispd:secret@127.0.0.1:1/ispd")
        .env("RADIUS_DATABASE_URL", &radius.url)
        .env("APP_KEY", AppKey::generate().to_base64());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let main = find(&report, "database", "main");
    assert_eq!(main["status"], "down");
    assert!(
        !stdout.contains("secret"),
        "no password in the output: {stdout}"
    );
    assert_eq!(find(&report, "radius_database", "radius")["status"], "up");
}

async fn the_dashboard_shows_the_last_health_check(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut browser = app.signed_in("watcher", Role::Viewer).await;
    let before = browser.get("/").await.text();
    assert!(before.contains("No health check has run yet"), "{before}");

    add_router(
        app.db(),
        &app.state.app_key,
        "dead",
        dead_address().await,
        PASSWORD,
    )
    .await;
    let report = health::check_everything(
        &app.state.config,
        (&app.state.db).into(),
        &app.state.app_key,
    )
    .await;
    health::store(app.db(), &report).await.unwrap();
    let html = browser.get("/").await.text();
    assert!(html.contains("1 of 3 down."), "{html}");
    assert!(html.contains("data-check=\"router:dead\" data-status=\"down\""));
    assert!(html.contains("data-check=\"database:main\" data-status=\"up\""));
}
crate::on_every_backend!(the_dashboard_shows_the_last_health_check);
