//! ispd against a real FreeRADIUS 3.2 (Debian's `freeradius` package), on
//! PostgreSQL and MariaDB: users written by ispd are accepted or rejected
//! by FreeRADIUS's own SQL queries, its accounting lands in our `radacct`,
//! and a pretend NAS answers Disconnect-Request.
//!
//! [`FreeRadius`] is the harness: a private copy of `/etc/freeradius/3.0`
//! whose `sql` module points at the test's RADIUS database, started on free
//! UDP ports and killed on drop. Other modules use it, e.g.
//!
//! ```ignore
//! let Some(app) = TestApp::spawn(backend).await else { return };
//! let Some(radius) = FreeRadius::start(&app).await else { return };
//! let reply = radius.authenticate_pap("alice", "secret").await;
//! assert_eq!(reply.code, "Access-Accept", "{reply}");
//! // ispd's Disconnect-Request goes to radius.coa_addr() with radius.secret().
//! ```
//!
//! What the copy changes, and nothing else (docs/DEPLOYMENT.md shows the
//! same settings for a production server):
//! - `radiusd.conf`: no `user`/`group` (it runs as whoever runs the tests),
//!   logs and run files in the temporary directory, `reject_delay = 0`,
//!   `proxy_requests = no`;
//! - `clients.conf`: one client, 127.0.0.1, with [`FreeRadius::secret`] and
//!   `nas_type = other`;
//! - `mods-available/sql` (enabled): the dialect and driver of the backend,
//!   the database, `read_clients = yes` (the `nas` table), a small pool; for
//!   MySQL the sample TLS block (which requires TLS) is commented out;
//! - `sites-enabled/default`: the stock server with `sql` instead of `-sql`
//!   (authorize, accounting, post-auth) and `sql` in `session` (so that
//!   `Simultaneous-Use` counts open sessions in radacct), listening on
//!   127.0.0.1 only; `inner-tunnel` is not enabled (its fixed debug port
//!   would collide between tests);
//! - `sites-enabled/ispd-test-nas`: the pretend NAS ([`NAS_SITE`]).
//!
//! The process runs with `TZ=UTC`, because FreeRADIUS reads the
//! `Expiration` ispd writes in its local time.
//!
//! Without the binaries the tests print `skipped` and pass; with
//! `TEST_REQUIRE_ALL_BACKENDS=1` (as in `.ci/run`) they fail.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp, TestResponse};

/// The stock configuration the harness copies.
pub const STOCK_RADDB: &str = "/etc/freeradius/3.0";

/// The pretend NAS's virtual server (`@COA_PORT@` is filled in).
pub const NAS_SITE: &str = include_str!("freeradius/nas-coa.conf");

/// The value the stock post-auth query writes into radpostauth.pass, and
/// what ispd's deployment writes instead (deploy/freeradius/README.md).
pub const POSTAUTH_PASSWORD_STOCK: &str = "'%{%{User-Password}:-%{Chap-Password}}'";
pub const POSTAUTH_PASSWORD_ISPD: &str = "''";

/// How long FreeRADIUS may take to say "Ready to process requests".
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `async fn $name(backend: Backend)` on PostgreSQL and MariaDB (the
/// backends a production FreeRADIUS uses), as `$name::postgres` and
/// `$name::mariadb`.
#[macro_export]
macro_rules! on_server_backends {
    ($name:ident) => {
        $crate::test_each!(
            $name,
            2,
            postgres => Backend::Postgres,
            mariadb => Backend::MySql,
        );
    };
}

// ------------------------------------------------------------ the harness

/// The pieces of a database URL FreeRADIUS's sql module needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlTarget {
    /// `postgresql` or `mysql`.
    pub dialect: &'static str,
    pub host: String,
    pub port: u16,
    pub login: String,
    pub password: String,
    pub database: String,
}

impl SqlTarget {
    /// From a `postgres://` or `mysql://` URL, as ispd's RADIUS_DATABASE_URL.
    pub fn from_url(url: &str) -> SqlTarget {
        let (scheme, rest) = url
            .split_once("://")
            .unwrap_or_else(|| panic!("not a database URL: {url}"));
        let (dialect, default_port) = match scheme {
            "postgres" | "postgresql" => ("postgresql", 5432),
            "mysql" | "mariadb" => ("mysql", 3306),
            other => panic!("FreeRADIUS has no SQL dialect for {other}:// here"),
        };
        let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
        let (authority, database) = rest
            .split_once('/')
            .unwrap_or_else(|| panic!("no database name in {url}"));
        let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
        let (login, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().expect("port")),
            None => (hostport, default_port),
        };
        SqlTarget {
            dialect,
            host: percent_decode(host),
            port,
            login: percent_decode(login),
            password: percent_decode(password),
            database: percent_decode(database),
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("UTF-8 URL part")
}

/// A quoted string for FreeRADIUS's configuration files.
fn conf_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The role FreeRADIUS logs in as in these tests (its password is the
/// same), made by tests/setup like the test roles; [`FreeRadius::start`]
/// gives it the grants of deploy/freeradius on the test's RADIUS database.
pub const FREERADIUS_ROLE: &str = "ispd_test_freeradius";

const GRANTS_POSTGRESQL: &str = include_str!("../../deploy/freeradius/grants.postgresql.sql");
const GRANTS_MYSQL: &str = include_str!("../../deploy/freeradius/grants.mysql.sql");

/// The statements of a grants file, with the role of the tests.
fn grant_statements(backend: Backend) -> Vec<String> {
    let (text, role) = match backend {
        Backend::Postgres => (GRANTS_POSTGRESQL, FREERADIUS_ROLE.to_string()),
        _ => (GRANTS_MYSQL, format!("'{FREERADIUS_ROLE}'@'%'")),
    };
    let placeholder = match backend {
        Backend::Postgres => "TO freeradius",
        _ => "TO 'freeradius'@'%'",
    };
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(|statement| {
            assert!(statement.contains(placeholder), "{statement}");
            statement.replace(placeholder, &format!("TO {role}"))
        })
        .collect()
}

/// Applies deploy/freeradius's grants for [`FREERADIUS_ROLE`] to the app's
/// RADIUS database and returns the URL FreeRADIUS logs in with.
async fn grant_freeradius_role(app: &TestApp) -> String {
    let db = &app.state.db.radius;
    let backend = match db.get_database_backend() {
        DbBackend::Postgres => Backend::Postgres,
        DbBackend::MySql => Backend::MySql,
        other => panic!("FreeRADIUS has no SQL dialect for {other:?} here"),
    };
    for statement in grant_statements(backend) {
        db.execute_unprepared(&statement).await.unwrap_or_else(|e| {
            panic!(
                "{statement}: {e} (the role {FREERADIUS_ROLE} is made by tests/setup, \
                 as .ci/run and make test run it)"
            )
        });
    }
    let url = &app.state.config.radius_database_url;
    let (scheme, rest) = url.split_once("://").expect("a database URL");
    let (_, hostpart) = rest.rsplit_once('@').unwrap_or(("", rest));
    format!("{scheme}://{FREERADIUS_ROLE}:{FREERADIUS_ROLE}@{hostpart}")
}

/// The executables the harness runs; `None` (after a message) when
/// FreeRADIUS is not installed and the tests may skip.
pub fn binaries() -> Option<(PathBuf, PathBuf)> {
    let find = |name: &str| -> Option<PathBuf> {
        let path = std::env::var("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/usr/bin".into()])
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    };
    match (find("freeradius"), find("radclient")) {
        (Some(server), Some(client)) if Path::new(STOCK_RADDB).is_dir() => Some((server, client)),
        _ => {
            let message = "FreeRADIUS is not installed (apt-get install freeradius \
                 freeradius-postgresql freeradius-mysql freeradius-utils; .ci/run does)";
            if std::env::var("TEST_REQUIRE_ALL_BACKENDS").as_deref() == Ok("1") {
                panic!("{message}, and TEST_REQUIRE_ALL_BACKENDS=1");
            }
            eprintln!("skipped: {message}");
            None
        }
    }
}

/// A FreeRADIUS server for one test, on its own copy of the configuration.
/// Dropping it kills the server; if the test is failing, its log is printed
/// first.
pub struct FreeRadius {
    child: Child,
    dir: tempfile::TempDir,
    radclient: PathBuf,
    log_path: PathBuf,
    auth_port: u16,
    acct_port: u16,
    coa_port: u16,
    secret: String,
}

/// Settings of [`FreeRadius::start_with`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// The RADIUS database, as ispd's RADIUS_DATABASE_URL.
    pub database_url: String,
    /// `-xx` debug output in the log: every request, module by module.
    pub debug: bool,
}

