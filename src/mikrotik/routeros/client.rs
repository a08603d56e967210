//! An async RouterOS API client: one TCP (or TLS) connection, one login,
//! any number of concurrent commands told apart by `.tag`.
//!
//! A reader task owns the read half of the connection and hands each reply
//! to the command whose tag it carries; writers take turns on the write half.
//! Every call is bounded by the client's timeout.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use md5::{Digest as _, Md5};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::rustls;

use super::codec::{Command, Decoder, Reply, ReplyKind, Row};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No TCP connection: refused, no route, name not found, or no answer
    /// to the connection attempt within the timeout.
    #[error("router unreachable: {0}")]
    Unreachable(String),
    /// The TLS handshake failed, including a certificate whose fingerprint
    /// is not the pinned one.
    #[error("TLS failure: {0}")]
    Tls(String),
    /// The router refused the user name or password.
    #[error("login failed: {0}")]
    LoginFailed(String),
    /// The router refused a command (`!trap`).
    #[error("router error{}: {message}", category.map(|c| format!(" (category {c})")).unwrap_or_default())]
    Trap {
        category: Option<u32>,
        message: String,
    },
    /// The router ended the session (`!fatal`).
    #[error("router closed the session: {0}")]
    Fatal(String),
    /// No complete answer within the timeout.
    #[error("no answer from the router within {0:?}")]
    Timeout(Duration),
    /// The router sent something this client cannot read.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection closed or failed before the answer was complete.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
}

