//! Test harness: a fresh database per test on the backend under test.
//!
//! SQLite always runs, in a temporary file. PostgreSQL and MariaDB run when
//! TEST_POSTGRES_URL / TEST_MYSQL_URL name a server where we may create
//! databases; each test gets its own database, dropped afterwards. With
//! TEST_REQUIRE_ALL_BACKENDS=1 (set by .ci/run) a missing URL is a failure,
//! not a skip.

// The harness serves every module; not each one uses every helper.
#![allow(dead_code)]

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    fn server_url_var(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some("TEST_POSTGRES_URL"),
            Backend::MySql => Some("TEST_MYSQL_URL"),
        }
    }
}

pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub conn: DatabaseConnection,
    cleanup: Cleanup,
}

enum Cleanup {
    TempDir(#[allow(dead_code)] tempfile::TempDir),
    DropDatabase { server_url: String, name: String },
}

impl TestDb {
    /// A new, empty database; `None` when the backend is not configured.
    pub async fn fresh(backend: Backend) -> Option<TestDb> {
        match backend.server_url_var() {
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                let conn = connect(&url).await;
                Some(TestDb {
                    backend,
                    url,
                    conn,
                    cleanup: Cleanup::TempDir(dir),
                })
            }
            Some(var) => {
                let server_url = match std::env::var(var) {
                    Ok(url) if !url.is_empty() => url,
                    _ => {
                        if std::env::var("TEST_REQUIRE_ALL_BACKENDS").as_deref() == Ok("1") {
                            panic!("{var} is not set, and TEST_REQUIRE_ALL_BACKENDS=1");
                        }
                        eprintln!("skipped: {var} is not set");
                        return None;
                    }
                };
                let name = format!("ispd_test_{}", random_suffix());
                let admin = connect(&server_url).await;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
                admin.close().await.ok();
                let url = with_database(&server_url, &name);
                let conn = connect(&url).await;
                Some(TestDb {
                    backend,
                    url,
                    conn,
                    cleanup: Cleanup::DropDatabase { server_url, name },
                })
            }
        }
    }
}

impl TestDb {
    /// A fresh main and RADIUS database, both migrated; `None` when the
    /// backend is not configured.
    pub async fn migrated_pair(backend: Backend) -> Option<(TestDb, TestDb)> {
        let main = TestDb::fresh(backend).await?;
        let radius = TestDb::fresh(backend).await?;
        let databases = ispd::db::Databases {
            main: main.conn.clone(),
            radius: radius.conn.clone(),
        };
        databases.migrate().await.unwrap();
        Some((main, radius))
    }

    /// Replaces the connection pool with a new one.
    ///
    /// An SQLite connection caches the schema and only notices another
    /// connection's DDL when a statement touches a changed object: after
    /// one pooled connection drops a table, an idle one still "sees" its
    /// indexes, and re-creating them there fails with "index ... already
    /// exists". Tests that go down and up again reopen in between, as a
    /// second `ispd migrate` run would.
    pub async fn reopen(&mut self) {
        self.conn.close_by_ref().await.ok();
        self.conn = connect(&self.url).await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Cleanup::DropDatabase { server_url, name } = &self.cleanup else {
            return;
        };
        let (server_url, db_name, backend) = (server_url.clone(), name.clone(), self.backend);
        // Drop runs inside the test's runtime, which cannot block on itself:
        // use a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let admin = connect(&server_url).await;
                let sql = match backend {
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS {db_name}"),
                };
                admin.execute_unprepared(&sql).await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {name}: {e}");
        }
    }
}

async fn connect(url: &str) -> DatabaseConnection {
    ispd::db::connect(url, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e:#}"))
}

/// Replaces the database name (the URL's path) in a server URL.
fn with_database(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

fn random_suffix() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The `ispd` binary built for these tests.
pub fn ispd_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_ispd"))
}

/// A Command for the binary with a clean environment: no variable of the
/// developer's shell, and a working directory without a `.env`.
pub fn ispd_command(workdir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(ispd_bin());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_LEVEL", "info")
        .current_dir(workdir);
    cmd
}

/// Runs `ispd args` in `workdir` with `vars` set; asserts it succeeds and
/// returns what it printed.
pub fn ispd_ok(workdir: &std::path::Path, args: &[&str], vars: &[(&str, &str)]) -> String {
    let out = ispd_command(workdir)
        .args(args)
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ispd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `ispd args` in `workdir` with `vars` set; its exit code and what
/// it printed on stderr.
pub fn ispd_exit(
    workdir: &std::path::Path,
    args: &[&str],
    vars: &[(&str, &str)],
) -> (Option<i32>, String) {
    let out = ispd_command(workdir)
        .args(args)
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr)
}

#[test]
fn with_database_replaces_the_path() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("mysql://root@127.0.0.1:3306", "x"),
        "mysql://root@127.0.0.1:3306/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
}

