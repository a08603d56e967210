//! A mock MikroTik router that speaks the RouterOS API over TCP (and
//! API-SSL), for tests, demos and development without hardware.
//!
//! It behaves like RouterOS 7.16 on the paths ispd uses: `/system/identity`,
//! `/system/resource`, `/ppp/profile`, `/ppp/secret`, `/ppp/active` and
//! `/interface`, with queries, `.proplist`, tags, and both the 6.43+ and the
//! legacy challenge login. Tests drive it through [`MockRouter`]: simulate
//! PPPoE sessions with [`MockRouter::login_session`] and failures with
//! [`MockRouter::set_fault`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use md5::{Digest as _, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::rustls;

use super::codec::{Command, Decoder, Reply, ReplyKind, Row};

/// A failure the mock shows on every command after login (never on
/// `/login` or `/quit`), until it is cleared with `Fault::None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Send the first half of the reply's bytes, then close the connection.
    DropMidReply,
    /// Read commands and never answer.
    Silent,
    /// Answer after this delay.
    Slow(Duration),
    /// Answer `!fatal <reason>` and close the connection.
    Fatal(String),
}

/// A certificate chain and private key, PEM-encoded, for API-SSL.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// Where and how the mock listens.
#[derive(Clone)]
pub struct MockOptions {
    pub listen: SocketAddr,
    /// API-SSL listener; needs `tls`.
    pub tls_listen: Option<SocketAddr>,
    pub tls: Option<TlsIdentity>,
    pub username: String,
    pub password: String,
}

impl MockOptions {
    /// Plain API on 127.0.0.1, on a port the system picks.
    pub fn local(username: &str, password: &str) -> Self {
        MockOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls_listen: None,
            tls: None,
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }
}

