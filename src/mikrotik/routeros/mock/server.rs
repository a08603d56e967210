//! The mock's listeners and connections: TLS, the login (both flows),
//! and each sentence answered from the state, with the faults and delays
//! a test set.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use md5::{Digest as _, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::rustls;

use super::state::{done, trap};
use super::{locked, Fault, Shared, TlsIdentity};
use crate::mikrotik::routeros::codec::{Command, Decoder, Reply, ReplyKind};

pub(super) fn tls_acceptor(identity: &TlsIdentity) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
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

pub(super) async fn accept_loop(
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