/// ispd's router over fresh, migrated databases, driven in-process.
pub struct TestApp {
    pub state: ispd::app::AppState,
    pub router: axum::Router,
    _main: TestDb,
    _radius: TestDb,
    _data_dir: tempfile::TempDir,
}

/// A response with its body read.
pub struct TestResponse {
    pub status: axum::http::StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: bytes::Bytes,
}

impl TestResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, &[]).await
    }

    /// With extra settings, as environment variables would give them.
    pub async fn spawn_with(backend: Backend, vars: &[(&str, &str)]) -> Option<TestApp> {
        // Errors the app logs show in the failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn,ispd=info")
            .with_test_writer()
            .try_init();
        let main = TestDb::fresh(backend).await?;
        let radius = TestDb::fresh(backend).await?;
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut env: std::collections::HashMap<String, String> = [
            ("APP_ENV", "test"),
            ("DATABASE_URL", main.url.as_str()),
            ("RADIUS_DATABASE_URL", radius.url.as_str()),
            ("DATA_DIR", data_dir.path().to_str().unwrap()),
            ("STATIC_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/static")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in vars {
            env.insert(k.to_string(), v.to_string());
        }
        let config = ispd::config::Config::from_lookup(|name| env.get(name).cloned())
            .expect("test configuration");
        let databases = ispd::db::Databases {
            main: main.conn.clone(),
            radius: radius.conn.clone(),
        };
        databases.migrate().await.expect("migrations");
        let state = ispd::app::AppState::new(config, databases, ispd::crypto::AppKey::generate());
        let router = ispd::app::build_router(state.clone());
        Some(TestApp {
            state,
            router,
            _main: main,
            _radius: radius,
            _data_dir: data_dir,
        })
    }

    /// An app and an API token of `role`.
    pub async fn with_token(
        backend: Backend,
        role: ispd::staff::Role,
    ) -> Option<(TestApp, String)> {
        let app = Self::spawn(backend).await?;
        let token = app.create_token(role).await;
        Some((app, token))
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db.main
    }

    /// The URLs of the main and the RADIUS database.
    pub fn database_urls(&self) -> (&str, &str) {
        (&self._main.url, &self._radius.url)
    }

    pub async fn send(&self, request: axum::http::Request<axum::body::Body>) -> TestResponse {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(
            axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
    }

    /// A JSON API call with a bearer token, and a JSON body if given.
    pub async fn api(
        &self,
        method: axum::http::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> TestResponse {
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        let body = match body {
            Some(value) => {
                request = request.header("content-type", "application/json");
                axum::body::Body::from(value.to_string())
            }
            None => axum::body::Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    /// The plaintext of a value sealed with the app's key.
    pub fn decrypt(&self, ciphertext: &str) -> String {
        let secret = self.state.app_key.decrypt(ciphertext).expect("decrypts");
        secret.expose().to_string()
    }

    /// A GET with a bearer token.
    pub async fn get_as(&self, path: &str, token: &str) -> TestResponse {
        self.api(axum::http::Method::GET, path, token, None).await
    }

    /// A POST of a JSON body with a bearer token.
    pub async fn post_as(&self, path: &str, token: &str, body: serde_json::Value) -> TestResponse {
        self.api(axum::http::Method::POST, path, token, Some(body))
            .await
    }

    /// A POST of `body` as it is, labelled JSON, with a bearer token.
    pub async fn post_raw_json(
        &self,
        path: &str,
        token: &str,
        body: impl Into<axum::body::Body>,
    ) -> TestResponse {
        self.send(
            axum::http::Request::post(path)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    /// The audit entries of one action, oldest first.
    pub async fn audit_entries(
        &self,
        action: &str,
    ) -> Vec<ispd::audit::entities::audit_log::Model> {
        use ispd::audit::entities::audit_log;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        audit_log::Entity::find()
            .filter(audit_log::Column::Action.eq(action))
            .order_by_asc(audit_log::Column::Id)
            .all(self.db())
            .await
            .unwrap()
    }

    /// A POST without a body with a bearer token.
    pub async fn post_empty_as(&self, path: &str, token: &str) -> TestResponse {
        self.api(axum::http::Method::POST, path, token, None).await
    }

    /// A PUT of a JSON body with a bearer token.
    pub async fn put_as(&self, path: &str, token: &str, body: serde_json::Value) -> TestResponse {
        self.api(axum::http::Method::PUT, path, token, Some(body))
            .await
    }

    /// A DELETE with a bearer token.
    pub async fn delete_as(&self, path: &str, token: &str) -> TestResponse {
        self.api(axum::http::Method::DELETE, path, token, None)
            .await
    }

    /// Creates a staff member with a known password.
    pub async fn create_staff(&self, username: &str, role: ispd::staff::Role) -> String {
        let password = format!("{username}-password-123");
        ispd::staff::service::create_staff(
            self.db(),
            &ispd::audit::Actor::system(),
            &ispd::staff::StaffUsername::parse(username).unwrap(),
            role,
            &ispd::crypto::Secret::new(password.clone()),
        )
        .await
        .expect("create staff");
        password
    }

    /// Creates an API token and returns its plaintext.
    pub async fn create_token(&self, role: ispd::staff::Role) -> String {
        let issued = ispd::staff::service::create_token(
            self.db(),
            &ispd::audit::Actor::system(),
            &format!("test {role}"),
            role,
            None,
        )
        .await
        .expect("create token");
        issued.plaintext.expose().to_string()
    }
}

/// A cookie-carrying client for the HTML pages: it keeps the session cookie
/// and reads the CSRF token out of the pages it loads.
pub struct TestBrowser<'a> {
    pub app: &'a TestApp,
    pub cookie: Option<String>,
    pub csrf_token: Option<String>,
}

impl<'a> TestBrowser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookie: None,
            csrf_token: None,
        }
    }

    async fn send(&mut self, mut request: axum::http::Request<axum::body::Body>) -> TestResponse {
        if let Some(cookie) = &self.cookie {
            request
                .headers_mut()
                .insert("cookie", cookie.parse().unwrap());
        }
        let response = self.app.send(request).await;
        if let Some(set_cookie) = response.header("set-cookie") {
            let pair = set_cookie.split(';').next().unwrap().to_string();
            // An expired cookie (Max-Age=0) is the server ending the session.
            if set_cookie.contains("Max-Age=0") {
                self.cookie = None;
            } else {
                self.cookie = Some(pair);
            }
        }
        if let Some(token) = extract_csrf(&response.text()) {
            self.csrf_token = Some(token);
        }
        response
    }

    pub async fn get(&mut self, path: &str) -> TestResponse {
        self.send(
            axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
    }

    /// Posts a form with the current CSRF token added.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        let token = self.csrf_token.clone().unwrap_or_default();
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &token));
        self.post_raw(path, &all).await
    }

    /// Posts exactly these fields (no token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(
            axum::http::Request::post(path)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// Signs in through the login form; panics unless it succeeds.
    pub async fn sign_in(&mut self, username: &str, password: &str) {
        self.get("/login").await;
        let response = self
            .post("/login", &[("username", username), ("password", password)])
            .await;
        assert_eq!(response.status, 303, "sign-in failed: {}", response.text());
        // Load a page to pick up the session's new CSRF token.
        self.get("/").await;
    }
}

