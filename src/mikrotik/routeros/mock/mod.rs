//! A mock MikroTik router that speaks the RouterOS API over TCP (and
//! API-SSL), for tests, demos and development without hardware.
//!
//! It behaves like RouterOS 7.16 on the paths ispd uses: `/system/identity`,
//! `/system/resource`, `/ppp/profile`, `/ppp/secret`, `/ppp/active` and
//! `/interface`, with queries, `.proplist`, tags, and both the 6.43+ and the
//! legacy challenge login. Tests drive it through [`MockRouter`]: simulate
//! PPPoE sessions with [`MockRouter::login_session`] and failures with
//! [`MockRouter::set_fault`].
//!
//! Inside: [`state`] holds the router's menus and runs each command on
//! them; [`server`] listens (plain or TLS), logs clients in and answers
//! their sentences, with the faults a test asks for.

mod server;
mod state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::codec::Row;
use server::{accept_loop, tls_acceptor};
use state::State;

pub use state::format_uptime;

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