// The harness's API: not every accessor is used in this module.
#[allow(dead_code)]
impl FreeRadius {
    /// FreeRADIUS over this app's RADIUS database (already migrated by
    /// [`TestApp::spawn`]); `None` when FreeRADIUS is not installed and the
    /// test may skip.
    ///
    /// It logs in as FreeRADIUS's own least-privilege role
    /// ([`FREERADIUS_ROLE`]), with the grants of deploy/freeradius, which
    /// this applies first.
    pub async fn start(app: &TestApp) -> Option<FreeRadius> {
        binaries()?;
        let database_url = grant_freeradius_role(app).await;
        Self::start_with(Settings {
            database_url,
            debug: true,
        })
        .await
    }

    pub async fn start_with(settings: Settings) -> Option<FreeRadius> {
        let (server, radclient) = binaries()?;
        let target = SqlTarget::from_url(&settings.database_url);
        let started = tokio::task::spawn_blocking(move || {
            // A port found free can be taken before FreeRADIUS binds it;
            // then try other ports.
            let mut last_log = String::new();
            for _ in 0..5 {
                match Self::try_start(&server, &radclient, &target, settings.debug) {
                    Ok(radius) => return radius,
                    Err(log) => last_log = log,
                }
            }
            panic!("FreeRADIUS found no free ports:\n{last_log}");
        })
        .await
        .expect("starting FreeRADIUS");
        Some(started)
    }

    /// Starts it; `Err(log)` when a port was taken meanwhile.
    fn try_start(
        server: &Path,
        radclient: &Path,
        target: &SqlTarget,
        debug: bool,
    ) -> Result<FreeRadius, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let raddb = dir.path().join("raddb");
        let copied = Command::new("cp")
            .args(["-a", STOCK_RADDB])
            .arg(&raddb)
            .output()
            .expect("running cp");
        assert!(
            copied.status.success(),
            "copying {STOCK_RADDB} failed (run the tests as root, or join the freerad group): {}",
            String::from_utf8_lossy(&copied.stderr)
        );
        let [auth_port, acct_port, coa_port] = free_udp_ports();
        let secret = format!("test-nas-secret-{}", std::process::id());
        configure(
            dir.path(),
            &raddb,
            target,
            &secret,
            [auth_port, acct_port, coa_port],
        );

        let log_path = dir.path().join("freeradius.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = Command::new(server);
        command
            .arg("-f")
            .arg("-d")
            .arg(&raddb)
            .args(["-l", "stdout"])
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        if debug {
            command.arg("-xx");
        }
        let child = command.spawn().expect("starting freeradius");
        let mut radius = FreeRadius {
            child,
            dir,
            radclient: radclient.to_path_buf(),
            log_path,
            auth_port,
            acct_port,
            coa_port,
            secret,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = radius.log();
            if log.contains("Ready to process requests") {
                return Ok(radius);
            }
            if let Some(status) = radius.child.try_wait().expect("freeradius status") {
                let log = radius.log();
                if log.contains("Address already in use") {
                    return Err(log);
                }
                // Dropping `radius` while panicking prints the log.
                panic!("FreeRADIUS exited ({status}) before it was ready");
            }
            if Instant::now() > deadline {
                panic!("FreeRADIUS was not ready after {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn auth_port(&self) -> u16 {
        self.auth_port
    }

    pub fn acct_port(&self) -> u16 {
        self.acct_port
    }

    /// The pretend NAS's Disconnect/CoA port.
    pub fn coa_port(&self) -> u16 {
        self.coa_port
    }

    pub fn auth_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.auth_port))
    }