fn extract_csrf(html: &str) -> Option<String> {
    let marker = "name=\"csrf-token\" content=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string()).filter(|t| !t.is_empty())
}

/// A self-signed certificate and key such as a router presents for API-SSL,
/// made fresh for each test (no private key is committed), and the pin
/// ispd would store for it.
pub fn router_tls_identity() -> (
    ispd::mikrotik::routeros::mock::TlsIdentity,
    ispd::mikrotik::routeros::client::Fingerprint,
) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["MikroTik".to_string()]).expect("a certificate");
    let pin = ispd::mikrotik::routeros::client::Fingerprint::of_certificate(generated.cert.der());
    let identity = ispd::mikrotik::routeros::mock::TlsIdentity {
        cert_pem: generated.cert.pem().into_bytes(),
        key_pem: generated.signing_key.serialize_pem().into_bytes(),
    };
    (identity, pin)
}

/// Every log event written while it is held, as text.
///
/// It becomes the process's global subscriber when it can (nextest runs
/// each test in a process of its own, so events from every thread are
/// caught), else the current thread's. No spans: sqlx's SQLite worker
/// thread enters the caller's span under the global subscriber, which
/// would not know a thread-local subscriber's span ids.
pub struct LogCapture {
    buffer: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: Option<tracing::subscriber::DefaultGuard>,
}

