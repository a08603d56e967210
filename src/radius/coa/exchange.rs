//! One UDP exchange with a NAS: send, wait, resend, and what each attempt
//! came to.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::UdpSocket;

use super::packet::{parse_reply, Reply};
use super::request::RequestKind;
use super::CoaSettings;

/// What one send of the packet came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    Reply(Reply),
    /// Nothing valid arrived within the timeout.
    NoAnswer,
    /// The packet could not be sent, or the NAS's host refused it.
    Unreachable(String),
}

impl AttemptResult {
    pub fn as_str(&self) -> &'static str {
        match self {
            AttemptResult::Reply(Reply::Ack) => "ack",
            AttemptResult::Reply(Reply::Nak { .. }) => "nak",
            AttemptResult::NoAnswer => "no_answer",
            AttemptResult::Unreachable(_) => "unreachable",
        }
    }
}

/// A whole exchange: one result per send, the last one decisive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub attempts: Vec<AttemptResult>,
    /// Datagrams that were not a valid answer (wrong id, bad authenticator).
    pub ignored_replies: u32,
}

impl Exchange {
    pub fn last(&self) -> &AttemptResult {
        self.attempts.last().unwrap_or(&AttemptResult::NoAnswer)
    }
}

fn unspecified_for(target: &SocketAddr) -> SocketAddr {
    match target {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    }
}

/// Sends `request` to `target` and waits for its answer, retransmitting as
/// `settings` say. See the module's documentation.
pub async fn exchange(
    kind: RequestKind,
    target: SocketAddr,
    request: &[u8],
    secret: &[u8],
    settings: CoaSettings,
) -> Exchange {
    let mut result = Exchange {
        attempts: Vec::new(),
        ignored_replies: 0,
    };
    let socket = match UdpSocket::bind(unspecified_for(&target)).await {
        Ok(socket) => socket,
        Err(e) => {
            result.attempts.push(AttemptResult::Unreachable(format!(
                "no local UDP socket: {e}"
            )));
            return result;
        }
    };
    // Connected: the kernel drops datagrams from other addresses and
    // reports ICMP port-unreachable as ConnectionRefused.
    if let Err(e) = socket.connect(target).await {
        result
            .attempts
            .push(AttemptResult::Unreachable(format!("{target}: {e}")));
        return result;
    }
    let mut buf = vec![0u8; 4096];
    for _ in 0..settings.attempts.max(1) {
        if let Err(e) = socket.send(request).await {
            result.attempts.push(AttemptResult::Unreachable(format!(
                "sending to {target}: {e}"
            )));
            return result;
        }
        let deadline = tokio::time::Instant::now() + settings.timeout;
        let attempt = loop {
            match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_elapsed) => break AttemptResult::NoAnswer,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    break AttemptResult::Unreachable(format!(
                        "{target} refused the packet (ICMP port unreachable): nothing listens on that port"
                    ));
                }
                Ok(Err(e)) => break AttemptResult::Unreachable(format!("{target}: {e}")),
                Ok(Ok(n)) => match parse_reply(kind, request, &buf[..n], secret) {
                    Ok(reply) => break AttemptResult::Reply(reply),
                    Err(problem) => {
                        result.ignored_replies += 1;
                        tracing::warn!(nas = %target, ?problem, "ignored a datagram that is not the answer");
                    }
                },
            }
        };
        let done = !matches!(attempt, AttemptResult::NoAnswer);
        result.attempts.push(attempt);
        if done {
            break;
        }
    }
    result
}