    pub fn acct_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.acct_port))
    }

    /// Where ispd sends Disconnect-Request and CoA-Request.
    pub fn coa_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.coa_port))
    }

    /// The shared secret of client 127.0.0.1, for every port (a router
    /// uses one secret for its RADIUS requests and for incoming CoA).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The configuration directory (`raddb`) of this server.
    pub fn raddb(&self) -> PathBuf {
        self.dir.path().join("raddb")
    }

    /// Everything FreeRADIUS has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `max_bytes` of the log.
    fn log_tail(&self, max_bytes: u64) -> String {
        let Ok(mut file) = std::fs::File::open(&self.log_path) else {
            return String::new();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(max_bytes)));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Sends one packet with radclient and returns the reply. `kind` is
    /// radclient's: `auth`, `acct`, `disconnect` or `coa`.
    /// Values are quoted, so text with spaces is fine. Panics (printing the
    /// server's log) when no reply comes.
    pub async fn send(&self, kind: &str, attributes: &[(&str, &str)]) -> RadiusReply {
        let port = match kind {
            "auth" => self.auth_port,
            "acct" => self.acct_port,
            "disconnect" | "coa" => self.coa_port,
            other => panic!("radclient has no packet type {other}"),
        };
        let mut input = String::new();
        for (name, value) in attributes {
            input.push_str(&format!("{name} = {}\n", conf_string(value)));
        }
        let mut child = tokio::process::Command::new(&self.radclient)
            .arg("-x")
            .arg("-d")
            .arg(self.raddb())
            .args(["-r", "3", "-t", "3"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(kind)
            .arg(&self.secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running radclient");
        {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().expect("radclient stdin");
            stdin
                .write_all(input.as_bytes())
                .await
                .expect("radclient input");
        }
        let output = child.wait_with_output().await.expect("radclient output");
        let stdout = String::from_utf8_lossy(&output.stdout);
        RadiusReply::parse(&stdout).unwrap_or_else(|| {
            panic!(
                "no reply to {kind} {attributes:?}\nradclient: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
    }

    /// An Access-Request with User-Password (PAP) of exactly `password`.
    ///
    /// radclient resolves backslash escapes in a string attribute twice:
    /// once unquoting the input line, and again turning the text into the
    /// attribute's value. [`Self::send`] covers the first; the backslashes
    /// are doubled here for the second.
    pub async fn authenticate_pap(&self, username: &str, password: &str) -> RadiusReply {
        let password = password.replace('\\', "\\\\");
        self.send(
            "auth",
            &[("User-Name", username), ("User-Password", &password)],
        )
        .await
    }

    /// An Access-Request with CHAP-Password (radclient computes the CHAP
    /// response from the cleartext it is given, as `radtest -t chap`). The
    /// cleartext goes as hex: CHAP-Password is an octets attribute, which
    /// radclient takes byte for byte in that form.
    pub async fn authenticate_chap(&self, username: &str, password: &str) -> RadiusReply {
        let password = format!("0x{}", hex::encode(password.as_bytes()));
        self.send(
            "auth",
            &[("User-Name", username), ("CHAP-Password", &password)],
        )
        .await
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "----- FreeRADIUS log (last 64 KiB of {}) -----\n{}\n----- end of FreeRADIUS log -----",
                self.log_path.display(),
                self.log_tail(64 * 1024)
            );
        }
    }
}

/// Three UDP ports free on 127.0.0.1 right now.
fn free_udp_ports() -> [u16; 3] {
    let sockets: Vec<UdpSocket> = (0..3)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("a free UDP port"))
        .collect();
    let ports: Vec<u16> = sockets
        .iter()
        .map(|s| s.local_addr().expect("bound").port())
        .collect();
    [ports[0], ports[1], ports[2]]
}

/// Replaces `from` (which must occur exactly once) with `to`: a changed
/// stock file fails here, loudly, instead of running half configured.
fn replace_once(text: &str, from: &str, to: &str, file: &str) -> String {
    let count = text.matches(from).count();
    assert_eq!(
        count, 1,
        "{file}: expected {from:?} once, found it {count} times"
    );
    text.replacen(from, to, 1)
}

/// Replaces every line whose trimmed text is `from` with `to` (indented as
/// the line was); returns how many.
fn replace_lines(text: &str, from: &str, to: &str) -> (String, usize) {
    let mut count = 0;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.trim() == from {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(indent);
            out.push_str(to);
            count += 1;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    (out, count)
}

/// The code of a configuration line, without its comment.
fn code(line: &str) -> &str {
    line.split('#').next().unwrap_or("")
}

/// Removes every (uncommented) `listen { ... }` section.
fn strip_listen_sections(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0i32;
    for line in text.lines() {
        if depth == 0 && !code(line).trim().starts_with("listen {") {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let code = code(line);
        depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
    }
    out
}

/// Comments out the `section { ... }` block that starts at the first line
/// (after `after`) whose code is `section {`.
fn comment_out_block(text: &str, after: &str, section: &str, file: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| code(l).trim() == after)
        .unwrap_or_else(|| panic!("{file}: no {after:?}"));
    let open = format!("{section} {{");
    let first = (start..lines.len())
        .find(|&i| code(lines[i]).trim() == open)
        .unwrap_or_else(|| panic!("{file}: no {open:?} after {after:?}"));
    let mut depth = 0i32;
    let mut out = String::with_capacity(text.len());
    for (i, line) in lines.iter().enumerate() {
        if i >= first && (i == first || depth > 0) {
            let code = code(line);
            depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
            out.push('#');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn edit(path: &Path, change: impl FnOnce(String) -> String) {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    std::fs::write(path, change(text))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Turns the stock copy in `raddb` into the test server's configuration.
fn configure(root: &Path, raddb: &Path, target: &SqlTarget, secret: &str, ports: [u16; 3]) {
    let [auth_port, acct_port, coa_port] = ports;
    let log_dir = root.join("log");
    let run_dir = root.join("run");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    std::fs::create_dir_all(&run_dir).expect("run dir");

    let file = "radiusd.conf";
    edit(&raddb.join(file), |text| {
        let text = replace_once(
            &text,
            "\nlogdir = /var/log/freeradius\n",
            &format!("\nlogdir = {}\n", log_dir.display()),
            file,
        );
        let text = replace_once(
            &text,
            "\nrun_dir = ${localstatedir}/run/${name}\n",
            &format!("\nrun_dir = {}\n", run_dir.display()),
            file,
        );
        // Runs as the user who runs the tests; the copy is theirs.
        let text = replace_once(&text, "\tuser = freerad\n", "#\tuser = freerad\n", file);
        let text = replace_once(&text, "\tgroup = freerad\n", "#\tgroup = freerad\n", file);
        let text = replace_once(&text, "\treject_delay = 1\n", "\treject_delay = 0\n", file);
        replace_once(
            &text,
            "\nproxy_requests  = yes\n",
            "\nproxy_requests  = no\n",
            file,
        )
    });

    std::fs::write(
        raddb.join("clients.conf"),
        format!(
            "client ispd-test {{\n\tipaddr = 127.0.0.1\n\tsecret = {}\n\tshortname = ispd-test\n\tnas_type = other\n}}\n",
            conf_string(secret)
        ),
    )
    .expect("clients.conf");

    let file = "mods-available/sql";
    edit(&raddb.join(file), |text| {
        let mut text = text;
        for (from, to) in [
            (
                "\tdialect = \"sqlite\"\n".to_string(),
                format!("\tdialect = \"{}\"\n", target.dialect),
            ),
            (
                "\tdriver = \"rlm_sql_null\"\n".to_string(),
                "\tdriver = \"rlm_sql_${dialect}\"\n".to_string(),
            ),
            (
                "#\tserver = \"localhost\"\n".to_string(),
                format!("\tserver = {}\n", conf_string(&target.host)),
            ),
            (
                "#\tport = 3306\n".to_string(),
                format!("\tport = {}\n", target.port),
            ),
            (
                "#\tlogin = \"radius\"\n".to_string(),
                format!("\tlogin = {}\n", conf_string(&target.login)),
            ),
            (
                "#\tpassword = \"radpass\"\n".to_string(),
                format!("\tpassword = {}\n", conf_string(&target.password)),
            ),
            (
                "\tradius_db = \"radius\"\n".to_string(),
                format!("\tradius_db = {}\n", conf_string(&target.database)),
            ),
            (
                "#\tread_clients = yes\n".to_string(),
                "\tread_clients = yes\n".to_string(),
            ),
            // One connection at start, more on demand (up to the stock
            // maximum, one per thread): many servers run side by side in
            // the tests.
            (
                "\t\tstart = ${thread[pool].start_servers}\n".to_string(),
                "\t\tstart = 1\n".to_string(),
            ),
            (
                "\t\tmin = ${thread[pool].min_spare_servers}\n".to_string(),
                "\t\tmin = 1\n".to_string(),
            ),
            (
                "\t\tspare = ${thread[pool].max_spare_servers}\n".to_string(),
                "\t\tspare = 1\n".to_string(),
            ),
        ] {
            text = replace_once(&text, &from, &to, file);
        }
        // The sample TLS block sets tls_required = yes with sample paths.
        comment_out_block(&text, "mysql {", "tls", file)
    });
    // post-auth logs the login but not the password typed
    // (docs/DEPLOYMENT.md): the stock query writes a PAP password into
    // radpostauth.pass in clear, and on MySQL a long one, escaped, overflows
    // the column, which fails post-auth and so rejects a right password.
    let file = format!("mods-config/sql/main/{}/queries.conf", target.dialect);
    edit(&raddb.join(&file), |text| {
        replace_once(
            &text,
            POSTAUTH_PASSWORD_STOCK,
            POSTAUTH_PASSWORD_ISPD,
            &file,
        )
    });
    std::os::unix::fs::symlink("../mods-available/sql", raddb.join("mods-enabled/sql"))
        .expect("enabling sql");

    // Sites: only ours. The stock default server, adapted.
    for site in ["default", "inner-tunnel"] {
        std::fs::remove_file(raddb.join("sites-enabled").join(site))
            .unwrap_or_else(|e| panic!("disabling site {site}: {e}"));
    }
    let stock = std::fs::read_to_string(raddb.join("sites-available/default"))
        .expect("sites-available/default");
    let file = "sites-available/default";
    let text = strip_listen_sections(&stock);
    // `sql`, not `-sql`: a broken SQL setup fails instead of being skipped.
    let (text, enabled) = replace_lines(&text, "-sql", "sql");
    assert_eq!(
        enabled, 4,
        "{file}: expected -sql in authorize, accounting, post-auth and Post-Auth-Type REJECT"
    );
    let (text, sessions) = replace_lines(&text, "#\tsql", "sql");
    assert_eq!(sessions, 1, "{file}: expected a commented sql in session");
    let listen = format!(
        "server default {{\n\
         listen {{\n\ttype = auth\n\tipaddr = 127.0.0.1\n\tport = {auth_port}\n}}\n\
         listen {{\n\ttype = acct\n\tipaddr = 127.0.0.1\n\tport = {acct_port}\n}}\n"
    );
    let text = replace_once(&text, "\nserver default {\n", &format!("\n{listen}"), file);
    std::fs::write(raddb.join("sites-enabled/default"), text).expect("site default");
    std::fs::write(
        raddb.join("sites-enabled/ispd-test-nas"),
        NAS_SITE.replace("@COA_PORT@", &coa_port.to_string()),
    )
    .expect("site ispd-test-nas");
}

/// What radclient received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadiusReply {
    /// `Access-Accept`, `Access-Reject`, `Accounting-Response`,
    /// `Disconnect-ACK`, `Disconnect-NAK`, `CoA-ACK`, `CoA-NAK`...
    pub code: String,
    /// (name, value) in order, values without quotes.
    pub attributes: Vec<(String, String)>,
}

impl RadiusReply {
    /// From radclient -x output: the `Received <code> ...` line and the
    /// indented attributes under it.
    fn parse(output: &str) -> Option<RadiusReply> {
        let mut lines = output.lines().skip_while(|l| !l.starts_with("Received "));
        let code = lines.next()?.split_whitespace().nth(1)?.to_string();
        let attributes = lines
            .take_while(|l| l.starts_with('\t'))
            .filter_map(|l| l.trim().split_once(" = "))
            .map(|(name, value)| {
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                (name.to_string(), value.to_string())
            })
            .collect();
        Some(RadiusReply { code, attributes })
    }

    /// The first value of this attribute.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for RadiusReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        for (name, value) in &self.attributes {
            write!(f, "\n\t{name} = {value}")?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------ the tests

const PASSWORD: &str = "Chap-and-pap 2 secret";

/// The app, an operator token, and FreeRADIUS over the app's RADIUS DB.
struct Fixture {
    // Dropped first: FreeRADIUS stops before its database is dropped.
    radius: FreeRadius,
    app: TestApp,
    token: String,
}

async fn spawn(backend: Backend) -> Option<Fixture> {
    binaries()?;
    let app = TestApp::spawn(backend).await?;
    let token = app.create_token(ispd::staff::Role::Operator).await;
    let radius = FreeRadius::start(&app).await?;
    Some(Fixture { radius, app, token })
}

impl Fixture {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> TestResponse {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.token));
        let body = match body {
            Some(value) => {
                request = request.header("content-type", "application/json");
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        self.app.send(request.body(body).unwrap()).await
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let response = self.call(method.clone(), path, body).await;
        assert!(
            response.status.is_success(),
            "{method} {path}: {} {}",
            response.status,
            response.text()
        );
        if response.body.is_empty() {
            Value::Null
        } else {
            response.json()
        }
    }

    /// A package with rates, burst, a session timeout and one session at a
    /// time.
    async fn package(&self) -> Value {
        self.ok(
            Method::POST,
            "/api/v1/packages",
            Some(
                json!({"name": "Home 20M", "download_rate": "20M", "upload_rate": "5M",
                "burst_download_rate": "30M", "burst_upload_rate": "8M",
                "burst_threshold_download": "15M", "burst_threshold_upload": "4M",
                "burst_time_secs": 10, "session_timeout_secs": 86400, "simultaneous_use": 1,
                "radius_group": "home-20m", "mikrotik_profile": "home-20m"}),
            ),
        )
        .await
    }

    /// A pool and a /29 with its gateway at .1: the first user gets .2.
    async fn subnet(&self) -> i64 {
        let pool = self
            .ok(
                Method::POST,
                "/api/v1/ipam/pools",
                Some(json!({"name": "static", "start_ip": "100.64.0.0", "end_ip": "100.64.0.255"})),
            )
            .await;
        let subnet = self
            .ok(
                Method::POST,
                "/api/v1/ipam/subnets",
                Some(json!({"pool_id": pool["id"], "network": "100.64.0.0/29",
                            "gateway": "100.64.0.1"})),
            )
            .await;
        subnet["id"].as_i64().unwrap()
    }

    /// A static user of `package` in `subnet`, through the API.
    async fn static_user(&self, username: &str, package: &Value, subnet: i64) -> Value {
        self.ok(
            Method::POST,
            "/api/v1/users",
            Some(
                json!({"username": username, "password": PASSWORD, "service_type": "static",
                "package_id": package["id"], "static_subnet_id": subnet}),
            ),
        )
        .await
    }

    /// Replaces the user (PUT) with these fields changed; the password
    /// stays.
    async fn change_user(&self, user: &Value, subnet: i64, changes: Value) -> Value {
        let mut body = json!({"username": user["username"], "service_type": user["service_type"],
            "package_id": user["package_id"], "static_subnet_id": subnet,
            "static_ip": user["static_ip"], "status": user["status"],
            "expires_at": user["expires_at"]});
        for (key, value) in changes.as_object().unwrap() {
            body[key] = value.clone();
        }
        self.ok(
            Method::PUT,
            &format!("/api/v1/users/{}", user["id"]),
            Some(body),
        )
        .await
    }

    /// What `ispd radius sync-users` does: writes the pending changes into
    /// the RADIUS DB.
    async fn sync(&self) {
        let report = ispd::radius::service::sync_all(
            &self.app.state.db.main,
            &self.app.state.db.radius,
            &self.app.state.app_key,
            false,
        )
        .await
        .expect("RADIUS sync");
        assert!(report.failed.is_empty(), "{report}");
    }

    /// `GET /api/v1/radius/online?q=`: the open sessions.
    async fn online(&self, q: &str) -> Vec<Value> {
        let page = self
            .ok(Method::GET, &format!("/api/v1/radius/online?q={q}"), None)
            .await;
        page["data"].as_array().expect("a page").clone()
    }

    async fn assert_accepted(&self, username: &str, why: &str) -> RadiusReply {
        let reply = self.radius.authenticate_pap(username, PASSWORD).await;
        assert_eq!(reply.code, "Access-Accept", "{why}: {reply}");
        reply
    }

    async fn assert_rejected(&self, username: &str, why: &str) {
        let reply = self.radius.authenticate_pap(username, PASSWORD).await;
        assert_eq!(reply.code, "Access-Reject", "{why}: {reply}");
    }
}

/// A session of the API (`SessionView`): its id, address and times.
fn assert_session(view: &Value, session: &str, ip: &str, started: i64, stopped: Option<i64>) {
    let epoch = |v: &Value| {
        v.as_str().map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .timestamp()
        })
    };
    assert_eq!(view["acct_session_id"], session, "{view}");
    assert_eq!(view["username"], "carol", "{view}");
    assert_eq!(view["nas_ip"], "127.0.0.1", "{view}");
    assert_eq!(view["framed_ip"], ip, "{view}");
    assert_eq!(view["calling_station_id"], "AA:BB:CC:DD:EE:01", "{view}");
    assert_eq!(epoch(&view["started_at"]), Some(started), "{view}");
    assert_eq!(epoch(&view["stopped_at"]), stopped, "{view}");
}

fn assert_reply(reply: &RadiusReply, expected: &[(&str, &str)]) {
    let mut got: Vec<(&str, &str)> = reply
        .attributes
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    got.sort();
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(got, expected, "reply attributes of {}", reply.code);
}

async fn a_user_made_through_the_api_is_accepted_with_pap_and_chap_and_gets_its_package(
    backend: Backend,
) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = f.package().await;
    assert_eq!(package["rate_limit"], "5M/20M 8M/30M 4M/15M 10/10");
    let subnet = f.subnet().await;
    let user = f.static_user("alice", &package, subnet).await;
    assert_eq!(user["static_ip"], "100.64.0.2");

    // Written to the RADIUS DB by the create itself: no sync needed.
    assert_eq!(user["radius_sync_pending"], false, "{user}");
    f.assert_accepted("alice", "right after the create").await;
    // Syncing again on demand finds nothing to change.
    let synced = f
        .ok(
            Method::POST,
            &format!("/api/v1/users/{}/sync-radius", user["id"]),
            None,
        )
        .await;
    assert_eq!(synced["radius_sync_pending"], false, "{synced}");
    assert_eq!(synced["outcome"], "unchanged", "{synced}");

    // Exactly the package's and the address's attributes, and nothing else.
    let expected = [
        ("Framed-IP-Address", "100.64.0.2"),
        ("Mikrotik-Rate-Limit", "5M/20M 8M/30M 4M/15M 10/10"),
        ("Session-Timeout", "86400"),
        ("Acct-Interim-Interval", "300"),
    ];
    let pap = f.assert_accepted("alice", "PAP").await;
    assert_reply(&pap, &expected);
    let chap = f.radius.authenticate_chap("alice", PASSWORD).await;
    assert_eq!(chap.code, "Access-Accept", "CHAP: {chap}");
    assert_reply(&chap, &expected);

    let wrong_chap = f
        .radius
        .authenticate_chap("alice", "not the password")
        .await;
    assert_eq!(wrong_chap.code, "Access-Reject", "{wrong_chap}");

    // post-auth logged both outcomes through sql into our radpostauth.
    let rows = f
        .app
        .state
        .db
        .radius
        .query_all_raw(Statement::from_string(
            f.app.state.db.radius.get_database_backend(),
            "SELECT reply FROM radpostauth WHERE username = 'alice' ORDER BY id",
        ))
        .await
        .unwrap();
    let replies: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "reply").unwrap())
        .collect();
    assert_eq!(
        replies,
        [
            "Access-Accept",
            "Access-Accept",
            "Access-Accept",
            "Access-Reject"
        ]
    );

    // read_clients: a NAS registered through ispd's API is a client of a
    // FreeRADIUS started afterwards (FreeRADIUS's client_query over our
    // nas table).
    f.ok(
        Method::POST,
        "/api/v1/nas",
        Some(
            json!({"nasname": "192.0.2.1", "shortname": "bras-1", "type": "mikrotik",
            "secret": "a-long-shared-secret"}),
        ),
    )
    .await;
    let restarted = FreeRadius::start(&f.app).await.unwrap();
    let log = restarted.log();
    assert!(
        log.contains("Adding client 192.0.2.1 (bras-1)")
            && log.contains("Client \"bras-1\" (sql) added"),
        "the NAS is not a client:\n{log}"
    );
}
on_server_backends!(a_user_made_through_the_api_is_accepted_with_pap_and_chap_and_gets_its_package);

async fn wrong_passwords_and_suspended_expired_and_deleted_users_are_rejected(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = f.package().await;
    let subnet = f.subnet().await;
    let user = f.static_user("bob", &package, subnet).await;
    f.assert_accepted("bob", "a new active user").await;

    let wrong = f
        .radius
        .authenticate_pap("bob", "Chap-and-pap 2 secreT")
        .await;
    assert_eq!(wrong.code, "Access-Reject", "wrong password: {wrong}");
    let nobody = f.radius.authenticate_pap("nobody", PASSWORD).await;
    assert_eq!(nobody.code, "Access-Reject", "unknown user: {nobody}");

    let suspended = f
        .change_user(&user, subnet, json!({"status": "suspended"}))
        .await;
    f.assert_rejected("bob", "suspended").await;
    let chap = f.radius.authenticate_chap("bob", PASSWORD).await;
    assert_eq!(chap.code, "Access-Reject", "suspended, CHAP: {chap}");

    let active = f
        .change_user(&suspended, subnet, json!({"status": "active"}))
        .await;
    f.assert_accepted("bob", "reactivated").await;

    // An expiry in the past: ispd adds Auth-Type := Reject.
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let expired = f
        .change_user(&active, subnet, json!({"expires_at": past}))
        .await;
    f.assert_rejected("bob", "expired an hour ago").await;

    // An expiry 2 to 3 seconds ahead (whole seconds): accepted now; then,
    // with no further write, FreeRADIUS's expiration module refuses it on
    // its own from the Expiration value ispd wrote (so its format and time
    // zone are right).
    let soon = chrono::Utc::now() + chrono::Duration::seconds(3);
    let soon_text = soon.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    f.change_user(&expired, subnet, json!({"expires_at": soon_text}))
        .await;
    let reply = f.assert_accepted("bob", "expires in 2 to 3 s").await;
    // rlm_expiration caps the session at the time left.
    let timeout: i64 = reply.get("Session-Timeout").unwrap().parse().unwrap();
    assert!((0..=3).contains(&timeout), "{reply}");
    let wait = (soon + chrono::Duration::milliseconds(1100)) - chrono::Utc::now();
    tokio::time::sleep(wait.to_std().unwrap_or_default()).await;
    f.assert_rejected("bob", "past its Expiration, not re-synced")
        .await;

    f.ok(
        Method::DELETE,
        &format!("/api/v1/users/{}", user["id"]),
        None,
    )
    .await;
    f.assert_rejected("bob", "deleted").await;
    let rows = ispd::radius::service::current_user_rows(&f.app.state.db.radius, "bob")
        .await
        .unwrap();
    assert!(rows.is_empty(), "{rows:?}");
}
on_server_backends!(wrong_passwords_and_suspended_expired_and_deleted_users_are_rejected);

/// Passwords that rlm_sql would read as something else if they were
/// stored as typed: wrapped in quotes (unquoted), in backticks (expanded
/// as an xlat, so `%{User-Name}` becomes the password and `%{sql:...}` runs
/// SQL), with backslash escapes, spaces at the ends, or unicode.
const PASSWORDS_FREERADIUS_COULD_MISREAD: &[&str] = &[
    "`%{User-Name}`",
    "'abcdefgh'",
    "\"abcdefgh\"",
    "`abcdefgh`",
    "`%{sql:SELECT 1}`",
    "'starts with a quote",
    "ends with a quote'",
    "%{User-Name} and %{sql:SELECT 1}",
    "back\\slash \\n \\t \\\\ \\101 \\x41",
    "  spaces at both ends  ",
    "pässwörd-ünïcode-密码",
    "'mixed\" quotes`",
    "\"\\\"escaped\\\"\"",
    "'''''''''",
];

/// A long password of backslashes between quotes: its stored form is
/// longer than what FreeRADIUS reads from it.
fn long_quoted_password() -> String {
    format!("'{}'", "\\".repeat(60))
}

async fn every_password_is_accepted_exactly_as_set_with_pap_and_chap(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = f.package().await;
    let mut passwords: Vec<String> = PASSWORDS_FREERADIUS_COULD_MISREAD
        .iter()
        .map(|p| p.to_string())
        .collect();
    passwords.push(long_quoted_password());
    for (i, password) in passwords.iter().enumerate() {
        let username = format!("literal{i}");
        f.ok(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": username, "password": password,
                        "service_type": "pppoe", "package_id": package["id"]})),
        )
        .await;
        let pap = f.radius.authenticate_pap(&username, password).await;
        assert_eq!(pap.code, "Access-Accept", "PAP with {password:?}: {pap}");
        let chap = f.radius.authenticate_chap(&username, password).await;
        assert_eq!(chap.code, "Access-Accept", "CHAP with {password:?}: {chap}");
        // Not what FreeRADIUS would have made of it.
        for misreading in [
            username.as_str(),
            password.trim_matches(|c| matches!(c, '\'' | '"' | '`')),
            "1",
        ] {
            if misreading != password {
                let wrong = f.radius.authenticate_pap(&username, misreading).await;
                assert_eq!(
                    wrong.code, "Access-Reject",
                    "{password:?} is also accepted as {misreading:?}: {wrong}"
                );
            }
        }
    }
    // FreeRADIUS's role reads the users but cannot change them, nor
    // delete accounting.
    let role = ispd::db::connect(&grant_freeradius_role(&f.app).await, Duration::from_secs(5))
        .await
        .expect("connecting as FreeRADIUS's role");
    let read = role.execute_unprepared("SELECT value FROM radcheck").await;
    assert!(read.is_ok(), "{read:?}");
    for statement in [
        "UPDATE radcheck SET value = 'x'",
        "INSERT INTO radusergroup (username, groupname, priority) VALUES ('x', 'x', 1)",
        "DELETE FROM radacct",
        "DELETE FROM radpostauth",
    ] {
        let refused = role.execute_unprepared(statement).await;
        assert!(refused.is_err(), "{statement} was allowed: {refused:?}");
    }
    role.close().await.ok();

    // A re-sync finds every stored value already right.
    let report = ispd::radius::service::sync_all(
        &f.app.state.db.main,
        &f.app.state.db.radius,
        &f.app.state.app_key,
        true,
    )
    .await
    .expect("RADIUS dry run");
    assert_eq!(report.drift(), 0, "{report}");
}
on_server_backends!(every_password_is_accepted_exactly_as_set_with_pap_and_chap);