#[derive(Clone)]
struct CaptureWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Starts capturing events at every level. Call it before
    /// [`TestApp::spawn`], whose own subscriber then stays out.
    pub fn start() -> Self {
        use tracing_subscriber::layer::{Layer, SubscriberExt};
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let subscriber = || {
            let writer = CaptureWriter(buffer.clone());
            tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || writer.clone())
                    .with_ansi(false)
                    .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                        meta.is_event()
                    })),
            )
        };
        let guard = match tracing::subscriber::set_global_default(subscriber()) {
            Ok(()) => None,
            Err(_) => Some(tracing::subscriber::set_default(subscriber())),
        };
        LogCapture {
            buffer,
            _guard: guard,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A pool named `name` over 100.64.0.0-100.64.255.255 with one subnet
/// (`network` inside that range, and its gateway if given), through the
/// IPAM service.
pub async fn pool_with_subnet(
    app: &TestApp,
    name: &str,
    network: &str,
    gateway: Option<&str>,
) -> (
    ispd::ipam::entities::ip_pool::Model,
    ispd::ipam::entities::ip_subnet::Model,
) {
    use ispd::ipam::service::{self as ipam, PoolInput, SubnetInput};
    let actor = ispd::audit::Actor::system();
    let pool = ipam::create_pool(
        app.db(),
        &actor,
        &PoolInput {
            name: name.into(),
            start_ip: "100.64.0.0".into(),
            end_ip: "100.64.255.255".into(),
            ..Default::default()
        },
    )
    .await
    .expect("create pool");
    let subnet = ipam::create_subnet(
        app.db(),
        &actor,
        &SubnetInput {
            pool_id: pool.id,
            network: network.into(),
            gateway: gateway.map(str::to_string),
            ..Default::default()
        },
    )
    .await
    .expect("create subnet");
    (pool, subnet)
}

/// Asserts a 201 whose Location is `collection`/{id} of the new record;
/// returns the record and its id.
pub fn assert_created(response: &TestResponse, collection: &str) -> (serde_json::Value, i64) {
    assert_eq!(response.status, 201, "{}", response.text());
    let record = response.json();
    let id = record["id"].as_i64().unwrap();
    assert_eq!(
        response.header("location"),
        Some(format!("{collection}/{id}").as_str())
    );
    (record, id)
}

/// Asserts an API error answer: its status and `error.code`; returns the
/// `error` object.
pub fn assert_error(response: &TestResponse, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(response.status, status, "{}", response.text());
    let error = response.json()["error"].clone();
    assert_eq!(error["code"], code, "{error}");
    error
}

/// A signed-in page client for a new staff member `name` with `role`.
impl TestApp {
    pub async fn signed_in(&self, name: &str, role: ispd::staff::Role) -> TestBrowser<'_> {
        let password = self.create_staff(name, role).await;
        let mut browser = TestBrowser::new(self);
        browser.sign_in(name, &password).await;
        browser
    }
}

/// The id at the end of a redirect's Location, e.g. /ipam/pools/3 -> 3.
pub fn location_id(response: &TestResponse) -> String {
    assert_eq!(
        response.status,
        303,
        "expected a redirect: {}",
        response.text()
    );
    let location = response.header("location").expect("a Location header");
    location.rsplit('/').next().unwrap().to_string()
}

/// An app with an operator's and a viewer's API token, and calls made
/// with them: `send` and the verb helpers as the operator, `view` as the
/// viewer.
pub struct ApiFixture {
    pub app: TestApp,
    pub op: String,
    pub viewer: String,
}

impl ApiFixture {
    pub async fn spawn(backend: Backend) -> Option<ApiFixture> {
        Self::spawn_with(backend, &[]).await
    }

    pub async fn spawn_with(backend: Backend, vars: &[(&str, &str)]) -> Option<ApiFixture> {
        let app = TestApp::spawn_with(backend, vars).await?;
        let op = app.create_token(ispd::staff::Role::Operator).await;
        let viewer = app.create_token(ispd::staff::Role::Viewer).await;
        Some(ApiFixture { app, op, viewer })
    }

