//! The RouterOS API client against the mock router, over real sockets:
//! login, every command ispd uses, tags, TLS pinning, each failure as its
//! typed error, the `mock-routeros` subcommand, and interoperability with
//! the Python library librouteros.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ispd::mikrotik::routeros::client::fetch_fingerprint;
use ispd::mikrotik::routeros::mock::MockOptions;
use ispd::mikrotik::routeros::{Client, ConnectOptions, Error, Fault, Fingerprint, MockRouter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{ispd_command, router_tls_identity};

const USER: &str = "admin";
const PASSWORD: &str = "s3cret=with=equals";
const TIMEOUT: Duration = Duration::from_secs(3);

async fn mock() -> MockRouter {
    MockRouter::start(USER, PASSWORD).await.unwrap()
}

async fn client(router: &MockRouter) -> Client {
    client_with_timeout(router, TIMEOUT).await
}

async fn client_with_timeout(router: &MockRouter, timeout: Duration) -> Client {
    Client::connect(&router.addr().to_string(), USER, PASSWORD, timeout)
        .await
        .unwrap()
}

fn field<'a>(row: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    row.get(key)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no {key} in {row:?}"))
}

#[tokio::test]
async fn a_client_logs_in_and_reads_identity_and_resources() {
    let router = mock().await;
    let client = client(&router).await;
    assert_eq!(router.logins(), 1);

    let identity = client.print("/system/identity", &[], &[]).await.unwrap();
    assert_eq!(identity.len(), 1);
    assert_eq!(field(&identity[0], "name"), "MikroTik");

    let resource = client
        .command("/system/resource/print", &[], &[])
        .await
        .unwrap();
    let resource = &resource[0];
    assert_eq!(field(resource, "version"), "7.16.2 (stable)");
    for key in [
        "uptime",
        "cpu-load",
        "free-memory",
        "total-memory",
        "architecture-name",
        "board-name",
        "platform",
    ] {
        assert!(resource.contains_key(key), "{key} in {resource:?}");
    }
}

#[tokio::test]
async fn a_wrong_password_is_a_typed_login_failure() {
    let router = mock().await;
    let err = Client::connect(&router.addr().to_string(), USER, "wrong", TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::LoginFailed("invalid user name or password (6)".into())
    );
    let err = Client::connect(&router.addr().to_string(), "nobody", PASSWORD, TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LoginFailed(_)), "{err:?}");
    assert_eq!(router.logins(), 0);
}

#[tokio::test]
async fn the_identity_can_be_set() {
    let router = mock().await;
    let client = client(&router).await;
    client
        .command("/system/identity/set", &[("name", "core-1")], &[])
        .await
        .unwrap();
    let rows = client.print("/system/identity", &[], &[]).await.unwrap();
    assert_eq!(field(&rows[0], "name"), "core-1");
}

#[tokio::test]
async fn profiles_can_be_added_and_listed() {
    let router = mock().await;
    let client = client(&router).await;
    let id = client
        .add(
            "/ppp/profile",
            &[
                ("name", "10M"),
                ("rate-limit", "5M/10M"),
                ("remote-address", "pool-subscribers"),
            ],
        )
        .await
        .unwrap();
    assert!(id.starts_with('*'), "{id}");
    let rows = client
        .print("/ppp/profile", &["name", "rate-limit"], &["?name=10M"])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(field(&rows[0], "rate-limit"), "5M/10M");
    assert_eq!(rows[0].len(), 2, ".proplist limits the properties");
    let names: Vec<String> = client
        .print("/ppp/profile", &["name"], &[])
        .await
        .unwrap()
        .into_iter()
        .map(|row| field(&row, "name").to_owned())
        .collect();
    assert_eq!(names, ["default", "default-encryption", "10M"]);
}