/// One radacct row, read back with portable SQL.
#[derive(Debug, PartialEq, Eq)]
struct AcctRow {
    session_id: String,
    username: String,
    nas_ip: String,
    framed_ip: String,
    input_octets: i64,
    output_octets: i64,
    session_time: i64,
    start: Option<i64>,
    update: Option<i64>,
    stop: Option<i64>,
    terminate_cause: String,
}

async fn radacct_rows(app: &TestApp, session_id: &str) -> Vec<AcctRow> {
    let db = &app.state.db.radius;
    let backend = db.get_database_backend();
    // PostgreSQL: inet as text without the /32 (host()), timestamptz as
    // epoch seconds. MySQL: varchar addresses; datetime read back in UTC
    // (sqlx sets the session time zone to +00:00; FreeRADIUS wrote local
    // time, so its server must run in UTC).
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT acctsessionid, username, host(nasipaddress) AS nas_ip, \
             host(framedipaddress) AS framed_ip, acctinputoctets, acctoutputoctets, \
             acctsessiontime, CAST(EXTRACT(EPOCH FROM acctstarttime) AS bigint) AS start_at, \
             CAST(EXTRACT(EPOCH FROM acctupdatetime) AS bigint) AS update_at, \
             CAST(EXTRACT(EPOCH FROM acctstoptime) AS bigint) AS stop_at, \
             COALESCE(acctterminatecause, '') AS terminate_cause \
             FROM radacct WHERE acctsessionid = $1 ORDER BY radacctid"
        }
        _ => {
            "SELECT acctsessionid, username, nasipaddress AS nas_ip, \
             framedipaddress AS framed_ip, acctinputoctets, acctoutputoctets, \
             CAST(acctsessiontime AS SIGNED) AS acctsessiontime, \
             CAST(UNIX_TIMESTAMP(acctstarttime) AS SIGNED) AS start_at, \
             CAST(UNIX_TIMESTAMP(acctupdatetime) AS SIGNED) AS update_at, \
             CAST(UNIX_TIMESTAMP(acctstoptime) AS SIGNED) AS stop_at, \
             acctterminatecause AS terminate_cause \
             FROM radacct WHERE acctsessionid = ? ORDER BY radacctid"
        }
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [session_id.into()],
        ))
        .await
        .expect("reading radacct");
    rows.iter()
        .map(|r| AcctRow {
            session_id: r.try_get("", "acctsessionid").unwrap(),
            username: r.try_get("", "username").unwrap(),
            nas_ip: r.try_get("", "nas_ip").unwrap(),
            framed_ip: r.try_get("", "framed_ip").unwrap(),
            input_octets: r.try_get("", "acctinputoctets").unwrap(),
            output_octets: r.try_get("", "acctoutputoctets").unwrap(),
            session_time: r.try_get("", "acctsessiontime").unwrap(),
            start: r.try_get("", "start_at").unwrap(),
            update: r.try_get("", "update_at").unwrap(),
            stop: r.try_get("", "stop_at").unwrap(),
            terminate_cause: r.try_get("", "terminate_cause").unwrap(),
        })
        .collect()
}