/// The SHA-256 fingerprint of a router's certificate (its DER bytes).
/// Routers use self-signed certificates, so ispd pins this instead of
/// trusting a certificate authority.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Accepts 64 hex digits, in either case, optionally separated by `:`
    /// or spaces (as `openssl x509 -fingerprint -sha256` prints them).
    pub fn parse(text: &str) -> Result<Fingerprint, String> {
        let digits: String = text.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&digits, &mut bytes)
            .map_err(|_| "a SHA-256 fingerprint is 64 hexadecimal digits".to_string())?;
        Ok(Fingerprint(bytes))
    }

    /// The fingerprint of a DER-encoded certificate.
    pub fn of_certificate(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    /// Upper-case hex pairs joined by `:`, as openssl prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// How to reach a router.
#[derive(Clone)]
pub struct ConnectOptions {
    /// `host:port`, e.g. `192.0.2.1:8728`.
    pub addr: String,
    pub username: String,
    pub password: String,
    /// Bounds the connection, the login and then every command.
    pub timeout: Duration,
    /// API-SSL, accepting only the certificate with this fingerprint.
    pub tls: Option<Fingerprint>,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("addr", &self.addr)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("timeout", &self.timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

/// The answer to a command: its rows and, after `add`, the new id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub rows: Vec<Row>,
    pub ret: Option<String>,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}
type BoxStream = Box<dyn Stream>;

struct InFlight {
    response: Response,
    trap: Option<Error>,
    done: oneshot::Sender<Result<Response, Error>>,
}

#[derive(Default)]
struct Pending {
    /// Set once the connection is unusable; every later call gets it.
    closed: Option<Error>,
    commands: HashMap<String, InFlight>,
}

impl Pending {
    fn close(&mut self, err: Error) {
        if self.closed.is_none() {
            self.closed = Some(err.clone());
        }
        for (_, command) in self.commands.drain() {
            let _ = command.done.send(Err(err.clone()));
        }
    }
}

struct Inner {
    writer: tokio::sync::Mutex<WriteHalf<BoxStream>>,
    pending: Arc<Mutex<Pending>>,
    next_tag: AtomicU64,
    timeout: Duration,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A logged-in connection to one router. Cheap to clone; clones share the
/// connection, which closes when the last one is dropped.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

fn lock(pending: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    // A panic while holding this lock leaves the map consistent enough.
    pending
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Client {
    /// Connects over plain TCP and logs in.
    pub async fn connect(
        addr: &str,
        username: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<Client, Error> {
        Self::connect_with(ConnectOptions {
            addr: addr.to_owned(),
            username: username.to_owned(),
            password: password.to_owned(),
            timeout,
            tls: None,
        })
        .await
    }

    /// Connects (over TLS when `options.tls` is set) and logs in.
    pub async fn connect_with(options: ConnectOptions) -> Result<Client, Error> {
        let timeout = options.timeout;
        let tcp = tcp_connect(&options.addr, timeout).await?;
        let stream: BoxStream = match options.tls {
            None => Box::new(tcp),
            Some(pin) => Box::new(
                tls_handshake(tcp, &options.addr, Some(pin), timeout)
                    .await?
                    .0,
            ),
        };
        let (mut reader, writer) = tokio::io::split(stream);
        let mut writer = writer;
        let mut decoder = Decoder::new();
        tokio::time::timeout(
            timeout,
            login(
                &mut reader,
                &mut writer,
                &mut decoder,
                &options.username,
                &options.password,
            ),
        )
        .await
        .map_err(|_| Error::Timeout(timeout))??;

        let pending = Arc::new(Mutex::new(Pending::default()));
        let reader = tokio::spawn(read_replies(reader, decoder, pending.clone()));
        Ok(Client {
            inner: Arc::new(Inner {
                writer: tokio::sync::Mutex::new(writer),
                pending,
                next_tag: AtomicU64::new(1),
                timeout,
                reader,
            }),
        })
    }

    /// Runs a command and returns its rows. `args` become `=key=value`
    /// words (`.id` and `.proplist` included); `queries` are passed through
    /// as query words, with or without their leading `?`.
    pub async fn command(
        &self,
        path: &str,
        args: &[(&str, &str)],
        queries: &[&str],
    ) -> Result<Vec<Row>, Error> {
        let mut command = Command::new(path);
        for (key, value) in args {
            command = command.attribute(*key, *value);
        }
        for query in queries {
            command = command.query(query);
        }
        Ok(self.execute(command).await?.rows)
    }

    /// `print` with an optional `.proplist` and queries.
    pub async fn print(
        &self,
        menu: &str,
        proplist: &[&str],
        queries: &[&str],
    ) -> Result<Vec<Row>, Error> {
        let proplist = proplist.join(",");
        let args: Vec<(&str, &str)> = if proplist.is_empty() {
            Vec::new()
        } else {
            vec![(".proplist", proplist.as_str())]
        };
        self.command(&format!("{menu}/print"), &args, queries).await
    }

    /// `add`, returning the new item's id (`*1A`).
    pub async fn add(&self, menu: &str, args: &[(&str, &str)]) -> Result<String, Error> {
        let mut command = Command::new(format!("{menu}/add"));
        for (key, value) in args {
            command = command.attribute(*key, *value);
        }
        self.execute(command)
            .await?
            .ret
            .ok_or_else(|| Error::Protocol("add answered without an id (=ret=)".into()))
    }

    /// Runs any command; its tag is replaced by one of the client's own.
    pub async fn execute(&self, mut command: Command) -> Result<Response, Error> {
        let inner = &self.inner;
        let tag = inner.next_tag.fetch_add(1, Ordering::Relaxed).to_string();
        command.tag = Some(tag.clone());
        let bytes = command
            .encode()
            .map_err(|e| Error::Protocol(format!("cannot encode the command: {e}")))?;
        let (done, answer) = oneshot::channel();
        {
            let mut pending = lock(&inner.pending);
            if let Some(err) = &pending.closed {
                return Err(err.clone());
            }
            pending.commands.insert(
                tag.clone(),
                InFlight {
                    response: Response::default(),
                    trap: None,
                    done,
                },
            );
        }
        let mut written = false;
        let outcome = tokio::time::timeout(inner.timeout, async {
            {
                let mut writer = inner.writer.lock().await;
                let sent = async {
                    writer.write_all(&bytes).await?;
                    writer.flush().await
                }
                .await;
                if let Err(err) = sent {
                    return Err(Error::ConnectionLost(err.to_string()));
                }
                written = true;
            }
            answer
                .await
                .unwrap_or_else(|_| Err(Error::ConnectionLost("the reply reader stopped".into())))
        })
        .await;
        match outcome {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => {
                if !written {
                    // Part of the sentence may be on the wire: the stream
                    // is out of step, so nothing more can be sent on it.
                    lock(&inner.pending).close(err.clone());
                }
                lock(&inner.pending).commands.remove(&tag);
                Err(err)
            }
            Err(_) => {
                let mut pending = lock(&inner.pending);
                pending.commands.remove(&tag);
                if !written {
                    pending.close(Error::ConnectionLost(
                        "a command could not be sent within the timeout".into(),
                    ));
                }
                // A late answer to this tag is dropped by the reader.
                Err(Error::Timeout(inner.timeout))
            }
        }
    }

    /// True once the connection has failed or closed; open a new client.
    pub fn is_closed(&self) -> bool {
        lock(&self.inner.pending).closed.is_some()
    }

    /// Ends the session politely (`/quit`) and closes the connection.
    pub async fn close(self) {
        let inner = &self.inner;
        if let Ok(bytes) = Command::new("/quit").encode() {
            let _ = tokio::time::timeout(inner.timeout, async {
                let mut writer = inner.writer.lock().await;
                let _ = writer.write_all(&bytes).await;
                let _ = writer.shutdown().await;
            })
            .await;
        }
        lock(&inner.pending).close(Error::ConnectionLost("closed by ispd".into()));
    }
}

/// Reads the fingerprint of a router's API-SSL certificate without trusting
/// it, so that an operator can confirm and pin it (trust on first use).
pub async fn fetch_fingerprint(addr: &str, timeout: Duration) -> Result<Fingerprint, Error> {
    let tcp = tcp_connect(addr, timeout).await?;
    let (mut stream, seen) = tls_handshake(tcp, addr, None, timeout).await?;
    let _ = stream.shutdown().await;
    Ok(seen)
}

async fn tcp_connect(addr: &str, timeout: Duration) -> Result<TcpStream, Error> {
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| Error::Unreachable(format!("{addr}: no answer within {timeout:?}")))?
        .map_err(|e| Error::Unreachable(format!("{addr}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

async fn tls_handshake(
    tcp: TcpStream,
    addr: &str,
    pin: Option<Fingerprint>,
    timeout: Duration,
) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, Fingerprint), Error> {
    let verifier = Arc::new(PinnedVerifier {
        pin,
        seen: Mutex::new(None),
        provider: Arc::new(rustls::crypto::ring::default_provider()),
    });
    let config = rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let host = match addr.parse::<std::net::SocketAddr>() {
        Ok(socket) => socket.ip().to_string(),
        Err(_) => addr
            .rsplit_once(':')
            .map_or(addr, |(host, _)| host)
            .trim_matches(['[', ']'])
            .to_owned(),
    };
    let name = rustls::pki_types::ServerName::try_from(host)
        .map_err(|e| Error::Tls(format!("{addr}: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = tokio::time::timeout(timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| Error::Timeout(timeout))?
        .map_err(|e| Error::Tls(e.to_string()))?;
    let seen = verifier
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .ok_or_else(|| Error::Tls("the router presented no certificate".into()))?;
    Ok((stream, seen))
}

/// Accepts exactly one certificate, by the SHA-256 of its DER bytes (or,
/// with no pin, any certificate, only to report its fingerprint). Handshake
/// signatures are still verified against that certificate's key.
#[derive(Debug)]
struct PinnedVerifier {
    pin: Option<Fingerprint>,
    seen: Mutex<Option<Fingerprint>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let seen = Fingerprint::of_certificate(end_entity.as_ref());
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(seen);
        match self.pin {
            Some(pin) if pin != seen => Err(rustls::Error::General(format!(
                "certificate fingerprint {seen} is not the pinned {pin}"
            ))),
            _ => Ok(rustls::client::danger::ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

async fn send(writer: &mut WriteHalf<BoxStream>, command: &Command) -> Result<(), Error> {
    let bytes = command
        .encode()
        .map_err(|e| Error::Protocol(format!("cannot encode the command: {e}")))?;
    writer
        .write_all(&bytes)
        .await
        .map_err(|e| Error::ConnectionLost(e.to_string()))?;
    writer
        .flush()
        .await
        .map_err(|e| Error::ConnectionLost(e.to_string()))
}

/// Reads one reply sentence, before the reader task exists (during login).
async fn read_reply(
    reader: &mut ReadHalf<BoxStream>,
    decoder: &mut Decoder,
) -> Result<Option<Reply>, Error> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(words) = decoder
            .next_sentence()
            .map_err(|e| Error::Protocol(e.to_string()))?
        {
            return Reply::parse(&words)
                .map(Some)
                .map_err(|e| Error::Protocol(e.to_string()));
        }
        match reader.read(&mut buf).await {
            Ok(0) => return Ok(None),
            Ok(n) => decoder.feed(&buf[..n]),
            Err(e) => return Err(Error::ConnectionLost(e.to_string())),
        }
    }
}

/// `/login` as RouterOS 6.43 and later expect it; if the router answers
/// with a challenge (`=ret=`, before 6.43), the MD5 challenge response.
async fn login(
    reader: &mut ReadHalf<BoxStream>,
    writer: &mut WriteHalf<BoxStream>,
    decoder: &mut Decoder,
    username: &str,
    password: &str,
) -> Result<(), Error> {
    let plain = Command::new("/login")
        .attribute("name", username)
        .attribute("password", password);
    send(writer, &plain).await?;
    let challenge = match login_answer(reader, decoder).await? {
        None => return Ok(()),
        Some(challenge) => challenge,
    };
    let challenge = hex::decode(&challenge)
        .map_err(|_| Error::Protocol("the login challenge is not hexadecimal".into()))?;
    let mut hasher = Md5::new();
    hasher.update([0u8]);
    hasher.update(password.as_bytes());
    hasher.update(&challenge);
    let response = format!("00{}", hex::encode(hasher.finalize()));
    let legacy = Command::new("/login")
        .attribute("name", username)
        .attribute("response", response);
    send(writer, &legacy).await?;
    match login_answer(reader, decoder).await? {
        None => Ok(()),
        Some(_) => Err(Error::Protocol(
            "the router sent a second login challenge".into(),
        )),
    }
}

/// Reads the replies to a `/login` up to `!done`: `Some(challenge)` when
/// the router wants the legacy flow.
async fn login_answer(
    reader: &mut ReadHalf<BoxStream>,
    decoder: &mut Decoder,
) -> Result<Option<String>, Error> {
    let mut refused = None;
    loop {
        let Some(reply) = read_reply(reader, decoder).await? else {
            // Some RouterOS versions close the connection on a bad password.
            return Err(Error::LoginFailed(refused.unwrap_or_else(|| {
                "the router closed the connection during login".into()
            })));
        };
        match reply.kind {
            ReplyKind::Trap { message, .. } => refused = Some(message),
            ReplyKind::Fatal { reason } => return Err(Error::LoginFailed(reason)),
            ReplyKind::Done { ret } => {
                return match refused {
                    Some(message) => Err(Error::LoginFailed(message)),
                    None => Ok(ret),
                };
            }
            ReplyKind::Re(_) | ReplyKind::Empty => {}
        }
    }
}

/// The reader task: dispatches replies by tag until the connection ends,
/// then fails whatever is still waiting.
async fn read_replies(
    mut reader: ReadHalf<BoxStream>,
    mut decoder: Decoder,
    pending: Arc<Mutex<Pending>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let err = 'connection: loop {
        loop {
            let words = match decoder.next_sentence() {
                Ok(Some(words)) => words,
                Ok(None) => break,
                Err(e) => break 'connection Error::Protocol(e.to_string()),
            };
            let reply = match Reply::parse(&words) {
                Ok(reply) => reply,
                Err(e) => break 'connection Error::Protocol(e.to_string()),
            };
            if let Some(err) = dispatch(&pending, reply) {
                break 'connection err;
            }
        }
        match reader.read(&mut buf).await {
            Ok(0) if decoder.is_idle() => {
                break Error::ConnectionLost("the router closed the connection".into())
            }
            Ok(0) => {
                break Error::ConnectionLost(
                    "the router closed the connection in the middle of a reply".into(),
                )
            }
            Ok(n) => decoder.feed(&buf[..n]),
            Err(e) => break Error::ConnectionLost(e.to_string()),
        }
    };
    tracing::debug!(error = %err, "RouterOS connection ended");
    lock(&pending).close(err);
}

/// Files one reply; returns the error that ends the connection, if any.
fn dispatch(pending: &Mutex<Pending>, reply: Reply) -> Option<Error> {
    if let ReplyKind::Fatal { reason } = reply.kind {
        return Some(Error::Fatal(reason));
    }
    let Some(tag) = reply.tag else {
        return Some(Error::Protocol(format!(
            "a reply without a tag: {:?}",
            reply.kind
        )));
    };
    let mut pending = lock(pending);
    let Some(command) = pending.commands.get_mut(&tag) else {
        // The command timed out and nobody waits for it any more.
        tracing::debug!(%tag, "dropping a reply to an abandoned command");
        return None;
    };
    match reply.kind {
        ReplyKind::Re(row) => command.response.rows.push(row),
        ReplyKind::Trap { category, message } => {
            // The first trap is the cause; `!done` follows.
            command
                .trap
                .get_or_insert(Error::Trap { category, message });
        }
        ReplyKind::Empty => {}
        ReplyKind::Done { ret } => {
            if let Some(command) = pending.commands.remove(&tag) {
                let result = match command.trap {
                    Some(trap) => Err(trap),
                    None => Ok(Response {
                        ret,
                        ..command.response
                    }),
                };
                let _ = command.done.send(result);
            }
        }
        // Returned above, before the lookup.
        ReplyKind::Fatal { .. } => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_the_usual_spellings() {
        let plain = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(
            Fingerprint::parse(&plain).unwrap(),
            Fingerprint::parse(&colons).unwrap()
        );
        assert_eq!(Fingerprint::parse(&plain).unwrap().to_string(), colons);
        assert!(Fingerprint::parse("abcd").is_err());
        assert!(Fingerprint::parse(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        let options = ConnectOptions {
            addr: "192.0.2.1:8728".into(),
            username: "admin".into(),
            password: "hunter2".into(),
            timeout: Duration::from_secs(1),
            tls: None,
        };
        assert!(!format!("{options:?}").contains("hunter2"));
    }
}