    /// A call as the operator.
    pub async fn send(
        &self,
        method: axum::http::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> TestResponse {
        self.app.api(method, path, &self.op, body).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> TestResponse {
        self.send(axum::http::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: serde_json::Value) -> TestResponse {
        self.send(axum::http::Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: serde_json::Value) -> TestResponse {
        self.send(axum::http::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> TestResponse {
        self.send(axum::http::Method::DELETE, path, None).await
    }

    /// Creates through a POST as the operator, asserting a 201; returns
    /// the new record's id.
    pub async fn created_id(&self, path: &str, body: serde_json::Value) -> i64 {
        let response = self.post(path, body).await;
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()["id"].as_i64().unwrap()
    }

    /// A GET as the viewer.
    pub async fn view(&self, path: &str) -> TestResponse {
        self.app.get_as(path, &self.viewer).await
    }
}

impl ApiFixture {
    /// Adds a MikroTik router at `addr` through the API; returns its id.
    pub async fn add_router(
        &self,
        name: &str,
        addr: std::net::SocketAddr,
        username: &str,
        password: &str,
    ) -> i64 {
        self.created_id(
            "/api/v1/mikrotik/routers",
            serde_json::json!({"name": name, "ip_address": addr.ip().to_string(),
                "api_port": addr.port(), "username": username, "password": password}),
        )
        .await
    }
}

/// The IPAM settings the tests run the services with.
pub fn ipam_settings() -> ispd::ipam::service::IpamSettings {
    ispd::ipam::service::IpamSettings {
        lock_timeout: Duration::from_secs(10),
    }
}

/// A package "Home 20": 20M down, 5M up, RADIUS group "home-20".
pub fn home_20() -> ispd::users::service::PackageInput {
    ispd::users::service::PackageInput {
        name: "Home 20".into(),
        download_rate: "20M".into(),
        upload_rate: "5M".into(),
        radius_group: "home-20".into(),
        ..Default::default()
    }
}

/// A PPPoE user `username` with `password` on package `package_id`.
pub fn pppoe_user(
    username: &str,
    password: &str,
    package_id: i32,
) -> ispd::users::service::UserInput {
    ispd::users::service::UserInput {
        username: username.into(),
        password: Some(ispd::crypto::Secret::new(password)),
        service_type: "pppoe".into(),
        package_id: Some(package_id),
        ..Default::default()
    }
}

/// The users service, called as the system.
impl TestApp {
    pub async fn create_package(
        &self,
        input: &ispd::users::service::PackageInput,
    ) -> Result<ispd::users::entities::service_package::Model, ispd::users::service::UsersError>
    {
        ispd::users::service::create_package(self.db(), &ispd::audit::Actor::system(), input).await
    }

    pub async fn create_user(
        &self,
        input: &ispd::users::service::UserInput,
    ) -> Result<ispd::users::entities::network_user::Model, ispd::users::service::UsersError> {
        ispd::users::service::create_user(
            self.db(),
            &self.state.app_key,
            ipam_settings(),
            &ispd::audit::Actor::system(),
            input,
        )
        .await
    }

    pub async fn update_user(
        &self,
        id: i32,
        input: &ispd::users::service::UserInput,
    ) -> Result<ispd::users::service::UserWrite, ispd::users::service::UsersError> {
        ispd::users::service::update_user(
            self.db(),
            &self.state.app_key,
            &self.state.router_pool,
            ipam_settings(),
            &ispd::audit::Actor::system(),
            id,
            input,
        )
        .await
    }
}

/// Form fields: `base` without the fields `changes` names, then `changes`.
pub fn with<'a>(
    base: &[(&'a str, &'a str)],
    changes: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut fields: Vec<(&str, &str)> = base
        .iter()
        .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
        .copied()
        .collect();
    fields.extend_from_slice(changes);
    fields
}

/// The inline message of `field` in a form with id prefix `form`; panics
/// when the page shows none.
pub fn inline_message<'a>(html: &'a str, form: &str, field: &str) -> &'a str {
    let marker = format!("id=\"{form}-{field}-error\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no inline message for {field}: {html}"));
    &html[start..start + html[start..].find("</p>").unwrap()]
}

/// Asserts that the inline message of `field` contains `part`.
pub fn assert_inline(html: &str, form: &str, field: &str, part: &str) {
    let message = inline_message(html, form, field);
    assert!(message.contains(part), "{field}: {message} lacks {part:?}");
}

/// [`assert_error`], and that the error's message contains `part`.
pub fn assert_error_says(
    response: &TestResponse,
    status: u16,
    code: &str,
    part: &str,
) -> serde_json::Value {
    let error = assert_error(response, status, code);
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(part), "{error}");
    error
}