/// The attributes a NAS repeats in every accounting packet of a session
/// (FreeRADIUS's Acct-Unique-Session-Id is a hash of some of them).
fn session_attributes<'a>(
    username: &'a str,
    session_id: &'a str,
    framed_ip: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("User-Name", username),
        ("Acct-Session-Id", session_id),
        ("NAS-IP-Address", "127.0.0.1"),
        ("NAS-Port-Id", "pppoe-ether2"),
        ("NAS-Port-Type", "Ethernet"),
        ("Calling-Station-Id", "AA:BB:CC:DD:EE:01"),
        ("Framed-IP-Address", framed_ip),
        ("Framed-Protocol", "PPP"),
        ("Service-Type", "Framed-User"),
    ]
}

/// `base` and then `extra`.
fn packet<'a>(
    base: &[(&'a str, &'a str)],
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    base.iter().chain(extra).copied().collect()
}

async fn accounting_start_interim_and_stop_land_in_our_radacct(backend: Backend) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = f.package().await;
    let subnet = f.subnet().await;
    let user = f.static_user("carol", &package, subnet).await;
    let ip = user["static_ip"].as_str().unwrap().to_string();
    f.sync().await;
    f.assert_accepted("carol", "before the session").await;

    let session = "81b00001";
    let started = chrono::Utc::now().timestamp() - 900;
    let (t_start, t_interim, t_stop) = (
        started.to_string(),
        (started + 300).to_string(),
        (started + 600).to_string(),
    );
    let base = session_attributes("carol", session, &ip);

    let start = packet(
        &base,
        &[("Acct-Status-Type", "Start"), ("Event-Timestamp", &t_start)],
    );
    let reply = f.radius.send("acct", &start).await;
    assert_eq!(reply.code, "Accounting-Response", "{reply}");
    let rows = radacct_rows(&f.app, session).await;
    assert_eq!(
        rows,
        [AcctRow {
            session_id: session.into(),
            username: "carol".into(),
            nas_ip: "127.0.0.1".into(),
            framed_ip: ip.clone(),
            input_octets: 0,
            output_octets: 0,
            session_time: 0,
            start: Some(started),
            update: Some(started),
            stop: None,
            terminate_cause: String::new(),
        }]
    );

    // One session open and Simultaneous-Use := 1 in the package's group:
    // FreeRADIUS's session check (sql, over radacct) refuses a second login.
    f.assert_rejected("carol", "a second session while one is open")
        .await;

    // ispd's read-back API sees it online.
    let online = f.online("carol").await;
    assert_eq!(online.len(), 1, "{online:?}");
    assert_session(&online[0], session, &ip, started, None);
    assert_eq!(online[0]["open"], true);

    // Octets past 4 GiB: 2 * 2^32 + 1000 in, 1 * 2^32 + 3000 out.
    let interim = packet(
        &base,
        &[
            ("Acct-Status-Type", "Interim-Update"),
            ("Event-Timestamp", &t_interim),
            ("Acct-Session-Time", "300"),
            ("Acct-Input-Octets", "1000"),
            ("Acct-Input-Gigawords", "2"),
            ("Acct-Output-Octets", "3000"),
            ("Acct-Output-Gigawords", "1"),
        ],
    );
    let reply = f.radius.send("acct", &interim).await;
    assert_eq!(reply.code, "Accounting-Response", "{reply}");
    let rows = radacct_rows(&f.app, session).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].input_octets, 2 * (1 << 32) + 1000);
    assert_eq!(rows[0].output_octets, (1 << 32) + 3000);
    assert_eq!(rows[0].session_time, 300);
    assert_eq!(rows[0].update, Some(started + 300));
    assert_eq!(rows[0].stop, None);
    let online = f.online("carol").await;
    assert_eq!(online.len(), 1, "{online:?}");
    assert_eq!(online[0]["input_octets"], 2 * (1_i64 << 32) + 1000);
    assert_eq!(online[0]["output_octets"], (1_i64 << 32) + 3000);
    assert_eq!(online[0]["session_time_secs"], 300);

    let stop = packet(
        &base,
        &[
            ("Acct-Status-Type", "Stop"),
            ("Event-Timestamp", &t_stop),
            ("Acct-Session-Time", "600"),
            ("Acct-Input-Octets", "5000"),
            ("Acct-Input-Gigawords", "3"),
            ("Acct-Output-Octets", "7000"),
            ("Acct-Output-Gigawords", "1"),
            ("Acct-Terminate-Cause", "User-Request"),
        ],
    );
    let reply = f.radius.send("acct", &stop).await;
    assert_eq!(reply.code, "Accounting-Response", "{reply}");
    let rows = radacct_rows(&f.app, session).await;
    assert_eq!(
        rows,
        [AcctRow {
            session_id: session.into(),
            username: "carol".into(),
            nas_ip: "127.0.0.1".into(),
            framed_ip: ip.clone(),
            input_octets: 3 * (1 << 32) + 5000,
            output_octets: (1 << 32) + 7000,
            session_time: 600,
            start: Some(started),
            // FreeRADIUS's stop query sets acctupdatetime on PostgreSQL,
            // and leaves the last interim's on MySQL.
            update: Some(match backend {
                Backend::Postgres => started + 600,
                _ => started + 300,
            }),
            stop: Some(started + 600),
            terminate_cause: "User-Request".into(),
        }]
    );

    // Through the API: offline, and in the user's accounting with the
    // full counts.
    assert_eq!(f.online("carol").await, Vec::<Value>::new());
    let accounting = f
        .ok(
            Method::GET,
            &format!("/api/v1/users/{}/accounting", user["id"]),
            None,
        )
        .await;
    let sessions = accounting["sessions"]["data"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{accounting}");
    assert_session(&sessions[0], session, &ip, started, Some(started + 600));
    assert_eq!(sessions[0]["open"], false);
    assert_eq!(sessions[0]["input_octets"], 3 * (1_i64 << 32) + 5000);
    assert_eq!(sessions[0]["output_octets"], (1_i64 << 32) + 7000);
    assert_eq!(sessions[0]["duration_secs"], 600);
    assert_eq!(sessions[0]["terminate_cause"], "User-Request");
    let totals = &accounting["totals"];
    assert_eq!(totals["sessions"], 1, "{accounting}");
    assert_eq!(totals["input_octets"], 3 * (1_i64 << 32) + 5000);
    assert_eq!(totals["output_octets"], (1_i64 << 32) + 7000);
    assert_eq!(totals["session_time_secs"], 600);

    // The session is closed: a new login is accepted again.
    f.assert_accepted("carol", "after the Stop").await;
}
on_server_backends!(accounting_start_interim_and_stop_land_in_our_radacct);

