//! The `ispd` binary: help, configuration errors, and the first run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::helpers::{ispd_command, ispd_exit, ispd_ok, Backend, TestDb};

const SUBCOMMANDS: &[&[&str]] = &[
    &["serve"],
    &["worker"],
    &["run"],
    &["migrate"],
    &["migrate", "status"],
    &["migrate", "down"],
    &["admin", "create"],
    &["admin", "reset-password"],
    &["token", "create"],
    &["token", "revoke"],
    &["key", "generate"],
    &["key", "rotate"],
    &["seed"],
    &["demo"],
    &["radius", "sync-users"],
    &["radius", "retry"],
    &["radius", "enforce"],
    &["mikrotik", "sync-sessions"],
    &["ipam", "cleanup"],
    &["network", "health-check"],
];

#[test]
fn help_describes_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = ispd_command(dir.path()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for top in [
        "serve", "worker", "run", "migrate", "admin", "token", "key", "radius", "mikrotik", "ipam",
        "network",
    ] {
        assert!(text.contains(top), "--help lists {top}:\n{text}");
    }
    for args in SUBCOMMANDS {
        let out = ispd_command(dir.path())
            .args(*args)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "ispd {args:?} --help failed");
        assert!(
            text.contains("Usage: ispd"),
            "ispd {args:?} --help:\n{text}"
        );
        assert!(
            text.lines().next().is_some_and(|l| !l.is_empty()),
            "{args:?} has a summary"
        );
    }
}

#[test]
fn key_generate_prints_a_fresh_32_byte_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = (0..2)
        .map(|_| {
            let out = ispd_command(dir.path())
                .args(["key", "generate"])
                .output()
                .unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        })
        .collect();
    assert_ne!(keys[0], keys[1]);
    for key in &keys {
        assert!(ispd::crypto::AppKey::from_base64(key).is_ok(), "{key}");
    }
}

#[test]
fn a_malformed_variable_exits_with_one_clear_line_and_no_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [("LISTEN_ADDR", "nowhere"), ("RUST_BACKTRACE", "1")];
    let (code, stderr) = ispd_exit(dir.path(), &["migrate"], &vars);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("LISTEN_ADDR"), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_env_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "LISTEN_ADDR='unterminated\n").unwrap();
    let out = ispd_command(dir.path()).arg("migrate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(".env"), "{stderr}");
}

#[test]
fn serve_refuses_to_start_on_unmigrated_databases() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [("LISTEN_ADDR", "127.0.0.1:0")];
    let (code, stderr) = ispd_exit(dir.path(), &["serve"], &vars);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("ispd migrate"), "{stderr}");
}

