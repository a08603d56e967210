//! One webhook request: a POST over a fresh HTTP/1.1 connection (TLS for
//! `https`, verified against Mozilla's roots), with a deadline for the
//! whole exchange. Redirects are not followed: a 3xx is an answer like any
//! other that is not 2xx.
//!
//! hyper's own client connection is used rather than a client crate: it is
//! already in the tree (axum serves with it), and a webhook needs neither a
//! connection pool nor cookies nor proxies.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, HOST, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// At most this much of an answer's body is kept (for `last_error`).
const EXCERPT_BYTES: usize = 256;

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The start of the body, as text.
    pub excerpt: String,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the URL cannot be used: {0}")]
    Url(String),
    #[error("could not connect to {target}: {message}")]
    Connect { target: String, message: String },
    #[error("TLS with {host} failed: {message}")]
    Tls { host: String, message: String },
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("the HTTP exchange failed: {0}")]
    Http(String),
}

/// POSTs `body` to `url` with these headers (and Host, Content-Length,
/// User-Agent and `Connection: close`), waiting at most `timeout` for the
/// connection, the answer and the start of its body.
pub async fn post(
    url: &str,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    timeout: Duration,
) -> Result<Answer, SendError> {
    let uri: Uri = url.parse().map_err(|_| SendError::Url(url.into()))?;
    let exchange = exchange(uri, headers, body);
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(SendError::Timeout(timeout.as_secs())),
    }
}

async fn exchange(
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
) -> Result<Answer, SendError> {
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(SendError::Url(uri.to_string())),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| SendError::Url(uri.to_string()))?
        .clone();
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let target = format!("{}:{port}", authority.host());
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| SendError::Connect {
            target: target.clone(),
            message: e.to_string(),
        })?;
    let _ = tcp.set_nodelay(true);

    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(HOST, authority.as_str())
        .header(
            USER_AGENT,
            concat!("ispd-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header(CONTENT_LENGTH, body.len())
        .header(CONNECTION, "close");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| SendError::Http(e.to_string()))?;

    if https {
        let name =
            rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| SendError::Tls {
                host: host.clone(),
                message: e.to_string(),
            })?;
        let tls = tokio_rustls::TlsConnector::from(tls_config()?)
            .connect(name, tcp)
            .await
            .map_err(|e| SendError::Tls {
                host: host.clone(),
                message: e.to_string(),
            })?;
        send(TokioIo::new(tls), request).await
    } else {
        send(TokioIo::new(tcp), request).await
    }
}

async fn send<I>(io: I, request: Request<Full<Bytes>>) -> Result<Answer, SendError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let http = |e: hyper::Error| SendError::Http(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(http)?;
    // The connection runs beside the request; aborted when this returns
    // (or is cancelled by the deadline), which closes the socket.
    let driver = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let response = sender.send_request(request).await.map_err(http)?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut kept = Vec::new();
    while kept.len() < EXCERPT_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let room = EXCERPT_BYTES - kept.len();
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            // The status is what counts; a body cut short does not undo it.
            Some(Err(_)) | None => break,
        }
    }
    drop(driver);
    let excerpt = String::from_utf8_lossy(&kept)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string();
    Ok(Answer { status, excerpt })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The TLS settings of every webhook: ring, the default protocol versions,
/// and Mozilla's root certificates (webpki-roots), the same on every host.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, SendError> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map(|builder| Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|message| SendError::Tls {
            host: String::new(),
            message,
        })
}