async fn the_test_nas_acks_a_disconnect_of_an_open_session_and_naks_an_unknown_one(
    backend: Backend,
) {
    let Some(f) = spawn(backend).await else {
        return;
    };
    let package = f.package().await;
    let subnet = f.subnet().await;
    let user = f.static_user("dave", &package, subnet).await;
    let ip = user["static_ip"].as_str().unwrap().to_string();
    f.sync().await;
    let session = "81c00007";
    let mut start = session_attributes("dave", session, &ip);
    start.push(("Acct-Status-Type", "Start"));
    let reply = f.radius.send("acct", &start).await;
    assert_eq!(reply.code, "Accounting-Response", "{reply}");

    // Unknown session, or the right session under another user: NAK.
    for attributes in [
        vec![("User-Name", "dave"), ("Acct-Session-Id", "ffffffff")],
        vec![("User-Name", "erin"), ("Acct-Session-Id", session)],
    ] {
        let nak = f.radius.send("disconnect", &attributes).await;
        assert_eq!(nak.code, "Disconnect-NAK", "{attributes:?}: {nak}");
        assert_eq!(nak.get("Error-Cause"), Some("Session-Context-Not-Found"));
    }
    let missing = f.radius.send("disconnect", &[("User-Name", "dave")]).await;
    assert_eq!(missing.code, "Disconnect-NAK", "{missing}");
    assert_eq!(missing.get("Error-Cause"), Some("Missing-Attribute"));

    // A CoA-Request for the open session is acknowledged and ends nothing.
    let coa = f
        .radius
        .send(
            "coa",
            &[
                ("User-Name", "dave"),
                ("Acct-Session-Id", session),
                ("Mikrotik-Rate-Limit", "10M/40M"),
            ],
        )
        .await;
    assert_eq!(coa.code, "CoA-ACK", "{coa}");
    assert_eq!(radacct_rows(&f.app, session).await[0].stop, None);

    let ack = f
        .radius
        .send(
            "disconnect",
            &[("User-Name", "dave"), ("Acct-Session-Id", session)],
        )
        .await;
    assert_eq!(ack.code, "Disconnect-ACK", "{ack}");
    let rows = radacct_rows(&f.app, session).await;
    assert!(rows[0].stop.is_some(), "{rows:?}");
    assert_eq!(rows[0].terminate_cause, "Admin-Reset");

    // The session is gone now, as on a router.
    let again = f
        .radius
        .send("disconnect", &[("Acct-Session-Id", session)])
        .await;
    assert_eq!(again.code, "Disconnect-NAK", "{again}");
    assert_eq!(again.get("Error-Cause"), Some("Session-Context-Not-Found"));
}
on_server_backends!(the_test_nas_acks_a_disconnect_of_an_open_session_and_naks_an_unknown_one);