/// A running `ispd run`, killed on drop.
struct Running {
    child: Child,
    addr: String,
    stdout: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ispd run` in `dir` and waits until it listens.
fn start_run(dir: &std::path::Path, extra_env: &[(&str, &str)]) -> Running {
    start_ispd(dir, &["run"], extra_env)
}

/// Starts `ispd <args>` (run or demo) in `dir` and waits until it listens.
fn start_ispd(dir: &std::path::Path, args: &[&str], extra_env: &[(&str, &str)]) -> Running {
    let mut cmd = ispd_command(dir);
    cmd.args(args)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn ispd run");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();

    let (tx, rx) = mpsc::channel::<(bool, String)>();
    let tx_out = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx_out.send((false, line));
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send((true, line));
        }
    });

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = String::new();
    let mut err = String::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(remaining) {
            Ok((false, line)) => {
                out.push_str(&line);
                out.push('\n');
            }
            Ok((true, line)) => {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap().to_string();
                    // Give the stdout reader a moment: the banner is printed
                    // before the server starts listening.
                    std::thread::sleep(Duration::from_millis(200));
                    while let Ok((is_err, line)) = rx.try_recv() {
                        if !is_err {
                            out.push_str(&line);
                            out.push('\n');
                        }
                    }
                    return Running {
                        child,
                        addr,
                        stdout: out,
                    };
                }
                err.push_str(&line);
                err.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ispd run did not start listening\nstdout:\n{out}\nstderr:\n{err}");
            }
        }
    }
}

/// A bare HTTP/1.1 request, with a bearer token when given; the status
/// and the body.
fn http_request(addr: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\nContent-Length: 0\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn http_with_token(addr: &str, method: &str, path: &str, token: &str) -> (u16, String) {
    http_request(addr, method, path, Some(token))
}

#[test]
fn demo_serves_the_demo_data_with_a_working_mock_router_and_live_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let demo = start_ispd(dir.path(), &["demo", "--sessions", "7"], &[]);
    assert!(
        demo.stdout
            .contains("Mock MikroTik router \"demo-router\" on 127.0.0.1:"),
        "{}",
        demo.stdout
    );
    assert!(demo.stdout.contains("demo records"), "{}", demo.stdout);
    let args = ["token", "create", "--name", "demo", "--role", "operator"];
    let token = ispd_ok(dir.path(), &args, &[]).trim().to_string();

    let (status, body) = http_with_token(
        &demo.addr,
        "GET",
        "/api/v1/mikrotik/routers?q=demo-router",
        &token,
    );
    assert_eq!(status, 200, "{body}");
    let routers: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = routers["data"][0]["id"].as_i64().expect("the demo router");
    let (status, body) = http_with_token(
        &demo.addr,
        "POST",
        &format!("/api/v1/mikrotik/routers/{id}/test"),
        &token,
    );
    assert_eq!(status, 200, "the router test works: {body}");
    let (status, body) = http_with_token(&demo.addr, "GET", "/api/v1/mikrotik/sessions", &token);
    assert_eq!(status, 200, "{body}");
    let sessions: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sessions["total"], 7, "{sessions}");
    assert_eq!(sessions["routers"][0]["state"], "ok", "{sessions}");
}

/// A bare HTTP/1.1 GET; returns the status code and the body.
fn http_get(addr: &str, path: &str) -> (u16, String) {
    http_request(addr, "GET", path, None)
}

#[test]
fn run_on_an_empty_data_directory_comes_up_and_prints_the_admin_password_once() {
    let dir = tempfile::tempdir().unwrap();

    let first = start_run(dir.path(), &[]);
    let (status, body) = http_get(&first.addr, "/healthz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ok\""), "{body}");
    let (status, body) = http_get(&first.addr, "/readyz");
    assert_eq!(status, 200, "{body}");
    let (status, _) = http_get(&first.addr, "/");
    assert_eq!(status, 303, "pages ask for a sign-in");
    let (status, body) = http_get(&first.addr, "/login");
    assert_eq!(status, 200);
    assert!(body.contains("Sign in to ispd"), "{body}");

    let password_line = first
        .stdout
        .lines()
        .find(|l| l.contains("Password:"))
        .unwrap_or_else(|| panic!("no password printed:\n{}", first.stdout));
    let password = password_line.split("Password:").nth(1).unwrap().trim();
    assert!(password.len() >= 16, "a strong password: {password_line}");
    assert!(first.stdout.contains("\"admin\""));
    drop(first);

    let key_path = dir.path().join("data").join("app.key");
    let key_before = std::fs::read_to_string(&key_path).expect("a key file in the data directory");
    assert!(dir.path().join("data").join("ispd.db").exists());
    assert!(dir.path().join("data").join("radius.db").exists());

    let second = start_run(dir.path(), &[]);
    assert!(
        !second.stdout.contains("Password:"),
        "the password is printed only on the first run:\n{}",
        second.stdout
    );
    assert_eq!(http_get(&second.addr, "/healthz").0, 200);
    drop(second);
    assert_eq!(
        std::fs::read_to_string(&key_path).unwrap(),
        key_before,
        "the key file is never overwritten"
    );
}

#[test]
fn run_uses_admin_password_when_set_and_never_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_run(dir.path(), &[("ADMIN_PASSWORD", "correct-horse-battery")]);
    assert!(
        running.stdout.contains("ADMIN_PASSWORD"),
        "{}",
        running.stdout
    );
    assert!(!running.stdout.contains("correct-horse-battery"));
}

#[test]
fn run_refuses_a_short_admin_password() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [("LISTEN_ADDR", "127.0.0.1:0"), ("ADMIN_PASSWORD", "short")];
    let (code, stderr) = ispd_exit(dir.path(), &["run"], &vars);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("ADMIN_PASSWORD: must be at least 12 characters"),
        "{stderr}"
    );
}

#[test]
fn tokens_and_staff_are_managed_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let ok = |args: &[&str]| {
        let out = ispd_command(dir.path()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ispd {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(&["migrate"]);
    let created = ok(&[
        "admin",
        "create",
        "--username",
        "noc-operator",
        "--role",
        "operator",
    ]);
    assert!(created.contains("Password:"), "{created}");
    let token = ok(&[
        "token",
        "create",
        "--name",
        "billing",
        "--role",
        "viewer",
        "--expires",
        "90d",
    ]);
    let token = token.trim();
    assert!(token.starts_with("ispd_") && token.len() > 40, "{token}");
    let revoked = ok(&["token", "revoke", "1"]);
    assert!(revoked.contains("revoked"), "{revoked}");
    let reset = ok(&["admin", "reset-password", "--username", "noc-operator"]);
    assert!(reset.contains("New password:"), "{reset}");

    let fail = |args: &[&str], expected: &str| {
        let out = ispd_command(dir.path()).args(args).output().unwrap();
        assert!(!out.status.success(), "ispd {args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "ispd {args:?}: {stderr}");
    };
    fail(
        &["admin", "create", "--username", "noc-operator"],
        "already exists",
    );
    fail(&["admin", "create", "--username", "x y"], "--username");
    fail(
        &["token", "create", "--name", "t", "--role", "root"],
        "--role",
    );
    fail(
        &[
            "token",
            "create",
            "--name",
            "t",
            "--role",
            "viewer",
            "--expires",
            "soon",
        ],
        "--expires",
    );
    fail(&["token", "revoke", "99"], "no API token with id 99");
    fail(
        &["admin", "reset-password", "--username", "ghost"],
        "no staff member",
    );
}

#[test]
fn ipam_cleanup_reports_what_it_released() {
    let dir = tempfile::tempdir().unwrap();
    ispd_ok(dir.path(), &["migrate"], &[]);
    let released = ispd_ok(dir.path(), &["ipam", "cleanup"], &[]);
    assert_eq!(
        released.trim(),
        "Released 0 expired allocation(s); 0 had been released already."
    );
}

#[test]
fn radius_enforce_carries_states_once_and_then_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    ispd_ok(dir.path(), &["seed"], &[]);
    let first = ispd_ok(dir.path(), &["radius", "enforce"], &[]);
    assert!(
        first.contains("subscriber(s) enforced, 0 failed"),
        "{first}"
    );
    let again = ispd_ok(dir.path(), &["radius", "enforce"], &[]);
    assert!(
        again.starts_with("0 subscriber(s) enforced, 0 failed; session changes: 0 sent"),
        "{again}"
    );
}

#[test]
fn radius_sync_users_reports_drift_then_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    ispd_ok(dir.path(), &["seed"], &[]);
    let run = |args: &[&str]| ispd_ok(dir.path(), args, &[]);
    let drift = run(&["radius", "sync-users", "--dry-run"]);
    assert!(drift.contains("users: 3 would be created"), "{drift}");
    let synced = run(&["radius", "sync-users"]);
    assert!(synced.contains("users: 3 created"), "{synced}");
    let again = run(&["radius", "sync-users", "--dry-run"]);
    assert!(again.contains("3 unchanged"), "{again}");
}

#[test]
fn seed_loads_demo_data_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = ispd_command(dir.path()).arg("seed").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = String::from_utf8_lossy(&out.stdout);
    assert!(
        first.contains("pool Residential CGNAT") && first.contains("router demo-router"),
        "{first}"
    );
    let out = ispd_command(dir.path()).arg("seed").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing added"));

    // The demo users went through the users service: the static one holds
    // an address from its subnet, and all wait for the RADIUS sync.
    let out = ispd_command(dir.path())
        .args(["radius", "sync-users", "--dry-run"])
        .output()
        .unwrap();
    let drift = String::from_utf8_lossy(&out.stdout);
    assert!(drift.contains("users: 3 would be created"), "{drift}");
    let url = format!(
        "sqlite://{}?mode=ro",
        dir.path().join("data/ispd.db").display()
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let users = runtime.block_on(async {
        let conn = sea_orm::Database::connect(&url).await.unwrap();
        <ispd::users::entities::network_user::Entity as sea_orm::EntityTrait>::find()
            .all(&conn)
            .await
            .unwrap()
    });
    let acme = users.iter().find(|u| u.username == "acme-corp").unwrap();
    assert_eq!(acme.static_ip.as_deref(), Some("198.51.100.2"));
    assert!(users.iter().all(|u| u.radius_sync_pending), "{users:?}");
}

async fn migrate_applies_both_migrators_on_the_configured_databases(backend: Backend) {
    let (Some(main), Some(radius)) = (TestDb::fresh(backend).await, TestDb::fresh(backend).await)
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("DATABASE_URL", main.url.as_str()),
        ("RADIUS_DATABASE_URL", radius.url.as_str()),
    ];
    let run = |args: &[&str]| ispd_ok(dir.path(), args, &vars);
    run(&["migrate"]);
    let status = run(&["migrate", "status"]);
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("main") && l.contains("Applied")),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("radius") && l.contains("Applied")),
        "{status}"
    );
    assert!(!status.contains("Pending"), "{status}");
    run(&["migrate", "down"]);
    assert!(run(&["migrate", "status"]).contains("Pending"));
    run(&["migrate"]);
}
crate::on_every_backend!(migrate_applies_both_migrators_on_the_configured_databases);