/// A running mock router. Dropping it stops the listeners and closes every
/// connection.
pub struct MockRouter {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for MockRouter {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

struct Shared {
    username: String,
    password: String,
    booted: Instant,
    state: Mutex<State>,
    fault: Mutex<Fault>,
    delays: Mutex<HashMap<String, Duration>>,
    logins: AtomicUsize,
    connections: AtomicUsize,
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MockRouter {
    /// Starts a plain-API mock on 127.0.0.1 with a free port.
    pub async fn start(username: &str, password: &str) -> std::io::Result<MockRouter> {
        Self::start_with(MockOptions::local(username, password))
            .await
            .map_err(std::io::Error::other)
    }

    pub async fn start_with(options: MockOptions) -> anyhow::Result<MockRouter> {
        let shared = Arc::new(Shared {
            username: options.username,
            password: options.password,
            booted: Instant::now(),
            state: Mutex::new(State::new()),
            fault: Mutex::new(Fault::None),
            delays: Mutex::new(HashMap::new()),
            logins: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        });
        let listener = TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let addr = listener.local_addr()?;
        let mut tasks = vec![tokio::spawn(accept_loop(listener, shared.clone(), None))];
        let mut tls_addr = None;
        if let Some(tls_listen) = options.tls_listen {
            let identity = options
                .tls
                .context("a TLS listener needs a certificate and a key")?;
            let acceptor = tls_acceptor(&identity)?;
            let listener = TcpListener::bind(tls_listen)
                .await
                .with_context(|| format!("cannot listen on {tls_listen}"))?;
            tls_addr = Some(listener.local_addr()?);
            tasks.push(tokio::spawn(accept_loop(
                listener,
                shared.clone(),
                Some(acceptor),
            )));
        }
        Ok(MockRouter {
            shared,
            addr,
            tls_addr,
            tasks,
        })
    }

    /// The plain API address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API-SSL address, when started with one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Makes every later command (after login) fail this way.
    pub fn set_fault(&self, fault: Fault) {
        *locked(&self.shared.fault) = fault;
    }

    /// Delays the answers to one command path, e.g. `/system/resource/print`.
    /// Tagged commands are answered out of order, as a router does.
    pub fn set_command_delay(&self, path: &str, delay: Duration) {
        locked(&self.shared.delays).insert(path.to_owned(), delay);
    }

    /// A subscriber dials in: adds a `/ppp/active` entry and its
    /// `<pppoe-NAME>` interface, whose byte counters grow with time.
    /// Returns the active entry's id.
    /// `count` PPPoE sessions online, of users demo1, demo2, ... on
    /// 100.64.0.3 and up: for demos and the browser tests.
    pub fn simulate_sessions(&self, count: u32) {
        for n in 1..=count {
            self.login_session(
                &format!("demo{n}"),
                &format!("100.64.{}.{}", n / 250, n % 250 + 2),
                &format!("02:00:00:00:{:02X}:{:02X}", (n >> 8) & 0xff, n & 0xff),
            );
        }
    }

    pub fn login_session(&self, name: &str, address: &str, caller_id: &str) -> String {
        locked(&self.shared.state).login_session(name, address, caller_id)
    }

    /// The rows of a menu as a print without arguments would return them
    /// (`/ppp/secret`, `/ppp/active`, ...).
    pub fn rows(&self, menu: &str) -> Vec<Row> {
        locked(&self.shared.state).rows(menu, self.shared.booted)
    }

    /// Successful logins since start.
    pub fn logins(&self) -> usize {
        self.shared.logins.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

fn tls_acceptor(identity: &TlsIdentity) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(&identity.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .context("reading the certificate PEM")?;
    if certs.is_empty() {
        anyhow::bail!("the certificate file holds no certificate");
    }
    let key = PrivateKeyDer::from_pem_slice(&identity.key_pem).context("reading the key PEM")?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("the certificate and key do not make a TLS identity")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    // Owning the connections here means aborting this task closes them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let tcp = match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(err) => {
                        tracing::warn!(error = %err, "mock router: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let shared = shared.clone();
                let tls = tls.clone();
                connections.spawn(async move {
                    match tls {
                        None => serve_connection(tcp, shared).await,
                        Some(acceptor) => match acceptor.accept(tcp).await {
                            Ok(stream) => serve_connection(stream, shared).await,
                            Err(err) => tracing::debug!(error = %err, "mock router: TLS handshake failed"),
                        },
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// What to do with a reply's bytes.
enum Outgoing {
    All(Vec<u8>),
    AllThenClose(Vec<u8>),
    HalfThenClose(Vec<u8>),
}

struct ConnectionGuard(Arc<Shared>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Per-connection login state.
#[derive(Default)]
struct Session {
    logged_in: bool,
    challenge: Option<[u8; 16]>,
}

async fn serve_connection<S>(stream: S, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    shared.connections.fetch_add(1, Ordering::Relaxed);
    let _guard = ConnectionGuard(shared.clone());
    let (mut reader, mut writer) = tokio::io::split(stream);
    // Delayed answers to tagged commands come back through this channel.
    let (delayed_tx, mut delayed_rx) = mpsc::unbounded_channel::<Outgoing>();
    let mut decoder = Decoder::new();
    let mut session = Session::default();
    let mut buf = vec![0u8; 8192];
    loop {
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                decoder.feed(&buf[..n]);
                loop {
                    let words = match decoder.next_sentence() {
                        Ok(Some(words)) => words,
                        Ok(None) => break,
                        Err(err) => {
                            let fatal = Reply::new(ReplyKind::Fatal { reason: err.to_string() });
                            let _ = write(&mut writer, Outgoing::AllThenClose(fatal.encode())).await;
                            return;
                        }
                    };
                    let Some((send, delay, tagged)) = answer(&shared, &mut session, &words) else {
                        continue;
                    };
                    if delay.is_zero() {
                        if !write(&mut writer, send).await {
                            return;
                        }
                    } else if tagged {
                        let delayed_tx = delayed_tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let _ = delayed_tx.send(send);
                        });
                    } else {
                        // Untagged commands are answered in order.
                        tokio::time::sleep(delay).await;
                        if !write(&mut writer, send).await {
                            return;
                        }
                    }
                }
            }
            Some(send) = delayed_rx.recv() => {
                if !write(&mut writer, send).await {
                    return;
                }
            }
        }
    }
}

/// Writes; false when the connection is to end.
async fn write<W: AsyncWrite + Unpin>(writer: &mut W, send: Outgoing) -> bool {
    let (bytes, keep_open) = match &send {
        Outgoing::All(bytes) => (&bytes[..], true),
        Outgoing::AllThenClose(bytes) => (&bytes[..], false),
        Outgoing::HalfThenClose(bytes) => (&bytes[..bytes.len() / 2], false),
    };
    let ok = writer.write_all(bytes).await.is_ok() && writer.flush().await.is_ok();
    if !keep_open {
        let _ = writer.shutdown().await;
    }
    ok && keep_open
}

fn encode_all(replies: &[Reply], tag: &Option<String>) -> Vec<u8> {
    replies
        .iter()
        .flat_map(|reply| reply.clone().with_tag(tag.clone()).encode())
        .collect()
}

fn trap(category: Option<u32>, message: impl Into<String>) -> Vec<Reply> {
    vec![
        Reply::new(ReplyKind::Trap {
            category,
            message: message.into(),
        }),
        done(None),
    ]
}

fn done(ret: Option<String>) -> Reply {
    Reply::new(ReplyKind::Done { ret })
}

/// The answer to one sentence: bytes, delay, and whether it was tagged.
fn answer(
    shared: &Shared,
    session: &mut Session,
    words: &[Vec<u8>],
) -> Option<(Outgoing, Duration, bool)> {
    let command = match Command::parse(words) {
        Ok(command) => command,
        Err(err) => {
            let replies = trap(Some(5), err.to_string());
            return Some((
                Outgoing::All(encode_all(&replies, &None)),
                Duration::ZERO,
                false,
            ));
        }
    };
    let tag = command.tag.clone();
    let tagged = tag.is_some();
    let immediate = |send| Some((send, Duration::ZERO, tagged));
    if command.path == "/login" {
        let replies = login(shared, session, &command);
        return immediate(Outgoing::All(encode_all(&replies, &tag)));
    }
    if command.path == "/quit" {
        let fatal = Reply::new(ReplyKind::Fatal {
            reason: "session terminated on request".into(),
        });
        return immediate(Outgoing::AllThenClose(fatal.encode()));
    }
    if !session.logged_in {
        let fatal = Reply::new(ReplyKind::Fatal {
            reason: "not logged in".into(),
        });
        return immediate(Outgoing::AllThenClose(fatal.encode()));
    }
    let fault = locked(&shared.fault).clone();
    let mut delay = locked(&shared.delays)
        .get(&command.path)
        .copied()
        .unwrap_or_default();
    let replies = match &fault {
        Fault::Silent => return None,
        Fault::Fatal(reason) => {
            let fatal = Reply::new(ReplyKind::Fatal {
                reason: reason.clone(),
            });
            return immediate(Outgoing::AllThenClose(fatal.encode()));
        }
        _ => locked(&shared.state).execute(&command, shared.booted),
    };
    let bytes = encode_all(&replies, &tag);
    let send = match fault {
        Fault::DropMidReply => Outgoing::HalfThenClose(bytes),
        Fault::Slow(slow) => {
            delay += slow;
            Outgoing::All(bytes)
        }
        _ => Outgoing::All(bytes),
    };
    Some((send, delay, tagged))
}

fn login(shared: &Shared, session: &mut Session, command: &Command) -> Vec<Reply> {
    let refused = || trap(None, "invalid user name or password (6)");
    let name = command.get("name");
    let accepted = match (name, command.get("password"), command.get("response")) {
        (Some(name), Some(password), _) => name == shared.username && password == shared.password,
        (Some(name), None, Some(response)) => {
            let Some(challenge) = session.challenge.take() else {
                return refused();
            };
            let mut hasher = Md5::new();
            hasher.update([0u8]);
            hasher.update(shared.password.as_bytes());
            hasher.update(challenge);
            let expected = format!("00{}", hex::encode(hasher.finalize()));
            name == shared.username && response.eq_ignore_ascii_case(&expected)
        }
        (None, None, None) => {
            // The pre-6.43 flow, which RouterOS-api still starts with.
            let challenge: [u8; 16] = rand::random();
            session.challenge = Some(challenge);
            return vec![done(Some(hex::encode(challenge)))];
        }
        _ => false,
    };
    if !accepted {
        return refused();
    }
    session.logged_in = true;
    shared.logins.fetch_add(1, Ordering::Relaxed);
    vec![done(None)]
}

/// Items of one menu, with RouterOS-style ids.
struct Table {
    rows: Vec<Row>,
    next_id: u32,
}

impl Table {
    fn new() -> Self {
        Table {
            rows: Vec::new(),
            next_id: 1,
        }
    }

    fn insert(&mut self, mut row: Row) -> String {
        let id = format!("*{:X}", self.next_id);
        self.next_id += 1;
        row.insert(".id".into(), id.clone());
        self.rows.push(row);
        id
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.rows
            .iter()
            .position(|row| row.get(".id").is_some_and(|v| v.eq_ignore_ascii_case(id)))
    }

    fn name_taken(&self, name: &str, except: Option<usize>) -> bool {
        self.rows
            .iter()
            .enumerate()
            .any(|(i, row)| Some(i) != except && row.get("name").is_some_and(|n| n == name))
    }
}

/// How a writable menu checks its input.
struct Schema {
    fields: &'static [&'static str],
    defaults: &'static [(&'static str, &'static str)],
    booleans: &'static [&'static str],
    duplicate: &'static str,
}

const SECRET: Schema = Schema {
    fields: &[
        "name",
        "password",
        "service",
        "profile",
        "local-address",
        "remote-address",
        "caller-id",
        "disabled",
        "comment",
        "routes",
        "limit-bytes-in",
        "limit-bytes-out",
    ],
    defaults: &[
        ("service", "any"),
        ("profile", "default"),
        ("password", ""),
        ("caller-id", ""),
        ("disabled", "false"),
        ("limit-bytes-in", "0"),
        ("limit-bytes-out", "0"),
        ("last-logged-out", "never"),
    ],
    booleans: &["disabled"],
    duplicate: "failure: secret with the same name already exists",
};

const PROFILE: Schema = Schema {
    fields: &[
        "name",
        "local-address",
        "remote-address",
        "rate-limit",
        "only-one",
        "comment",
        "dns-server",
        "address-list",
        "session-timeout",
        "idle-timeout",
        "change-tcp-mss",
        "use-encryption",
    ],
    defaults: &[
        ("only-one", "default"),
        ("change-tcp-mss", "default"),
        ("use-encryption", "default"),
    ],
    booleans: &[],
    duplicate: "failure: profile with the same name already exists",
};

const SERVICES: &[&str] = &["any", "async", "l2tp", "ovpn", "pppoe", "pptp", "sstp"];

struct State {
    identity: String,
    profiles: Table,
    secrets: Table,
    active: Table,
    interfaces: Table,
    /// When each session and each session's interface started (ids are
    /// per table; everything else counts from boot).
    active_started: HashMap<String, Instant>,
    interface_started: HashMap<String, Instant>,
    next_session: u32,
}

impl State {
    fn new() -> Self {
        let mut profiles = Table::new();
        for (id, name) in [("*0", "default"), ("*FFFFFFFE", "default-encryption")] {
            let mut row = Row::new();
            row.insert(".id".into(), id.into());
            row.insert("name".into(), name.into());
            row.insert("only-one".into(), "default".into());
            row.insert("change-tcp-mss".into(), "yes".into());
            row.insert(
                "use-encryption".into(),
                if name == "default" { "default" } else { "yes" }.into(),
            );
            row.insert("default".into(), "true".into());
            profiles.rows.push(row);
        }
        let mut interfaces = Table::new();
        for name in ["ether1", "ether2"] {
            interfaces.insert(interface_row(name, "ether", false));
        }
        State {
            identity: "MikroTik".into(),
            profiles,
            secrets: Table::new(),
            active: Table::new(),
            interfaces,
            active_started: HashMap::new(),
            interface_started: HashMap::new(),
            next_session: 1,
        }
    }

    fn login_session(&mut self, name: &str, address: &str, caller_id: &str) -> String {
        let session = self.next_session;
        self.next_session += 1;
        let mut row = Row::new();
        for (key, value) in [
            ("name", name),
            ("service", "pppoe"),
            ("caller-id", caller_id),
            ("address", address),
            ("encoding", ""),
            ("limit-bytes-in", "0"),
            ("limit-bytes-out", "0"),
            ("radius", "false"),
        ] {
            row.insert(key.into(), value.into());
        }
        row.insert(
            "session-id".into(),
            format!("0x{:08X}", 0x8120_0000 + session),
        );
        let id = self.active.insert(row);
        let iface =
            self.interfaces
                .insert(interface_row(&format!("<pppoe-{name}>"), "pppoe-in", true));
        let now = Instant::now();
        self.interface_started.insert(iface, now);
        self.active_started.insert(id.clone(), now);
        id
    }

    /// Rows with computed fields (uptime, counters) filled in.
    fn rows(&self, menu: &str, booted: Instant) -> Vec<Row> {
        let now = Instant::now();
        match menu {
            "/system/identity" => {
                let mut row = Row::new();
                row.insert("name".into(), self.identity.clone());
                vec![row]
            }
            "/system/resource" => vec![resource_row(now - booted)],
            "/ppp/profile" => self.profiles.rows.clone(),
            "/ppp/secret" => self.secrets.rows.clone(),
            "/ppp/active" => self
                .active
                .rows
                .iter()
                .map(|row| {
                    let mut row = row.clone();
                    let started = started_at(&self.active_started, &row, booted);
                    row.insert("uptime".into(), format_uptime(now - started));
                    row
                })
                .collect(),
            "/interface" => self
                .interfaces
                .rows
                .iter()
                .map(|row| {
                    let mut row = row.clone();
                    let started = started_at(&self.interface_started, &row, booted);
                    let ms = (now - started).as_millis() as u64;
                    // About 10 Mbit/s in and 40 Mbit/s out, from a non-zero start.
                    let (rx, tx) = (1_000 + ms * 1_250, 2_000 + ms * 5_000);
                    for (key, value) in [
                        ("rx-byte", rx),
                        ("tx-byte", tx),
                        ("rx-packet", rx / 1_000),
                        ("tx-packet", tx / 1_000),
                    ] {
                        row.insert(key.into(), value.to_string());
                    }
                    row
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    fn execute(&mut self, command: &Command, booted: Instant) -> Vec<Reply> {
        let Some((menu, verb)) = command.path.rsplit_once('/') else {
            return no_such_command();
        };
        match (menu, verb) {
            (
                "/system/identity" | "/system/resource" | "/ppp/profile" | "/ppp/secret"
                | "/ppp/active" | "/interface",
                "print" | "getall",
            ) => print(self.rows(menu, booted), command),
            ("/system/identity", "set") => match command.get("name") {
                Some(name) if !name.is_empty() => {
                    self.identity = name.to_owned();
                    vec![done(None)]
                }
                _ => trap(Some(1), "name must not be empty"),
            },
            ("/ppp/profile", "add") => add(&mut self.profiles, &PROFILE, command, |_| None),
            ("/ppp/profile", "set") => set(&mut self.profiles, &PROFILE, command, |_| None),
            ("/ppp/profile", "remove") => remove(&mut self.profiles, command),
            ("/ppp/secret", verb @ ("add" | "set")) => {
                let profiles: Vec<String> = self
                    .profiles
                    .rows
                    .iter()
                    .filter_map(|row| row.get("name").cloned())
                    .collect();
                let check = |row: &Row| check_secret(row, &profiles);
                if verb == "add" {
                    add(&mut self.secrets, &SECRET, command, check)
                } else {
                    set(&mut self.secrets, &SECRET, command, check)
                }
            }
            ("/ppp/secret", "remove") => remove(&mut self.secrets, command),
            ("/ppp/active", "remove") => {
                let replies = remove(&mut self.active, command);
                if replies
                    .first()
                    .is_some_and(|reply| matches!(reply.kind, ReplyKind::Done { .. }))
                {
                    self.drop_gone_sessions();
                }
                replies
            }
            ("", "cancel") => vec![done(None)],
            _ => no_such_command(),
        }
    }

    /// Removes the interfaces of sessions no longer in `/ppp/active`.
    fn drop_gone_sessions(&mut self) {
        let active: Vec<String> = self
            .active
            .rows
            .iter()
            .filter_map(|row| row.get("name").map(|name| format!("<pppoe-{name}>")))
            .collect();
        self.interfaces.rows.retain(|row| {
            row.get("type").map(String::as_str) != Some("pppoe-in")
                || row.get("name").is_some_and(|name| active.contains(name))
        });
        let ids = |table: &Table| -> Vec<String> {
            table
                .rows
                .iter()
                .filter_map(|row| row.get(".id").cloned())
                .collect()
        };
        let (active, interfaces) = (ids(&self.active), ids(&self.interfaces));
        self.active_started.retain(|id, _| active.contains(id));
        self.interface_started
            .retain(|id, _| interfaces.contains(id));
    }
}

fn started_at(started: &HashMap<String, Instant>, row: &Row, booted: Instant) -> Instant {
    row.get(".id")
        .and_then(|id| started.get(id))
        .copied()
        .unwrap_or(booted)
}

fn no_such_command() -> Vec<Reply> {
    trap(Some(0), "no such command")
}

fn interface_row(name: &str, kind: &str, dynamic: bool) -> Row {
    let mut row = Row::new();
    for (key, value) in [
        ("name", name),
        ("type", kind),
        ("running", "true"),
        ("disabled", "false"),
        ("dynamic", if dynamic { "true" } else { "false" }),
        ("mtu", if dynamic { "1480" } else { "1500" }),
    ] {
        row.insert(key.into(), value.into());
    }
    row
}

fn resource_row(uptime: Duration) -> Row {
    let mut row = Row::new();
    for (key, value) in [
        ("version", "7.16.2 (stable)"),
        ("build-time", "2024-11-26 12:28:35"),
        ("factory-software", "7.1"),
        ("free-memory", "3472965632"),
        ("total-memory", "4294967296"),
        ("cpu", "ARM64"),
        ("cpu-count", "4"),
        ("cpu-frequency", "1700"),
        ("cpu-load", "3"),
        ("free-hdd-space", "96780288"),
        ("total-hdd-space", "134217728"),
        ("architecture-name", "arm64"),
        ("board-name", "CCR2004-1G-12S+2XS"),
        ("platform", "MikroTik"),
    ] {
        row.insert(key.into(), value.into());
    }
    row.insert("uptime".into(), format_uptime(uptime));
    row
}

/// RouterOS durations: `2w3d4h5m6s`, zero units left out.
pub fn format_uptime(uptime: Duration) -> String {
    let mut secs = uptime.as_secs();
    let mut out = String::new();
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if secs > 0 || out.is_empty() {
        out.push_str(&format!("{secs}s"));
    }
    out
}

fn check_secret(row: &Row, profiles: &[String]) -> Option<Vec<Reply>> {
    if let Some(service) = row.get("service") {
        if !SERVICES.contains(&service.as_str()) {
            return Some(trap(Some(1), "input does not match any value of service"));
        }
    }
    if let Some(profile) = row.get("profile") {
        if !profiles.contains(profile) {
            return Some(trap(Some(1), "input does not match any value of profile"));
        }
    }
    None
}

/// The values of an add or set, checked against the menu's fields.
fn values(schema: &Schema, command: &Command) -> Result<Vec<(String, String)>, Vec<Reply>> {
    let mut values = Vec::new();
    for (key, value) in &command.attributes {
        if key == ".id" {
            continue;
        }
        if !schema.fields.contains(&key.as_str()) {
            return Err(trap(Some(1), format!("unknown parameter {key}")));
        }
        let value = if schema.booleans.contains(&key.as_str()) {
            match value.as_str() {
                "yes" | "true" => "true".to_owned(),
                "no" | "false" => "false".to_owned(),
                _ => {
                    return Err(trap(
                        Some(1),
                        format!("input does not match any value of {key}"),
                    ))
                }
            }
        } else {
            value.clone()
        };
        values.push((key.clone(), value));
    }
    Ok(values)
}

fn add(
    table: &mut Table,
    schema: &Schema,
    command: &Command,
    check: impl Fn(&Row) -> Option<Vec<Reply>>,
) -> Vec<Reply> {
    let values = match values(schema, command) {
        Ok(values) => values,
        Err(replies) => return replies,
    };
    let mut row: Row = schema
        .defaults
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    row.extend(values);
    match row.get("name") {
        Some(name) if !name.is_empty() => {
            if table.name_taken(name, None) {
                return trap(None, schema.duplicate);
            }
        }
        _ => return trap(Some(1), "failure: name must be set"),
    }
    if let Some(replies) = check(&row) {
        return replies;
    }
    vec![done(Some(table.insert(row)))]
}

fn set(
    table: &mut Table,
    schema: &Schema,
    command: &Command,
    check: impl Fn(&Row) -> Option<Vec<Reply>>,
) -> Vec<Reply> {
    let Some(index) = command.get(".id").and_then(|id| table.position(id)) else {
        return trap(Some(0), "no such item");
    };
    let values = match values(schema, command) {
        Ok(values) => values,
        Err(replies) => return replies,
    };
    let mut row = table.rows[index].clone();
    row.extend(values);
    match row.get("name") {
        Some(name) if !name.is_empty() => {
            if table.name_taken(name, Some(index)) {
                return trap(None, schema.duplicate);
            }
        }
        _ => return trap(Some(1), "failure: name must be set"),
    }
    if let Some(replies) = check(&row) {
        return replies;
    }
    table.rows[index] = row;
    vec![done(None)]
}

/// Removes `.id`, a comma-separated list of ids: all or none.
fn remove(table: &mut Table, command: &Command) -> Vec<Reply> {
    let ids: Vec<&str> = command
        .get(".id")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    if ids.is_empty() || ids.iter().any(|id| table.position(id).is_none()) {
        return trap(Some(0), "no such item");
    }
    table.rows.retain(|row| {
        !row.get(".id")
            .is_some_and(|id| ids.iter().any(|gone| gone.eq_ignore_ascii_case(id)))
    });
    vec![done(None)]
}

fn print(rows: Vec<Row>, command: &Command) -> Vec<Reply> {
    let mut found = Vec::new();
    for row in rows {
        match matches(&row, &command.queries) {
            Ok(true) => found.push(row),
            Ok(false) => {}
            Err(message) => return trap(Some(1), message),
        }
    }
    if command
        .get("count-only")
        .is_some_and(|v| v.is_empty() || v == "yes" || v == "true")
    {
        return vec![done(Some(found.len().to_string()))];
    }
    let proplist: Option<Vec<&str>> = command
        .get(".proplist")
        .map(|list| list.split(',').map(str::trim).collect());
    let mut replies: Vec<Reply> = found
        .into_iter()
        .map(|mut row| {
            if let Some(keep) = &proplist {
                row.retain(|key, _| keep.contains(&key.as_str()));
            }
            Reply::new(ReplyKind::Re(row))
        })
        .collect();
    replies.push(done(None));
    replies
}

/// Evaluates RouterOS query words against one row. Each word pushes a
/// result on a stack; `#` words combine them (`!` not, `&` and, `|` or,
/// `.` copy of the top, digits a copy of that entry, counted from the
/// bottom); the row matches when every entry left is true.
fn matches(row: &Row, queries: &[String]) -> Result<bool, String> {
    let mut stack: Vec<bool> = Vec::new();
    let underflow = || "query stack underflow".to_string();
    for query in queries {
        if let Some(ops) = query.strip_prefix('#') {
            let mut ops = ops.chars().peekable();
            while let Some(op) = ops.next() {
                match op {
                    '!' => {
                        let top = stack.pop().ok_or_else(underflow)?;
                        stack.push(!top);
                    }
                    '&' | '|' => {
                        let b = stack.pop().ok_or_else(underflow)?;
                        let a = stack.pop().ok_or_else(underflow)?;
                        stack.push(if op == '&' { a && b } else { a || b });
                    }
                    '.' => {
                        let top = *stack.last().ok_or_else(underflow)?;
                        stack.push(top);
                    }
                    '0'..='9' => {
                        let mut index = op.to_digit(10).unwrap_or(0) as usize;
                        while let Some(digit) = ops.peek().and_then(|c| c.to_digit(10)) {
                            ops.next();
                            index = index.saturating_mul(10).saturating_add(digit as usize);
                        }
                        let value = *stack.get(index).ok_or_else(underflow)?;
                        stack.push(value);
                    }
                    other => return Err(format!("unknown query operation {other:?}")),
                }
            }
        } else {
            stack.push(term(row, query));
        }
    }
    Ok(stack.into_iter().all(|value| value))
}

fn term(row: &Row, query: &str) -> bool {
    if let Some(name) = query.strip_prefix('-') {
        return !row.contains_key(name);
    }
    for (op, ordering) in [
        ('<', std::cmp::Ordering::Less),
        ('>', std::cmp::Ordering::Greater),
    ] {
        if let Some(rest) = query.strip_prefix(op) {
            let (name, value) = rest.split_once('=').unwrap_or((rest, ""));
            return row
                .get(name)
                .is_some_and(|have| compare(have, value) == ordering);
        }
    }
    let query = query.strip_prefix('=').unwrap_or(query);
    match query.split_once('=') {
        Some((name, value)) => {
            let have = row.get(name).map_or("", String::as_str);
            have == value || (as_bool(have).is_some() && as_bool(have) == as_bool(value))
        }
        None => row.contains_key(query),
    }
}

fn as_bool(value: &str) -> Option<bool> {
    match value {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

fn compare(have: &str, want: &str) -> std::cmp::Ordering {
    match (have.parse::<i128>(), want.parse::<i128>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => have.cmp(want),
    }
}

/// `ispd mock-routeros`: a mock router for development and demos.
#[derive(Debug, clap::Args)]
pub struct MockRouterosArgs {
    /// Plain API address.
    #[arg(long, default_value = "127.0.0.1:8728")]
    pub listen: SocketAddr,
    /// API-SSL address; needs --tls-cert and --tls-key.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate (chain) for API-SSL.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for API-SSL.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    #[arg(long, default_value = "admin")]
    pub username: String,
    #[arg(long)]
    pub password: String,
    /// PPPoE sessions to simulate from the start (users demo1, demo2, ...),
    /// for demos and the browser tests.
    #[arg(long, default_value_t = 0)]
    pub sessions: u32,
}

/// Runs the mock until `shutdown` completes.
pub async fn run(
    args: MockRouterosArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsIdentity {
            cert_pem: std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?,
            key_pem: std::fs::read(key).with_context(|| format!("reading {}", key.display()))?,
        }),
        _ => None,
    };
    let router = MockRouter::start_with(MockOptions {
        listen: args.listen,
        tls_listen: args.tls_listen,
        tls,
        username: args.username,
        password: args.password,
    })
    .await?;
    router.simulate_sessions(args.sessions);
    println!("mock RouterOS API listening on {}", router.addr());
    if let Some(addr) = router.tls_addr() {
        println!("mock RouterOS API-SSL listening on {addr}");
    }
    shutdown.await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> Row {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn q(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn queries_follow_the_stack_rules() {
        let alice = row(&[("name", "alice"), ("limit", "10"), ("disabled", "false")]);
        let cases: &[(&[&str], bool)] = &[
            (&[], true),
            (&["name=alice"], true),
            (&["=name=alice"], true),
            (&["name=bob"], false),
            (&["name"], true),
            (&["-name"], false),
            (&["-comment"], true),
            (&["<limit=11"], true),
            (&["<limit=9"], false),
            (&[">limit=9"], true),
            (&["name=bob", "name=alice", "#|"], true),
            (&["name=bob", "name=alice", "#&"], false),
            (&["name=bob", "#!"], true),
            (&["name=bob", "name=carol", "#|!"], true),
            (&["disabled=no"], true),
            (&["disabled=yes"], false),
            (&["name=alice", "#0"], true),
        ];
        for (queries, expected) in cases {
            assert_eq!(matches(&alice, &q(queries)), Ok(*expected), "{queries:?}");
        }
        assert!(matches(&alice, &q(&["#|"])).is_err());
        assert!(matches(&alice, &q(&["name", "#x"])).is_err());
    }

    #[test]
    fn uptimes_are_formatted_like_routeros() {
        assert_eq!(format_uptime(Duration::ZERO), "0s");
        assert_eq!(format_uptime(Duration::from_secs(65)), "1m5s");
        assert_eq!(
            format_uptime(Duration::from_secs(2 * 604_800 + 3 * 86_400 + 7)),
            "2w3d7s"
        );
    }
}