#[test]
fn database_urls_become_sql_module_settings() {
    assert_eq!(
        SqlTarget::from_url(
            "postgres://ispd_test:p%40ss@127.0.0.1:5432/ispd_test_ab?sslmode=disable"
        ),
        SqlTarget {
            dialect: "postgresql",
            host: "127.0.0.1".into(),
            port: 5432,
            login: "ispd_test".into(),
            password: "p@ss".into(),
            database: "ispd_test_ab".into(),
        }
    );
    let mysql = SqlTarget::from_url("mysql://root@localhost/radius");
    assert_eq!(
        (
            mysql.dialect,
            mysql.port,
            mysql.login.as_str(),
            mysql.password.as_str()
        ),
        ("mysql", 3306, "root", "")
    );
}

#[test]
fn the_grants_name_only_the_freeradius_tables_for_the_test_role() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let statements = grant_statements(backend);
        assert!(statements.len() >= 4, "{statements:?}");
        for statement in &statements {
            assert!(statement.starts_with("GRANT "), "{statement}");
            assert!(statement.contains(FREERADIUS_ROLE), "{statement}");
            assert!(
                !statement.contains(" ALL") && !statement.contains("DELETE"),
                "{statement}"
            );
        }
    }
}

#[test]
fn listen_sections_are_stripped_and_other_sections_kept() {
    let text = "server default {\nlisten {\n\ttype = auth # {\n\tlimit {\n\t}\n}\n#listen {\nauthorize {\n\t-sql\n}\n}\n";
    assert_eq!(
        strip_listen_sections(text),
        "server default {\n#listen {\nauthorize {\n\t-sql\n}\n}\n"
    );
}

#[test]
fn radclient_output_is_parsed() {
    let output = "Sent Access-Request Id 99 from 0.0.0.0:58923 to 127.0.0.1:21812 length 43\n\
        \tUser-Name = \"bob\"\n\
        Received Access-Accept Id 99 from 127.0.0.1:21812 to 127.0.0.1:58923 length 40\n\
        \tFramed-IP-Address = 100.64.0.2\n\
        \tMikrotik-Rate-Limit = \"5M/20M\"\n";
    let reply = RadiusReply::parse(output).unwrap();
    assert_eq!(reply.code, "Access-Accept");
    assert_eq!(reply.get("Framed-IP-Address"), Some("100.64.0.2"));
    assert_eq!(reply.get("Mikrotik-Rate-Limit"), Some("5M/20M"));
    assert_eq!(reply.get("User-Name"), None);
    assert!(RadiusReply::parse("(0) No reply from server\n").is_none());
}

// ------------------------------------------------------------ benchmark