#[tokio::test]
async fn secrets_are_added_found_changed_and_removed() {
    let router = mock().await;
    let client = client(&router).await;
    let alice = client
        .add(
            "/ppp/secret",
            &[
                ("name", "alice"),
                ("password", "a=b"),
                ("service", "pppoe"),
                ("remote-address", "100.64.0.10"),
            ],
        )
        .await
        .unwrap();
    let bob = client
        .add(
            "/ppp/secret",
            &[("name", "bob"), ("password", "x"), ("disabled", "yes")],
        )
        .await
        .unwrap();
    assert_ne!(alice, bob);

    let rows = client
        .print(
            "/ppp/secret",
            &[".id", "name", "password", "remote-address"],
            &["?name=alice"],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(field(&rows[0], ".id"), alice);
    assert_eq!(field(&rows[0], "password"), "a=b", "values keep their =");
    assert_eq!(field(&rows[0], "remote-address"), "100.64.0.10");

    // Absent property, boolean spellings, and an OR of two equalities.
    let no_address = client
        .print("/ppp/secret", &["name"], &["?-remote-address"])
        .await
        .unwrap();
    assert_eq!(no_address.len(), 1);
    assert_eq!(field(&no_address[0], "name"), "bob");
    let disabled = client
        .print("/ppp/secret", &["name", "disabled"], &["?disabled=true"])
        .await
        .unwrap();
    assert_eq!(disabled.len(), 1);
    assert_eq!(field(&disabled[0], "disabled"), "true");
    let either = client
        .print(
            "/ppp/secret",
            &["name"],
            &["?name=alice", "?name=bob", "?#|"],
        )
        .await
        .unwrap();
    assert_eq!(either.len(), 2);
    let none = client
        .print("/ppp/secret", &[], &["?name=carol"])
        .await
        .unwrap();
    assert!(none.is_empty(), "a print of nothing is just !done");

    client
        .command(
            "/ppp/secret/set",
            &[
                (".id", &alice),
                ("comment", "moved"),
                ("profile", "default"),
            ],
            &[],
        )
        .await
        .unwrap();
    let rows = client
        .print("/ppp/secret", &["comment"], &["?name=alice"])
        .await
        .unwrap();
    assert_eq!(field(&rows[0], "comment"), "moved");

    client
        .command("/ppp/secret/remove", &[(".id", &alice)], &[])
        .await
        .unwrap();
    let names: Vec<String> = router
        .rows("/ppp/secret")
        .iter()
        .map(|row| field(row, "name").to_owned())
        .collect();
    assert_eq!(names, ["bob"]);

    let err = client
        .command("/ppp/secret/remove", &[(".id", &alice)], &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Trap { message, .. } if message == "no such item"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_duplicate_secret_name_is_a_trap_and_the_connection_stays_usable() {
    let router = mock().await;
    let client = client(&router).await;
    client
        .add("/ppp/secret", &[("name", "alice")])
        .await
        .unwrap();
    let err = client
        .add("/ppp/secret", &[("name", "alice")])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::Trap {
            category: None,
            message: "failure: secret with the same name already exists".into()
        }
    );
    assert_eq!(router.rows("/ppp/secret").len(), 1);
    // The !done after the !trap was consumed: the next command is in step.
    let rows = client.print("/ppp/secret", &[], &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn invalid_values_are_refused_by_the_router() {
    let router = mock().await;
    let client = client(&router).await;
    for args in [
        vec![("name", "x"), ("profile", "missing")],
        vec![("name", "x"), ("service", "carrier-pigeon")],
        vec![("name", "x"), ("no-such-field", "1")],
    ] {
        let err = client.add("/ppp/secret", &args).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Trap {
                    category: Some(1),
                    ..
                }
            ),
            "{args:?}: {err:?}"
        );
    }
    assert!(router.rows("/ppp/secret").is_empty());
}

#[tokio::test]
async fn active_sessions_are_listed_and_disconnected() {
    let router = mock().await;
    let client = client(&router).await;
    let id = router.login_session("alice", "100.64.0.10", "AA:BB:CC:00:00:01");
    router.login_session("bob", "100.64.0.11", "AA:BB:CC:00:00:02");

    let rows = client
        .print("/ppp/active", &[], &["?name=alice"])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let alice = &rows[0];
    assert_eq!(field(alice, ".id"), id);
    assert_eq!(field(alice, "address"), "100.64.0.10");
    assert_eq!(field(alice, "caller-id"), "AA:BB:CC:00:00:01");
    assert_eq!(field(alice, "service"), "pppoe");
    assert!(alice.contains_key("uptime") && alice.contains_key("session-id"));

    client
        .command("/ppp/active/remove", &[(".id", &id)], &[])
        .await
        .unwrap();
    let names: Vec<String> = client
        .print("/ppp/active", &["name"], &[])
        .await
        .unwrap()
        .iter()
        .map(|row| field(row, "name").to_owned())
        .collect();
    assert_eq!(names, ["bob"]);
    let interfaces = client
        .print("/interface", &["name"], &["?type=pppoe-in"])
        .await
        .unwrap();
    assert_eq!(interfaces.len(), 1, "alice's interface went with her");
    assert_eq!(field(&interfaces[0], "name"), "<pppoe-bob>");
}

#[tokio::test]
async fn interface_counters_grow_between_polls() {
    let router = mock().await;
    let client = client(&router).await;
    router.login_session("alice", "100.64.0.10", "AA:BB:CC:00:00:01");
    let read = || async {
        let rows = client
            .print(
                "/interface",
                &["name", "rx-byte", "tx-byte"],
                &["?name=<pppoe-alice>"],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let count = |key| field(&rows[0], key).parse::<u64>().unwrap();
        (count("rx-byte"), count("tx-byte"))
    };
    let first = read().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = read().await;
    assert!(
        second.0 > first.0 && second.1 > first.1,
        "{first:?} {second:?}"
    );

    let all = client.print("/interface", &[], &[]).await.unwrap();
    let names: Vec<&str> = all.iter().map(|row| field(row, "name")).collect();
    assert_eq!(names, ["ether1", "ether2", "<pppoe-alice>"]);
}

#[tokio::test]
async fn an_unknown_command_is_a_category_0_trap() {
    let router = mock().await;
    let client = client(&router).await;
    let err = client
        .command("/ip/frobnicate/print", &[], &[])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Error::Trap {
            category: Some(0),
            message: "no such command".into()
        }
    );
}

#[tokio::test]
async fn tagged_commands_run_concurrently_on_one_connection() {
    let router = mock().await;
    let client = client(&router).await;
    router.set_command_delay("/system/resource/print", Duration::from_millis(300));
    let started = Instant::now();
    let slow = {
        let client = client.clone();
        tokio::spawn(async move {
            let rows = client.print("/system/resource", &[], &[]).await.unwrap();
            (rows, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let identity = client.print("/system/identity", &[], &[]).await.unwrap();
    let fast = started.elapsed();
    let (resource, slow) = slow.await.unwrap();
    assert_eq!(field(&identity[0], "name"), "MikroTik");
    assert_eq!(field(&resource[0], "version"), "7.16.2 (stable)");
    assert!(fast < Duration::from_millis(250), "not blocked: {fast:?}");
    assert!(slow >= Duration::from_millis(300), "{slow:?}");

    // Many at once, each gets its own rows.
    for i in 0..10 {
        client
            .add("/ppp/secret", &[("name", &format!("user{i}"))])
            .await
            .unwrap();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let client = client.clone();
        tasks.spawn(async move {
            let name = format!("user{i}");
            let rows = client
                .print("/ppp/secret", &["name"], &[&format!("?name={name}")])
                .await
                .unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(field(&rows[0], "name"), name);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert_eq!(router.connections(), 1);
    assert_eq!(router.logins(), 1);
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = Client::connect(&addr.to_string(), USER, PASSWORD, TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn a_router_that_stops_answering_is_a_timeout() {
    let router = mock().await;
    let timeout = Duration::from_millis(200);
    let client = client_with_timeout(&router, timeout).await;
    router.set_fault(Fault::Silent);
    let started = Instant::now();
    let err = client
        .print("/system/identity", &[], &[])
        .await
        .unwrap_err();
    assert_eq!(err, Error::Timeout(timeout));
    assert!(started.elapsed() < Duration::from_secs(2));
    // A timeout abandons the command, not the connection.
    router.set_fault(Fault::None);
    client.print("/system/identity", &[], &[]).await.unwrap();
}

#[tokio::test]
async fn a_slow_reply_beyond_the_timeout_is_a_timeout_and_within_it_succeeds() {
    let router = mock().await;
    let client = client_with_timeout(&router, Duration::from_millis(200)).await;
    router.set_fault(Fault::Slow(Duration::from_millis(500)));
    let err = client
        .print("/system/identity", &[], &[])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");

    router.set_fault(Fault::Slow(Duration::from_millis(50)));
    let rows = client.print("/system/identity", &[], &[]).await.unwrap();
    assert_eq!(field(&rows[0], "name"), "MikroTik");
}

#[tokio::test]
async fn a_login_that_gets_no_answer_is_a_timeout() {
    // Accepts the connection, reads, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        while socket.read(&mut buf).await.unwrap_or(0) > 0 {}
    });
    let timeout = Duration::from_millis(200);
    let err = Client::connect(&addr.to_string(), USER, PASSWORD, timeout)
        .await
        .unwrap_err();
    assert_eq!(err, Error::Timeout(timeout));
    server.abort();
}

#[tokio::test]
async fn a_fatal_reply_ends_the_session_with_its_reason() {
    let router = mock().await;
    let client = client(&router).await;
    router.set_fault(Fault::Fatal("too many commands".into()));
    let err = client
        .print("/system/identity", &[], &[])
        .await
        .unwrap_err();
    assert_eq!(err, Error::Fatal("too many commands".into()));
    assert!(client.is_closed());
    // Later calls fail at once with the same cause.
    router.set_fault(Fault::None);
    let err = client
        .print("/system/identity", &[], &[])
        .await
        .unwrap_err();
    assert_eq!(err, Error::Fatal("too many commands".into()));
}

#[tokio::test]
async fn a_connection_dropped_mid_reply_is_connection_lost() {
    let router = mock().await;
    let client = client(&router).await;
    router.login_session("alice", "100.64.0.10", "AA:BB:CC:00:00:01");
    router.set_fault(Fault::DropMidReply);
    let err = client.print("/ppp/active", &[], &[]).await.unwrap_err();
    assert!(
        matches!(&err, Error::ConnectionLost(detail) if detail.contains("middle of a reply")),
        "{err:?}"
    );
    assert!(client.is_closed());
}

#[tokio::test]
async fn garbage_from_the_router_is_a_protocol_error() {
    // Logs anyone in, then answers the next command with a control byte.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).await;
        socket.write_all(b"\x05!done\x00").await.unwrap();
        let _ = socket.read(&mut buf).await;
        socket.write_all(&[0xF8, 1, 2, 3]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let client = Client::connect(&addr.to_string(), USER, PASSWORD, TIMEOUT)
        .await
        .unwrap();
    let err = client
        .print("/system/identity", &[], &[])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    server.abort();
}

async fn tls_mock() -> (MockRouter, Fingerprint) {
    let (identity, pin) = router_tls_identity();
    let router = MockRouter::start_with(MockOptions {
        tls_listen: Some("127.0.0.1:0".parse().unwrap()),
        tls: Some(identity),
        ..MockOptions::local(USER, PASSWORD)
    })
    .await
    .unwrap();
    (router, pin)
}

fn tls_options(router: &MockRouter, pin: Fingerprint) -> ConnectOptions {
    ConnectOptions {
        addr: router.tls_addr().unwrap().to_string(),
        username: USER.into(),
        password: PASSWORD.into(),
        timeout: TIMEOUT,
        tls: Some(pin),
    }
}

#[tokio::test]
async fn api_ssl_works_with_the_pinned_fingerprint_only() {
    let (router, pin) = tls_mock().await;
    assert_eq!(
        fetch_fingerprint(&router.tls_addr().unwrap().to_string(), TIMEOUT)
            .await
            .unwrap(),
        pin
    );

    let client = Client::connect_with(tls_options(&router, pin))
        .await
        .unwrap();
    let rows = client.print("/system/identity", &[], &[]).await.unwrap();
    assert_eq!(field(&rows[0], "name"), "MikroTik");

    let wrong = Fingerprint::parse(&"00".repeat(32)).unwrap();
    let err = Client::connect_with(tls_options(&router, wrong))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Tls(detail) if detail.contains("not the pinned")),
        "{err:?}"
    );
    assert_eq!(router.logins(), 1, "no login over an unverified channel");
}

#[test]
fn the_mock_routeros_subcommand_serves_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = ispd_command(dir.path())
        .args([
            "mock-routeros",
            "--listen",
            "127.0.0.1:0",
            "--username",
            USER,
            "--password",
            PASSWORD,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let result = runtime.block_on(async {
        let client = Client::connect(&addr, USER, PASSWORD, TIMEOUT).await?;
        client.print("/system/identity", &[], &[]).await
    });
    let _ = child.kill();
    let _ = child.wait();
    let rows = result.unwrap_or_else(|e| panic!("{line:?}: {e}"));
    assert_eq!(field(&rows[0], "name"), "MikroTik");
}

const LIBROUTEROS_SCRIPT: &str = r#"
import sys
from librouteros import connect
from librouteros.exceptions import TrapError
from librouteros.login import plain, token
from librouteros.query import Key

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

# Both login flows: 6.43+ and the legacy challenge.
for method in (plain, token):
    api = connect(host=host, port=port, username=user, password=password,
                  login_method=method, timeout=5)
    assert tuple(api.path("system", "identity"))[0]["name"] == "MikroTik"
    api.close()

api = connect(host=host, port=port, username=user, password=password, timeout=5)
secrets = api.path("ppp", "secret")
new_id = secrets.add(name="py-user", password="pw1", service="pppoe", disabled=False)
assert new_id.startswith("*"), new_id

name, item, disabled, comment = Key("name"), Key(".id"), Key("disabled"), Key("comment")
rows = tuple(secrets.select(item, name, disabled).where(name == "py-user"))
assert rows == ({".id": new_id, "name": "py-user", "disabled": False},), rows

secrets.update(**{".id": new_id, "comment": "from python", "disabled": True})
rows = tuple(secrets.select(name, comment).where(disabled == True))  # noqa: E712
assert rows == ({"name": "py-user", "comment": "from python"},), rows

try:
    secrets.add(name="py-user")
    raise SystemExit("a duplicate name was accepted")
except TrapError as err:
    assert "already exists" in err.message, err.message

secrets.remove(new_id)
assert tuple(secrets.select(name).where(name == "py-user")) == ()
api.close()
print("librouteros ok")
"#;

/// A venv with librouteros under the target dir, made once and reused.
fn librouteros_python() -> std::path::PathBuf {
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("routeros-venv");
    let python = venv.join("bin").join("python");
    let has_it = |python: &std::path::Path| {
        std::process::Command::new(python)
            .args(["-c", "import librouteros"])
            .output()
            .is_ok_and(|out| out.status.success())
    };
    if has_it(&python) {
        return python;
    }
    let out = std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .expect("python3 is needed for the librouteros interoperability test");
    assert!(
        out.status.success(),
        "python3 -m venv failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "librouteros>=4,<5"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pip could not install librouteros from PyPI (is PyPI reachable?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_library_librouteros_works_against_the_mock() {
    let python = tokio::task::spawn_blocking(librouteros_python)
        .await
        .unwrap();
    let router = mock().await;
    let addr = router.addr();
    let out = tokio::process::Command::new(python)
        .args(["-c", LIBROUTEROS_SCRIPT])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .args([USER, PASSWORD])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "librouteros script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "librouteros ok"
    );
    assert_eq!(router.logins(), 3);
    assert!(router.rows("/ppp/secret").is_empty());
}
