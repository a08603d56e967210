//! Scale-out: two `ispd serve` and two `ispd worker` processes on one
//! PostgreSQL and one Redis, as docs/DEPLOYMENT.md describes.
//!
//! - 200 concurrent allocations, split across both web processes, into
//!   subnets too small for all of them: no address twice, exact counts;
//! - a login on one web process is valid on the other;
//! - each scheduled tick runs once across both workers;
//! - a worker killed mid-job: the run completes on the other.
//!
//! The processes share a Redis database of their own (13), emptied first:
//! their queue has the fixed production name.

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ispd::ipam::entities::ip_allocation;
use ispd::jobs::runs::job_run;
use ispd::mikrotik::routeros::MockRouter;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{free_port, ispd_command, Backend, TestDb};

const REDIS_DATABASE: u32 = 13;
const ALLOCATIONS: usize = 200;
const STAFF: &str = "noc-admin";
const STAFF_PASSWORD: &str = "scale-out-password-1";
const ROUTER_USER: &str = "api";
const ROUTER_PASSWORD: &str = "router-password-1";
/// How long the mock router takes to list its sessions: the job that
/// lists them is then running long enough to be killed mid-way.
const SLOW_LISTING: Duration = Duration::from_secs(6);

/// A child process, killed when dropped.
struct Process {
    name: &'static str,
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Process {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// An HTTP/1.1 answer: status, headers (lower-case names) and body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request on a new connection (`Connection: close`).
async fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, String)>,
) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = match body {
        Some((content_type, body)) => {
            request.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            ));
            body
        }
        None => String::new(),
    };
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 60 s")
        .unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").expect("a complete answer");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        unchunk(rest)
    } else {
        rest.to_string()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn unchunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    body
}

async fn api(port: u16, token: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
    let auth = format!("Bearer {token}");
    http(
        port,
        method,
        path,
        &[("Authorization", &auth)],
        body.map(|b| ("application/json", b.to_string())),
    )
    .await
}

async fn wait_until_up(port: u16, process: &mut Process) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!("{} exited early: {status}", process.name);
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
            && http(port, "GET", "/healthz", &[], None).await.status == 200
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not come up",
            process.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn read_run(conn: &sea_orm::DatabaseConnection, id: i64) -> job_run::Model {
    job_run::Entity::find_by_id(id)
        .one(conn)
        .await
        .unwrap()
        .expect("the run")
}

fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            // The server's address, with our database instead of any other.
            let url = url.trim_end_matches('/');
            let server = match url.rsplit_once('/') {
                Some((base, db)) if db.parse::<u32>().is_ok() => base,
                _ => url,
            };
            Some(format!("{server}/{REDIS_DATABASE}"))
        }
        _ => {
            if std::env::var("TEST_REQUIRE_ALL_BACKENDS").as_deref() == Ok("1") {
                panic!("TEST_REDIS_URL is not set, and TEST_REQUIRE_ALL_BACKENDS=1");
            }
            eprintln!("skipped: TEST_REDIS_URL is not set");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_web_and_two_worker_processes_share_one_postgresql_and_one_redis() {
    let Some(redis) = redis_url() else { return };
    let Some(main) = TestDb::fresh(Backend::Postgres).await else {
        return;
    };
    let Some(radius) = TestDb::fresh(Backend::Postgres).await else {
        return;
    };
    let flushed = std::process::Command::new("redis-cli")
        .args(["-u", &redis, "FLUSHDB"])
        .output()
        .expect("redis-cli");
    assert!(flushed.status.success(), "{flushed:?}");

    let router = MockRouter::start(ROUTER_USER, ROUTER_PASSWORD)
        .await
        .unwrap();
    router.set_command_delay("/ppp/active/print", SLOW_LISTING);

    let dir = tempfile::tempdir().unwrap();
    let app_key = ispd::crypto::AppKey::generate().to_base64();
    let env: Vec<(&str, String)> = vec![
        ("APP_ENV", "production".into()),
        ("APP_KEY", app_key),
        ("DATABASE_URL", main.url.clone()),
        ("RADIUS_DATABASE_URL", radius.url.clone()),
        ("REDIS_URL", redis.clone()),
        ("DATA_DIR", dir.path().display().to_string()),
        (
            "STATIC_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/static").into(),
        ),
        ("RATE_LIMIT_PER_SECOND", "0".into()),
        ("IPAM_LOCK_TIMEOUT", "30".into()),
        ("IPAM_ALLOCATION_TIMEOUT", "30".into()),
        ("MIKROTIK_API_TIMEOUT", "30".into()),
        // One job on a fast schedule; the others only when asked.
        ("JOBS_SCHEDULE_HOUSEKEEPING", "*/2 * * * * *".into()),
        ("JOBS_SCHEDULE_IPAM_CLEANUP", "off".into()),
        ("JOBS_SCHEDULE_RADIUS_RETRY", "off".into()),
        ("JOBS_SCHEDULE_RADIUS_CLOSE_STALE", "off".into()),
        ("JOBS_SCHEDULE_RADIUS_SYNC_USERS", "off".into()),
        ("JOBS_SCHEDULE_MIKROTIK_SYNC_SESSIONS", "off".into()),
        ("JOBS_SCHEDULE_NETWORK_HEALTH_CHECK", "off".into()),
        ("JOBS_SCHEDULE_WEBHOOK_DELIVERY", "off".into()),
        ("JOBS_SCHEDULE_QUOTA_METERING", "off".into()),
        ("JOBS_LEASE_SECS", "3".into()),
        ("JOBS_POLL_INTERVAL_MS", "100".into()),
        ("JOBS_RETRY_BACKOFF_SECS", "1".into()),
    ];
    let command = |args: &[&str]| {
        let mut command = ispd_command(dir.path());
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        command
    };
    let run = |args: &[&str], stdin: Option<&str>| -> String {
        let mut child = command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ispd {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["migrate"], None);
    run(
        &["admin", "create", "--username", STAFF, "--password-stdin"],
        Some(&format!("{STAFF_PASSWORD}\n")),
    );
    let printed = run(
        &["token", "create", "--name", "scale-out", "--role", "admin"],
        None,
    );
    let token = printed
        .split_whitespace()
        .find(|w| w.starts_with("ispd_"))
        .expect("a token")
        .to_string();

    let ports = [free_port(), free_port()];
    let spawn = |name: &'static str, args: &[&str], port: Option<u16>| {
        let mut command = command(args);
        if let Some(port) = port {
            command.env("LISTEN_ADDR", format!("127.0.0.1:{port}"));
        }
        Process {
            name,
            child: command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        }
    };
    let mut web_a = spawn("web A", &["serve"], Some(ports[0]));
    let mut web_b = spawn("web B", &["serve"], Some(ports[1]));
    let mut workers = vec![
        spawn("worker 1", &["worker"], None),
        spawn("worker 2", &["worker"], None),
    ];
    wait_until_up(ports[0], &mut web_a).await;
    wait_until_up(ports[1], &mut web_b).await;

    // -------------------------------------------- concurrent allocations
    let pool = api(
        ports[0],
        &token,
        "POST",
        "/api/v1/ipam/pools",
        Some(json!({"name": "scale", "start_ip": "100.64.0.0", "end_ip": "100.64.0.255"})),
    )
    .await;
    assert_eq!(pool.status, 201, "{}", pool.body);
    let pool_id = pool.json()["id"].as_i64().unwrap();
    let mut subnets = Vec::new();
    for network in ["100.64.0.0/26", "100.64.0.64/26"] {
        let subnet = api(
            ports[1],
            &token,
            "POST",
            "/api/v1/ipam/subnets",
            Some(json!({"pool_id": pool_id, "network": network})),
        )
        .await;
        assert_eq!(subnet.status, 201, "{}", subnet.body);
        subnets.push(subnet.json()["id"].as_i64().unwrap());
    }
    let utilization = |port: u16| {
        let (token, path) = (
            token.clone(),
            format!("/api/v1/ipam/pools/{pool_id}/utilization"),
        );
        async move { api(port, &token, "GET", &path, None).await.json() }
    };
    let capacity = utilization(ports[0]).await["total"].as_u64().unwrap() as usize;
    assert!(capacity < ALLOCATIONS, "the subnets hold {capacity}");

    let mut requests = tokio::task::JoinSet::new();
    for n in 0..ALLOCATIONS {
        let port = ports[n % 2];
        let subnet_id = subnets[(n / 2) % 2];
        let token = token.clone();
        requests.spawn(async move {
            let body = json!({"subnet_id": subnet_id, "username": format!("sub{n}"),
                "mac_address": format!("02:00:00:00:{:02x}:{:02x}", n / 256, n % 256)});
            let answer = api(port, &token, "POST", "/api/v1/ipam/allocate", Some(body)).await;
            (answer.status, answer.json())
        });
    }
    let mut allocated = 0;
    let mut full = 0;
    while let Some(result) = requests.join_next().await {
        let (status, body) = result.unwrap();
        match status {
            201 => allocated += 1,
            409 => {
                assert_eq!(body["error"]["code"], "subnet_full", "{body}");
                full += 1;
            }
            other => panic!("an allocation answered {other}: {body}"),
        }
    }
    assert_eq!(allocated, capacity, "every usable address, once");
    assert_eq!(full, ALLOCATIONS - capacity);
    let rows = ip_allocation::Entity::find()
        .filter(ip_allocation::Column::Active.eq(true))
        .all(&main.conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), capacity);
    let addresses: BTreeSet<&str> = rows.iter().map(|r| r.ip_address.as_str()).collect();
    assert_eq!(addresses.len(), capacity, "no address twice");
    // Read on the other web process.
    let after = utilization(ports[1]).await;
    assert_eq!(after["allocated"], capacity);
    assert_eq!(after["free"], 0);

    // -------------------------------------------------- shared sessions
    let login_page = http(ports[0], "GET", "/login", &[], None).await;
    let cookie = login_page
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let marker = "name=\"csrf-token\" content=\"";
    let start = login_page.body.find(marker).expect("a CSRF token") + marker.len();
    let csrf = &login_page.body[start..start + login_page.body[start..].find('"').unwrap()];
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("username", STAFF),
            ("password", STAFF_PASSWORD),
            ("csrf_token", csrf),
        ])
        .finish();
    let signed_in = http(
        ports[0],
        "POST",
        "/login",
        &[("Cookie", &cookie)],
        Some(("application/x-www-form-urlencoded", form)),
    )
    .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let session = signed_in
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("the signed-in session's cookie")
        .to_string();
    let elsewhere = http(ports[1], "GET", "/", &[("Cookie", &session)], None).await;
    assert_eq!(elsewhere.status, 200, "web B knows web A's session");
    assert!(elsewhere.body.contains(STAFF), "signed in as {STAFF}");
    let anonymous = http(ports[1], "GET", "/", &[], None).await;
    assert_eq!(anonymous.status, 303, "and still asks others to sign in");

    // ---------------------------------------------- one run per tick
    tokio::time::sleep(Duration::from_secs(7)).await;
    let scheduled = job_run::Entity::find()
        .filter(job_run::Column::JobName.eq("housekeeping"))
        .filter(job_run::Column::Trigger.eq("schedule"))
        .all(&main.conn)
        .await
        .unwrap();
    let ticks: BTreeSet<_> = scheduled.iter().map(|r| r.scheduled_for).collect();
    assert!(ticks.len() >= 2, "ticks: {ticks:?}");
    assert_eq!(
        ticks.len(),
        scheduled.len(),
        "one run per tick: {scheduled:?}"
    );

    // ------------------------------- a worker killed in the middle of a job
    let router_row = api(
        ports[0],
        &token,
        "POST",
        "/api/v1/mikrotik/routers",
        Some(json!({"name": "edge-1", "ip_address": "127.0.0.1",
            "api_port": router.addr().port(), "username": ROUTER_USER,
            "password": ROUTER_PASSWORD})),
    )
    .await;
    assert_eq!(router_row.status, 201, "{}", router_row.body);
    router.login_session("sub1", "100.64.0.1", "02:00:00:00:00:01");
    let queued = api(
        ports[1],
        &token,
        "POST",
        "/api/v1/jobs/mikrotik-sync-sessions/run",
        None,
    )
    .await;
    assert_eq!(queued.status, 202, "{}", queued.body);
    let run_id = queued.json()["id"].as_i64().unwrap();

    // Wait for a worker to start its attempt and reach the router (whose
    // listing then takes SLOW_LISTING), then kill that worker.
    let deadline = Instant::now() + Duration::from_secs(30);
    let holder = loop {
        let run = read_run(&main.conn, run_id).await;
        if run.status == "running" && run.attempts == 1 && router.connections() > 0 {
            if let Some(holder) = run.lease_holder {
                break holder;
            }
        }
        assert!(Instant::now() < deadline, "no worker took the run: {run:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let killed = workers
        .iter()
        .position(|w| holder.contains(&format!("-{}-", w.pid())))
        .unwrap_or_else(|| panic!("{holder} is none of our workers"));
    let mut dead = workers.remove(killed);
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    let survivor_pid = workers[0].pid();

    let deadline = Instant::now() + Duration::from_secs(90);
    let finished = loop {
        let run = read_run(&main.conn, run_id).await;
        if run.finished_at.is_some() {
            break run;
        }
        assert!(
            Instant::now() < deadline,
            "the run was not finished by the other worker: {run:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(finished.status, "succeeded", "{finished:?}");
    assert_eq!(finished.attempts, 2, "{finished:?}");
    let finisher = finished.lease_holder.clone().unwrap_or_default();
    assert!(
        finisher.contains(&format!("-{survivor_pid}-")),
        "finished by {finisher}, not the surviving worker {survivor_pid}"
    );
    drop(web_a);
    drop(web_b);
}