/// `make bench-radius` (benches/freeradius_auth.sh): FreeRADIUS's PAP
/// authentication rate, 50 requests in flight (radclient -p 50), over our
/// migrated RADIUS schema and over FreeRADIUS's own `schema.sql`, in one
/// run, on PostgreSQL and MariaDB. The same users, groups and accounting
/// history go into both databases; the two servers differ only in the
/// database they read. Rounds alternate between the two (ours first in
/// odd rounds, theirs first in even ones) so that load from elsewhere on
/// the machine falls on both. Fails if ours reaches less than 95 % of
/// theirs (best rounds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: make bench-radius (docs/BENCHMARKS.md)"]
async fn benchmark_auth_rate_on_our_schema_and_on_the_freeradius_schema() {
    let setting = |name: &str, default: usize| -> usize {
        std::env::var(name)
            .ok()
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
            })
            .unwrap_or(default)
    };
    let users = setting("BENCH_RADIUS_USERS", 2000);
    let requests = setting("BENCH_RADIUS_REQUESTS", 4000);
    let rounds = setting("BENCH_RADIUS_ROUNDS", 5);
    let sessions_per_user = setting("BENCH_RADIUS_SESSIONS_PER_USER", 10);
    let mut below_target = Vec::new();
    let mut measured = 0;
    for backend in [Backend::Postgres, Backend::MySql] {
        let Some(ours) = crate::helpers::TestDb::fresh(backend).await else {
            continue;
        };
        let Some(theirs) = crate::helpers::TestDb::fresh(backend).await else {
            continue;
        };
        <migration::RadiusMigrator as migration::MigratorTrait>::up(&ours.conn, None)
            .await
            .expect("our RADIUS migrations");
        load_freeradius_schema(backend, &theirs.url);
        for db in [&ours, &theirs] {
            fill_for_benchmark(&db.conn, users, sessions_per_user).await;
        }
        let start = |url: String| {
            FreeRadius::start_with(Settings {
                database_url: url,
                debug: false,
            })
        };
        let Some(ours_server) = start(ours.url.clone()).await else {
            return;
        };
        let Some(theirs_server) = start(theirs.url.clone()).await else {
            return;
        };
        let file = ours_server.dir.path().join("requests");
        let mut text = String::new();
        for i in 0..requests {
            let user = i % users;
            text.push_str(&format!(
                "User-Name = \"bench{user}\"\nUser-Password = \"pw-{user}\"\nNAS-IP-Address = 127.0.0.1\n\n"
            ));
        }
        std::fs::write(&file, text).expect("request file");

        // Warm both up (connections, caches), unmeasured.
        for server in [&ours_server, &theirs_server] {
            server.flood(&file).await;
        }
        let mut ours_rates = Vec::new();
        let mut theirs_rates = Vec::new();
        for round in 0..rounds {
            let order: [(&FreeRadius, &mut Vec<f64>); 2] = if round % 2 == 0 {
                [
                    (&ours_server, &mut ours_rates),
                    (&theirs_server, &mut theirs_rates),
                ]
            } else {
                [
                    (&theirs_server, &mut theirs_rates),
                    (&ours_server, &mut ours_rates),
                ]
            };
            for (server, rates) in order {
                rates.push(server.flood(&file).await);
            }
        }
        let best = |rates: &[f64]| rates.iter().copied().fold(0.0, f64::max);
        let median = |rates: &[f64]| {
            let mut sorted = rates.to_vec();
            sorted.sort_by(|a, b| a.total_cmp(b));
            sorted[sorted.len() / 2]
        };
        let ratio = best(&ours_rates) / best(&theirs_rates);
        let name = match backend {
            Backend::Postgres => "PostgreSQL",
            _ => "MariaDB",
        };
        println!(
            "\nFreeRADIUS PAP auth, {name}: {users} users, {requests} requests per round, \
             {rounds} rounds, 50 in flight"
        );
        println!("| schema | best req/s | median req/s | rounds (req/s) |");
        println!("|---|---|---|---|");
        for (label, rates) in [
            ("ours (migrations)", &ours_rates),
            ("FreeRADIUS schema.sql", &theirs_rates),
        ] {
            let all: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
            println!(
                "| {label} | {:.0} | {:.0} | {} |",
                best(rates),
                median(rates),
                all.join(", ")
            );
        }
        println!(
            "ours / theirs: {ratio:.3} (best), {:.3} (median); target >= 0.95: {}",
            median(&ours_rates) / median(&theirs_rates),
            if ratio >= 0.95 { "PASS" } else { "FAIL" }
        );
        measured += 1;
        if ratio < 0.95 {
            below_target.push(format!("{name}: {ratio:.3}"));
        }
        drop((ours_server, theirs_server));
    }
    assert!(
        measured > 0,
        "no backend configured (TEST_POSTGRES_URL, TEST_MYSQL_URL)"
    );
    assert!(below_target.is_empty(), "below 0.95: {below_target:?}");
}

impl FreeRadius {
    /// Sends every request of `file` (radclient -p 50) and returns the
    /// rate, in requests per second; panics unless all were accepted.
    async fn flood(&self, file: &Path) -> f64 {
        let started = Instant::now();
        let output = tokio::process::Command::new(&self.radclient)
            .args(["-q", "-s", "-p", "50", "-r", "3", "-t", "3"])
            .arg("-d")
            .arg(self.raddb())
            .arg("-f")
            .arg(file)
            .arg(format!("127.0.0.1:{}", self.auth_port))
            .arg("auth")
            .arg(&self.secret)
            .output()
            .await
            .expect("running radclient");
        let elapsed = started.elapsed();
        let summary = String::from_utf8_lossy(&output.stdout);
        let accepted: usize = summary
            .lines()
            .find_map(|l| l.trim().strip_prefix("Accepted"))
            .and_then(|rest| {
                rest.trim_start_matches([' ', ':', '\t'])
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("radclient summary: {summary}"));
        let total = std::fs::read_to_string(file)
            .map(|t| t.matches("User-Name").count())
            .unwrap_or(0);
        assert_eq!(accepted, total, "radclient summary: {summary}");
        total as f64 / elapsed.as_secs_f64()
    }
}

/// FreeRADIUS's own schema.sql for the backend, loaded with the backend's
/// command-line client.
fn load_freeradius_schema(backend: Backend, url: &str) {
    let dialect = match backend {
        Backend::Postgres => "postgresql",
        _ => "mysql",
    };
    let path = format!("{STOCK_RADDB}/mods-config/sql/main/{dialect}/schema.sql");
    let target = SqlTarget::from_url(url);
    let output = match backend {
        Backend::Postgres => Command::new("psql")
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-f", &path])
            .arg(url.split('?').next().unwrap_or(url))
            .output(),
        _ => Command::new("mariadb")
            .arg(format!("--host={}", target.host))
            .arg(format!("--port={}", target.port))
            .arg(format!("--user={}", target.login))
            .arg(format!("--password={}", target.password))
            .arg(&target.database)
            .stdin(std::fs::File::open(&path).expect("schema.sql"))
            .output(),
    }
    .expect("running the database client");
    assert!(
        output.status.success(),
        "loading {path}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `users` users as ispd writes them (password, address, one group with a
/// rate limit and Simultaneous-Use := 1) and `sessions_per_user` closed
/// sessions each in radacct, with plain SQL both schemas accept.
async fn fill_for_benchmark(
    db: &sea_orm::DatabaseConnection,
    users: usize,
    sessions_per_user: usize,
) {
    let exec = |sql: String| async move {
        db.execute_unprepared(&sql)
            .await
            .unwrap_or_else(|e| panic!("{e}: {}", &sql[..sql.len().min(200)]));
    };
    exec(
        "INSERT INTO radgroupreply (groupname, attribute, op, value) VALUES \
          ('bench', 'Mikrotik-Rate-Limit', ':=', '5M/20M 8M/30M 4M/15M 10/10'), \
          ('bench', 'Session-Timeout', ':=', '86400'), \
          ('bench', 'Acct-Interim-Interval', ':=', '300')"
            .to_string(),
    )
    .await;
    exec(
        "INSERT INTO radgroupcheck (groupname, attribute, op, value) VALUES \
          ('bench', 'Simultaneous-Use', ':=', '1')"
            .to_string(),
    )
    .await;
    let ip = |i: usize| format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256);
    for chunk in (0..users).collect::<Vec<_>>().chunks(500) {
        let values = |f: &dyn Fn(usize) -> String| {
            chunk.iter().map(|&i| f(i)).collect::<Vec<_>>().join(", ")
        };
        exec(format!(
            "INSERT INTO radcheck (username, attribute, op, value) VALUES {}",
            values(&|i| format!("('bench{i}', 'Cleartext-Password', ':=', 'pw-{i}')"))
        ))
        .await;
        exec(format!(
            "INSERT INTO radreply (username, attribute, op, value) VALUES {}",
            values(&|i| format!("('bench{i}', 'Framed-IP-Address', ':=', '{}')", ip(i)))
        ))
        .await;
        exec(format!(
            "INSERT INTO radusergroup (username, groupname, priority) VALUES {}",
            values(&|i| format!("('bench{i}', 'bench', 1)"))
        ))
        .await;
    }
    let sessions: Vec<(usize, usize)> = (0..users)
        .flat_map(|u| (0..sessions_per_user).map(move |s| (u, s)))
        .collect();
    for chunk in sessions.chunks(500) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|&(u, s)| {
                format!(
                    "('s{u}-{s}', 'u{u:08}{s:08}', 'bench{u}', '127.0.0.1', \
                     '2026-10-{:02} 08:00:00', '2026-10-{:02} 09:00:00', 3600, 1000000, 5000000, \
                     '{}', 'User-Request')",
                    s % 28 + 1,
                    s % 28 + 1,
                    ip(u)
                )
            })
            .collect();
        exec(format!(
            "INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, \
             acctstarttime, acctstoptime, acctsessiontime, acctinputoctets, acctoutputoctets, \
             framedipaddress, acctterminatecause) VALUES {}",
            rows.join(", ")
        ))
        .await;
    }
}
