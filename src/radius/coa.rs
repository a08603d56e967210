//! RFC 5176 Dynamic Authorization: Disconnect-Request and CoA-Request sent
//! to the NAS that holds an accounting session.
//!
//! **Targeting.** A session is a `radacct` row. Its `nasipaddress` (the
//! NAS-IP-Address the NAS reported) names the NAS; the `nas` row with that
//! `nasname` gives the shared secret. The request goes to that address, on
//! the UDP port in the NAS's `ports` column when it is set, else on 3799
//! (RFC 5176's port, which MikroTik also listens on). FreeRADIUS uses
//! `ports` only for SNMP port counting in `checkrad`, which ispd does not
//! rely on, so ispd gives the column this meaning: set it for a NAS whose
//! CoA port is not 3799 (e.g. 1700 on some Cisco setups). A NAS known only
//! by a host name in `nas` is not matched: register it by its address.
//!
//! **The request** identifies the session by User-Name, Acct-Session-Id,
//! NAS-IP-Address (or NAS-IPv6-Address) and Framed-IP-Address when known.
//! A CoA-Request also carries the changes: `Mikrotik-Rate-Limit`
//! (vendor 14988, attribute 8) and/or `Session-Timeout`. Every request
//! also carries `Event-Timestamp` (seconds since the epoch, taken once, so
//! a retransmission is the same packet) and `Message-Authenticator`, as
//! RFC 5176 section 3.4 recommends against replay and forgery. They are
//! signed in this order ([`sign_request`]; the `radius` crate encodes the
//! attributes but knows nothing of Message-Authenticator):
//! 1. Message-Authenticator = HMAC-MD5(secret; Code, Identifier, Length,
//!    16 zero octets, Attributes with the Message-Authenticator value
//!    zeroed), RFC 5176 section 3.4 / RFC 3579 section 3.2 (FreeRADIUS
//!    computes and checks it the same way for these codes);
//! 2. Request Authenticator = MD5(Code, Identifier, Length, 16 zero octets,
//!    Attributes (now with the Message-Authenticator), Secret), RFC 5176
//!    section 2.3.
//!
//! **Retransmission.** The same packet (same Identifier and
//! Authenticator, as RFC 5176 and RFC 2865 require for a retransmission)
//! is sent up to `RADIUS_COA_ATTEMPTS` times, waiting
//! `RADIUS_COA_TIMEOUT_MS` for an answer after each. A reply counts only
//! if it comes from the NAS's address, has the request's Identifier, is
//! an ACK or NAK of the request's kind, its Response Authenticator
//! verifies with the secret and, if it carries a Message-Authenticator,
//! that verifies too (HMAC-MD5 over the reply with the request's
//! Request Authenticator in place and the attribute's value zeroed, RFC
//! 3579 section 3.2; or, as FreeRADIUS up to 3.2.3 computed it, with zeros
//! in place of the authenticator); anything else is ignored (and logged). An
//! ICMP port-unreachable (seen as "connection refused" on the connected
//! socket) or a send error ends the exchange as unreachable.
//!
//! **Outcomes**: ACK; NAK with its Error-Cause in words (RFC 5176 section
//! 3.5); a timeout after the last attempt (HTTP 504); unreachable (HTTP
//! 502). Every attempt is one audit-log entry with its outcome.
//!
//! The secret is never logged: [`radius::core::packet::Packet`]'s `Debug`
//! redacts it, and nothing here prints it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use md5::{Digest as _, Md5};

use radius::core::avp::AVP;
use radius::core::code::Code;
use radius::core::packet::Packet;
use radius::core::vsa::{StringVSA, VSA};
use radius::core::{rfc2865, rfc2866, rfc2869, rfc3162, rfc3576};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use serde_json::json;
use tokio::net::UdpSocket;
use tracing::instrument;

use crate::audit::{self, Actor};
use crate::config::Config;
use crate::error::{AppError, FieldErrors};

/// RFC 5176's UDP port for Disconnect and CoA requests.
pub const DEFAULT_COA_PORT: u16 = 3799;
/// MikroTik's IANA enterprise number.
pub const MIKROTIK_VENDOR_ID: i32 = 14988;
/// `Mikrotik-Rate-Limit` in MikroTik's dictionary.
pub const MIKROTIK_RATE_LIMIT: u8 = 8;

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoaSettings {
    /// Sends of the same packet, at least 1.
    pub attempts: u32,
    /// How long to wait for an answer after each send.
    pub timeout: Duration,
}

impl CoaSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            attempts: config.radius_coa_attempts.max(1),
            timeout: config.radius_coa_timeout,
        }
    }
}

impl Default for CoaSettings {
    fn default() -> Self {
        Self {
            attempts: 3,
            timeout: Duration::from_secs(3),
        }
    }
}

/// Disconnect or CoA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Disconnect,
    Coa,
}

impl RequestKind {
    pub fn code(self) -> Code {
        match self {
            RequestKind::Disconnect => Code::DisconnectRequest,
            RequestKind::Coa => Code::CoARequest,
        }
    }

    fn ack(self) -> Code {
        match self {
            RequestKind::Disconnect => Code::DisconnectACK,
            RequestKind::Coa => Code::CoAACK,
        }
    }

    fn nak(self) -> Code {
        match self {
            RequestKind::Disconnect => Code::DisconnectNAK,
            RequestKind::Coa => Code::CoANAK,
        }
    }

    /// The packet's name, e.g. `Disconnect-Request`.
    pub fn name(self) -> &'static str {
        self.code().string()
    }

    /// The audit log's action.
    pub fn audit_action(self) -> &'static str {
        match self {
            RequestKind::Disconnect => "radius_session.disconnect",
            RequestKind::Coa => "radius_session.coa",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Disconnect => "disconnect",
            RequestKind::Coa => "coa",
        }
    }
}

/// RFC 5176 section 3.5's Error-Cause values, in words.
pub fn error_cause_text(cause: u32) -> &'static str {
    match cause {
        201 => "Residual-Session-Context-Removed",
        202 => "Invalid-EAP-Packet (Ignored)",
        401 => "Unsupported-Attribute",
        402 => "Missing-Attribute",
        403 => "NAS-Identification-Mismatch",
        404 => "Invalid-Request",
        405 => "Unsupported-Service",
        406 => "Unsupported-Extension",
        407 => "Invalid-Attribute-Value",
        501 => "Administratively-Prohibited",
        502 => "Request-Not-Routable (Proxy)",
        503 => "Session-Context-Not-Found",
        504 => "Session-Context-Not-Removable",
        505 => "Other-Proxy-Processing-Error",
        506 => "Resources-Unavailable",
        507 => "Request-Initiated",
        508 => "Multiple-Session-Selection-Unsupported",
        _ => "Unknown-Error-Cause",
    }
}

/// The accounting session a request is about, as `radacct` has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub radacctid: i64,
    pub acctsessionid: String,
    pub username: Option<String>,
    pub nasipaddress: String,
    pub framedipaddress: Option<String>,
}

/// What a CoA-Request changes. At least one is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoaChanges {
    /// A `Mikrotik-Rate-Limit` value, e.g. `5M/20M` or
    /// `5M/20M 8M/30M 4M/15M 10/10 8`.
    pub rate_limit: Option<String>,
    /// `Session-Timeout`, in seconds.
    pub session_timeout_secs: Option<u32>,
}

/// One rate, as RouterOS writes it: digits, optionally `k`, `M` or `G`.
fn is_rate(text: &str) -> bool {
    let digits = text.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G']);
    text.len() - digits.len() <= 1
        && !digits.is_empty()
        && digits.len() <= 10
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A `Mikrotik-Rate-Limit` value: `rx[/tx] [burst-rx[/tx] [threshold-rx[/tx]
/// [burst-time-rx[/tx] [priority] [min-rx[/tx]]]]]`, at most 128 characters.
pub fn check_rate_limit(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("must not be empty; leave it out to keep the current rate".into());
    }
    if text.len() > 128 {
        return Err("must be at most 128 characters long".into());
    }
    let parts: Vec<&str> = text.split_whitespace().collect();
    let well_formed = parts.len() <= 6
        && parts.iter().all(|part| {
            let rates: Vec<&str> = part.split('/').collect();
            rates.len() <= 2 && rates.iter().all(|r| is_rate(r))
        });
    if well_formed {
        Ok(parts.join(" "))
    } else {
        Err(format!(
            "\"{text}\" is not a MikroTik rate limit such as 5M/20M or 5M/20M 8M/30M 4M/15M 10/10"
        ))
    }
}

impl CoaChanges {
    /// Checks the raw values; errors by field.
    pub fn parse(
        rate_limit: Option<&str>,
        session_timeout_secs: Option<i64>,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let rate_limit = rate_limit.and_then(|r| {
            check_rate_limit(r)
                .map_err(|e| errors.insert("rate_limit".into(), e))
                .ok()
        });
        let session_timeout_secs = match session_timeout_secs {
            None => None,
            Some(t) if (1..=i64::from(i32::MAX)).contains(&t) => Some(t as u32),
            Some(_) => {
                errors.insert(
                    "session_timeout_secs".into(),
                    format!("must be a whole number of seconds from 1 to {}", i32::MAX),
                );
                None
            }
        };
        if errors.is_empty() && rate_limit.is_none() && session_timeout_secs.is_none() {
            errors.insert(
                "_body".into(),
                "name at least one change: rate_limit or session_timeout_secs".into(),
            );
        }
        if errors.is_empty() {
            Ok(Self {
                rate_limit,
                session_timeout_secs,
            })
        } else {
            Err(errors)
        }
    }
}

/// The `Vendor-Specific` attribute carrying `Mikrotik-Rate-Limit`.
pub fn mikrotik_rate_limit_avp(value: &str) -> AVP {
    let vsa = StringVSA::new(MIKROTIK_VENDOR_ID, MIKROTIK_RATE_LIMIT, value);
    AVP::from_bytes(rfc2865::VENDOR_SPECIFIC_TYPE, &vsa.message())
}

/// Where the RADIUS header ends and the attributes begin.
const HEADER_LEN: usize = 20;
/// The Authenticator field of the header.
const AUTHENTICATOR: std::ops::Range<usize> = 4..HEADER_LEN;
/// Message-Authenticator's value: 16 octets.
const MESSAGE_AUTHENTICATOR_LEN: usize = 16;

/// HMAC-MD5 (RFC 2104): MD5 over a 64-octet block.
pub fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..16].copy_from_slice(&Md5::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Md5::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(data)
        .finalize();
    Md5::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Equal without an early exit: how much of a MAC matched is not told by
/// the time the comparison takes.
fn same_mac(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where the values of the attributes of `typ` start in an encoded packet
/// (its length field already checked); an error when the attributes do not
/// add up to the packet.
fn attribute_values(packet: &[u8], typ: u8) -> Result<Vec<std::ops::Range<usize>>, String> {
    let mut found = Vec::new();
    let mut at = HEADER_LEN;
    while at < packet.len() {
        let Some(&len) = packet.get(at + 1) else {
            return Err(format!("attribute at octet {at} has no length"));
        };
        let len = usize::from(len);
        if len < 2 || at + len > packet.len() {
            return Err(format!("attribute at octet {at} has length {len}"));
        }
        if packet[at] == typ {
            found.push(at + 2..at + len);
        }
        at += len;
    }
    Ok(found)
}

/// The one Message-Authenticator value of `packet`: `None` when there is
/// none; [`ReplyProblem::BadMessageAuthenticator`] when there are several
/// or it is not 16 octets (RFC 3579 section 3.2), `Malformed` when the
/// attributes do not add up.
fn message_authenticator(packet: &[u8]) -> Result<Option<std::ops::Range<usize>>, ReplyProblem> {
    let found = attribute_values(packet, rfc2869::MESSAGE_AUTHENTICATOR_TYPE)
        .map_err(ReplyProblem::Malformed)?;
    match found.as_slice() {
        [] => Ok(None),
        [value] if value.len() == MESSAGE_AUTHENTICATOR_LEN => Ok(Some(value.clone())),
        _ => Err(ReplyProblem::BadMessageAuthenticator),
    }
}

/// HMAC-MD5 of `packet` with `authenticator` in its Authenticator field and
/// the Message-Authenticator at `value` zeroed.
fn compute_message_authenticator(
    packet: &[u8],
    authenticator: &[u8],
    value: std::ops::Range<usize>,
    secret: &[u8],
) -> [u8; 16] {
    let mut copy = packet.to_vec();
    copy[AUTHENTICATOR].copy_from_slice(authenticator);
    copy[value].fill(0);
    hmac_md5(secret, &copy)
}

/// Signs an encoded Disconnect-Request or CoA-Request that holds one
/// Message-Authenticator: that first, computed with the Request
/// Authenticator zeroed, then the Request Authenticator over the packet
/// that holds it (RFC 5176 sections 2.3 and 3.4, RFC 3579 section 3.2).
pub fn sign_request(packet: &mut [u8], secret: &[u8]) -> Result<(), String> {
    let value = message_authenticator(packet)
        .ok()
        .flatten()
        .ok_or_else(|| "the request has no single 16-octet Message-Authenticator".to_string())?;
    packet[AUTHENTICATOR].fill(0);
    let mac = compute_message_authenticator(packet, &[0; 16], value.clone(), secret);
    packet[value].copy_from_slice(&mac);
    // The Authenticator field is zero here, as MD5 wants it.
    let request_authenticator = Md5::new()
        .chain_update(&*packet)
        .chain_update(secret)
        .finalize();
    packet[AUTHENTICATOR].copy_from_slice(&request_authenticator);
    Ok(())
}

/// Whether a request's Message-Authenticator verifies (what the NAS checks).
pub fn request_message_authenticator_is_valid(packet: &[u8], secret: &[u8]) -> bool {
    match message_authenticator(packet) {
        Ok(Some(value)) => same_mac(
            &compute_message_authenticator(packet, &[0; 16], value.clone(), secret),
            &packet[value],
        ),
        _ => false,
    }
}

/// Seconds since the epoch, for Event-Timestamp (a u32 until 2106).
pub fn event_timestamp_now() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// The request packet, encoded and signed, with the identifier it got.
/// Its Event-Timestamp is now.
pub fn build_request(
    kind: RequestKind,
    session: &SessionRef,
    changes: Option<&CoaChanges>,
    secret: &[u8],
) -> Result<(Vec<u8>, u8), String> {
    build_request_at(kind, session, changes, secret, event_timestamp_now())
}

/// [`build_request`] with the Event-Timestamp given.
pub fn build_request_at(
    kind: RequestKind,
    session: &SessionRef,
    changes: Option<&CoaChanges>,
    secret: &[u8],
    event_timestamp: u32,
) -> Result<(Vec<u8>, u8), String> {
    let mut packet = Packet::new(kind.code(), secret);
    // First, as FreeRADIUS places it; its value is filled in by
    // sign_request once the packet is encoded.
    packet.add(AVP::from_bytes(
        rfc2869::MESSAGE_AUTHENTICATOR_TYPE,
        &[0; MESSAGE_AUTHENTICATOR_LEN],
    ));
    if let Some(username) = session.username.as_deref().filter(|u| !u.is_empty()) {
        rfc2865::add_user_name(&mut packet, username);
    }
    rfc2866::add_acct_session_id(&mut packet, &session.acctsessionid);
    match session.nasipaddress.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => rfc2865::add_nas_ip_address(&mut packet, &v4),
        Ok(IpAddr::V6(v6)) => rfc3162::add_nas_ipv6_address(&mut packet, &v6),
        Err(_) => {}
    }
    if let Some(Ok(v4)) = session
        .framedipaddress
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(str::parse::<Ipv4Addr>)
    {
        rfc2865::add_framed_ip_address(&mut packet, &v4);
    }
    if let Some(changes) = changes {
        if let Some(rate) = &changes.rate_limit {
            packet.add(mikrotik_rate_limit_avp(rate));
        }
        if let Some(timeout) = changes.session_timeout_secs {
            rfc2865::add_session_timeout(&mut packet, timeout);
        }
    }
    packet.add(AVP::from_u32(
        rfc2869::EVENT_TIMESTAMP_TYPE,
        event_timestamp,
    ));
    let mut bytes = packet.encode().map_err(|e| e.to_string())?;
    sign_request(&mut bytes, secret)?;
    Ok((bytes, packet.get_identifier()))
}

/// A verified answer from the NAS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Ack,
    Nak { error_cause: Option<u32> },
}

/// Why a datagram was not taken as the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyProblem {
    TooShort,
    WrongIdentifier,
    WrongCode(u8),
    BadAuthenticator,
    /// A Message-Authenticator that does not verify (or is not one
    /// 16-octet attribute): dropped like a forged reply (RFC 3579 3.2).
    BadMessageAuthenticator,
    Malformed(String),
}

/// Reads `response` as the answer to `request` (both encoded): the same
/// identifier, an ACK or NAK of `kind`, a Response Authenticator that
/// verifies with `secret` (MD5 of the response with the request's
/// authenticator in place, then the secret; RFC 5176 section 2.3) and, if
/// the response carries one, a Message-Authenticator that verifies
/// (HMAC-MD5 of the response with the request's authenticator in place and
/// the attribute's value zeroed; RFC 3579 section 3.2, RFC 5176 3.4).
pub fn parse_reply(
    kind: RequestKind,
    request: &[u8],
    response: &[u8],
    secret: &[u8],
) -> Result<Reply, ReplyProblem> {
    if response.len() < 20 || request.len() < 20 {
        return Err(ReplyProblem::TooShort);
    }
    if response[1] != request[1] {
        return Err(ReplyProblem::WrongIdentifier);
    }
    let code = Code::from(response[0]);
    if code != kind.ack() && code != kind.nak() {
        return Err(ReplyProblem::WrongCode(response[0]));
    }
    let length = usize::from(u16::from_be_bytes([response[2], response[3]]));
    if length < 20 || length > response.len() {
        return Err(ReplyProblem::Malformed(format!(
            "length field {length}, datagram {}",
            response.len()
        )));
    }
    // Octets past Length are padding (RFC 2865 section 3): not signed.
    let response = &response[..length];
    if !Packet::is_authentic_response(response, request, secret) {
        return Err(ReplyProblem::BadAuthenticator);
    }
    if let Some(value) = message_authenticator(response)? {
        // RFC 3579 3.2 computes it with the request's authenticator in
        // place; FreeRADIUS up to 3.2.3 (as a NAS or proxy) put zeros there
        // for Disconnect/CoA replies. Both forms are accepted: the Response
        // Authenticator checked above already ties the reply to this
        // request and the secret, and refusing the old form would turn a
        // NAS's real ACK into a time-out.
        let rfc =
            compute_message_authenticator(response, &request[AUTHENTICATOR], value.clone(), secret);
        let zeroed = compute_message_authenticator(response, &[0; 16], value.clone(), secret);
        let presented = &response[value];
        if !same_mac(&rfc, presented) && !same_mac(&zeroed, presented) {
            return Err(ReplyProblem::BadMessageAuthenticator);
        }
    }
    let packet =
        Packet::decode(response, secret).map_err(|e| ReplyProblem::Malformed(e.to_string()))?;
    if code == kind.ack() {
        Ok(Reply::Ack)
    } else {
        let error_cause = rfc3576::lookup_error_cause(&packet).and_then(Result::ok);
        Ok(Reply::Nak { error_cause })
    }
}

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

#[derive(Debug, thiserror::Error)]
pub enum CoaError {
    #[error("{0}")]
    NotFound(String),
    /// 409: the session ended, or its NAS is not registered/usable.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("some fields are not valid")]
    Invalid(FieldErrors),
    /// 504 after the last attempt.
    #[error("{0}")]
    Timeout(String),
    /// 502.
    #[error("{0}")]
    Unreachable(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl From<CoaError> for AppError {
    fn from(err: CoaError) -> Self {
        match err {
            CoaError::NotFound(what) => AppError::NotFound(what),
            CoaError::Conflict { code, message } => AppError::Conflict { code, message },
            CoaError::Invalid(fields) => AppError::validation(fields),
            CoaError::Timeout(message) => AppError::GatewayTimeout {
                code: "nas_timeout",
                message,
            },
            CoaError::Unreachable(message) => AppError::BadGateway {
                code: "nas_unreachable",
                message,
            },
            CoaError::Db(db) => db.into(),
        }
    }
}

/// What the NAS answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoaResult {
    pub kind: RequestKind,
    pub session: SessionRef,
    /// The nas row's nasname and the UDP port used.
    pub nas: String,
    pub port: u16,
    pub reply: Reply,
    pub attempts: u32,
}

impl CoaResult {
    pub fn acknowledged(&self) -> bool {
        self.reply == Reply::Ack
    }

    pub fn error_cause(&self) -> Option<u32> {
        match self.reply {
            Reply::Nak { error_cause } => error_cause,
            Reply::Ack => None,
        }
    }

    /// One sentence for a flash message or a log line.
    pub fn summary(&self) -> String {
        let who = self.session.username.as_deref().unwrap_or("(no username)");
        match self.reply {
            Reply::Ack => format!(
                "{} of session {} ({who}) acknowledged by NAS {}.",
                self.kind.name(),
                self.session.radacctid,
                self.nas
            ),
            Reply::Nak { error_cause } => format!(
                "NAS {} refused the {} for session {} ({who}): {}.",
                self.nas,
                self.kind.name(),
                self.session.radacctid,
                match error_cause {
                    Some(c) => format!("{} ({c})", error_cause_text(c)),
                    None => "no Error-Cause given".into(),
                }
            ),
        }
    }
}

/// The open session `radacctid`: 404 when there is none, 409 when it ended.
pub async fn find_open_session(
    radius_db: &impl ConnectionTrait,
    radacctid: i64,
) -> Result<SessionRef, CoaError> {
    let backend = radius_db.get_database_backend();
    // PostgreSQL's address columns are inet: read them as text (see
    // entities::radacct).
    let (nas, framed) = match backend {
        DbBackend::Postgres => ("abbrev(nasipaddress)", "abbrev(framedipaddress)"),
        _ => ("nasipaddress", "framedipaddress"),
    };
    let placeholder = match backend {
        DbBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = format!(
        "SELECT acctsessionid, username, {nas} AS nasipaddress, {framed} AS framedipaddress \
         FROM radacct WHERE radacctid = {placeholder} AND acctstoptime IS NULL"
    );
    let row = radius_db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [radacctid.into()],
        ))
        .await?;
    if let Some(row) = row {
        return Ok(SessionRef {
            radacctid,
            acctsessionid: row.try_get("", "acctsessionid")?,
            username: row.try_get("", "username")?,
            nasipaddress: row.try_get("", "nasipaddress")?,
            framedipaddress: row.try_get("", "framedipaddress")?,
        });
    }
    let exists = radius_db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!("SELECT acctsessionid FROM radacct WHERE radacctid = {placeholder}"),
            [radacctid.into()],
        ))
        .await?
        .is_some();
    if exists {
        Err(CoaError::Conflict {
            code: "session_closed",
            message: format!("session {radacctid} has already ended"),
        })
    } else {
        Err(CoaError::NotFound(format!(
            "there is no accounting session {radacctid}"
        )))
    }
}

/// Sends a Disconnect-Request for the session `radacctid` to its NAS.
#[instrument(skip_all, fields(radacct.id = radacctid))]
pub async fn disconnect_session(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    settings: CoaSettings,
    actor: &Actor,
    radacctid: i64,
) -> Result<CoaResult, CoaError> {
    send_for_session(
        main_db,
        radius_db,
        settings,
        actor,
        radacctid,
        RequestKind::Disconnect,
        None,
    )
    .await
}

/// Sends a CoA-Request with `changes` for the session `radacctid`.
#[instrument(skip_all, fields(radacct.id = radacctid))]
pub async fn change_session(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    settings: CoaSettings,
    actor: &Actor,
    radacctid: i64,
    changes: &CoaChanges,
) -> Result<CoaResult, CoaError> {
    send_for_session(
        main_db,
        radius_db,
        settings,
        actor,
        radacctid,
        RequestKind::Coa,
        Some(changes),
    )
    .await
}

async fn send_for_session(
    main_db: &DatabaseConnection,
    radius_db: &DatabaseConnection,
    settings: CoaSettings,
    actor: &Actor,
    radacctid: i64,
    kind: RequestKind,
    changes: Option<&CoaChanges>,
) -> Result<CoaResult, CoaError> {
    let session = find_open_session(radius_db, radacctid).await?;
    let address: IpAddr = session
        .nasipaddress
        .trim()
        .parse()
        .map_err(|_| CoaError::Conflict {
            code: "nas_unusable",
            message: format!(
                "session {radacctid}'s NAS address \"{}\" is not an IP address",
                session.nasipaddress
            ),
        })?;
    let nas = super::nas::find_by_nasname(radius_db, &address.to_string())
        .await?
        .ok_or_else(|| CoaError::Conflict {
            code: "nas_not_registered",
            message: format!(
                "NAS {address} is not registered: add it (with its shared secret) under NAS first"
            ),
        })?;
    let port = nas
        .ports
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_COA_PORT);
    let target = SocketAddr::new(address, port);
    let secret = nas.secret.as_bytes();
    let (request, identifier) =
        build_request(kind, &session, changes, secret).map_err(|e| CoaError::Conflict {
            code: "request_too_large",
            message: format!("the {} cannot be built: {e}", kind.name()),
        })?;
    tracing::info!(nas = %target, identifier, kind = kind.name(), "sending");
    let exchange = exchange(kind, target, &request, secret, settings).await;

    let total = exchange.attempts.len();
    for (i, attempt) in exchange.attempts.iter().enumerate() {
        let (error_cause, detail) = match attempt {
            AttemptResult::Reply(Reply::Nak { error_cause }) => (*error_cause, None),
            AttemptResult::Unreachable(why) => (None, Some(why.clone())),
            _ => (None, None),
        };
        audit::record(
            main_db,
            actor,
            kind.audit_action(),
            "radius_session",
            Some(radacctid.to_string()),
            json!({
                "attempt": i + 1,
                "of": settings.attempts,
                "outcome": attempt.as_str(),
                "error_cause": error_cause,
                "error_cause_text": error_cause.map(error_cause_text),
                "detail": detail,
                "nas": nas.nasname,
                "port": port,
                "username": session.username,
                "acctsessionid": session.acctsessionid,
                "identifier": identifier,
                "rate_limit": changes.and_then(|c| c.rate_limit.clone()),
                "session_timeout_secs": changes.and_then(|c| c.session_timeout_secs),
                "final": i + 1 == total,
            }),
        )
        .await?;
    }
    tracing::info!(
        nas = %target,
        outcome = exchange.last().as_str(),
        attempts = total,
        ignored = exchange.ignored_replies,
        kind = kind.name(),
        "dynamic authorization finished"
    );
    match exchange.last().clone() {
        AttemptResult::Reply(reply) => Ok(CoaResult {
            kind,
            session,
            nas: nas.nasname,
            port,
            reply,
            attempts: total as u32,
        }),
        AttemptResult::NoAnswer => Err(CoaError::Timeout(format!(
            "NAS {target} did not answer the {} ({total} attempt(s), {} ms each)",
            kind.name(),
            settings.timeout.as_millis()
        ))),
        AttemptResult::Unreachable(why) => Err(CoaError::Unreachable(format!(
            "NAS {target} cannot be reached: {why}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"testing123";

    fn session() -> SessionRef {
        SessionRef {
            radacctid: 7,
            acctsessionid: "81200007".into(),
            username: Some("alice".into()),
            nasipaddress: "192.0.2.1".into(),
            framedipaddress: Some("100.64.0.9".into()),
        }
    }

    /// The attributes of an encoded packet, as (type, value) pairs.
    fn attributes(packet: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = &packet[20..];
        while rest.len() >= 2 {
            let len = usize::from(rest[1]);
            out.push((rest[0], rest[2..len].to_vec()));
            rest = &rest[len..];
        }
        out
    }

    /// A reply as a NAS builds it: Response Authenticator =
    /// MD5(Code + Identifier + Length + Request Authenticator + Attributes + Secret).
    fn reply(code: Code, request: &[u8], attrs: &[u8], secret: &[u8]) -> Vec<u8> {
        let length = (20 + attrs.len()) as u16;
        let mut out = vec![code as u8, request[1]];
        out.extend(length.to_be_bytes());
        out.extend(&request[4..20]);
        out.extend(attrs);
        let mut signed = out.clone();
        signed.extend(secret);
        let digest = md5_digest(&signed);
        out.splice(4..20, digest);
        out
    }

    fn md5_digest(data: &[u8]) -> [u8; 16] {
        Md5::digest(data).into()
    }

    /// A reply carrying a Message-Authenticator (first), keyed with
    /// `ma_key` and computed with `vector` in the Authenticator field; then
    /// signed with [`SECRET`] as [`reply`] does.
    fn reply_with_ma(
        code: Code,
        request: &[u8],
        attrs: &[u8],
        ma_key: &[u8],
        vector: &[u8],
    ) -> Vec<u8> {
        let mut all = vec![80, 18];
        all.extend([0; 16]);
        all.extend(attrs);
        let length = (20 + all.len()) as u16;
        let mut unsigned = vec![code as u8, request[1]];
        unsigned.extend(length.to_be_bytes());
        unsigned.extend(vector);
        unsigned.extend(&all);
        let mac = hmac_md5(ma_key, &unsigned);
        all[2..18].copy_from_slice(&mac);
        reply(code, request, &all, SECRET)
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn hmac_md5_matches_the_rfc_2104_and_rfc_2202_test_vectors() {
        let cases: [(Vec<u8>, Vec<u8>, &str); 5] = [
            (
                vec![0x0b; 16],
                b"Hi There".to_vec(),
                "9294727a3638bb1c13f48ef8158bfc9d",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "750c783e6ab0b503eaa86e310a5db738",
            ),
            (
                vec![0xaa; 16],
                vec![0xdd; 50],
                "56be34521d144c88dbb8c733f0e8b3f6",
            ),
            // RFC 2202: a key longer than the 64-octet block is hashed first.
            (
                vec![0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
            ),
            (
                vec![0xaa; 80],
                b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"
                    .to_vec(),
                "6f630fad67cda0ee1fb1f562db3aa53e",
            ),
        ];
        for (key, data, digest) in cases {
            assert_eq!(hmac_md5(&key, &data).to_vec(), hex(digest), "{digest}");
        }
    }

    #[test]
    fn disconnect_and_coa_requests_carry_message_authenticator_and_event_timestamp() {
        let changes = CoaChanges {
            rate_limit: Some("5M/20M".into()),
            session_timeout_secs: None,
        };
        for (kind, changes) in [
            (RequestKind::Disconnect, None),
            (RequestKind::Coa, Some(&changes)),
        ] {
            let (packet, _) =
                build_request_at(kind, &session(), changes, SECRET, 1_790_000_000).unwrap();
            let attrs = attributes(&packet);
            let ma: Vec<_> = attrs.iter().filter(|(t, _)| *t == 80).collect();
            assert_eq!(ma.len(), 1, "{kind:?}: one Message-Authenticator");
            assert_eq!(ma[0].1.len(), 16);
            assert_ne!(ma[0].1, [0; 16], "{kind:?}: filled in");
            assert!(
                attrs.contains(&(55, 1_790_000_000u32.to_be_bytes().to_vec())),
                "{kind:?}: Event-Timestamp {attrs:?}"
            );
            assert!(request_message_authenticator_is_valid(&packet, SECRET));
            assert!(Packet::is_authentic_request(&packet, SECRET));
            let decoded = Packet::decode(&packet, SECRET).unwrap();
            let stamp = rfc2869::lookup_event_timestamp(&decoded).unwrap().unwrap();
            assert_eq!(stamp.timestamp(), 1_790_000_000);
        }
        // build_request stamps the present.
        let before = event_timestamp_now();
        let (packet, _) = build_request(RequestKind::Disconnect, &session(), None, SECRET).unwrap();
        let stamp = attributes(&packet)
            .into_iter()
            .find(|(t, _)| *t == 55)
            .map(|(_, v)| u32::from_be_bytes(v.try_into().unwrap()))
            .unwrap();
        assert!(
            (before..=before + 5).contains(&stamp),
            "{stamp} vs {before}"
        );
    }

    #[test]
    fn the_message_authenticator_is_computed_with_the_authenticator_zeroed_then_signed_over() {
        let (packet, _) = build_request_at(
            RequestKind::Coa,
            &session(),
            Some(&CoaChanges {
                rate_limit: None,
                session_timeout_secs: Some(60),
            }),
            SECRET,
            1_790_000_000,
        )
        .unwrap();
        // Found by hand: Message-Authenticator is the first attribute.
        assert_eq!(&packet[20..22], &[80, 18]);
        let mac = &packet[22..38];
        // 1. HMAC-MD5 with the Request Authenticator and the MA zeroed.
        let mut zeroed = packet.clone();
        zeroed[4..20].fill(0);
        zeroed[22..38].fill(0);
        assert_eq!(mac, hmac_md5(SECRET, &zeroed));
        // Not with the Request Authenticator in place (the Access-Request
        // rule), nor with another secret.
        let mut with_vector = packet.clone();
        with_vector[22..38].fill(0);
        assert_ne!(mac, hmac_md5(SECRET, &with_vector));
        assert_ne!(mac, hmac_md5(b"other-secret", &zeroed));
        // 2. The Request Authenticator covers the packet holding the MA.
        let mut signed = packet.clone();
        signed[4..20].fill(0);
        signed.extend(SECRET);
        assert_eq!(&packet[4..20], &md5_digest(&signed));

        assert!(!request_message_authenticator_is_valid(
            &packet,
            b"other-secret"
        ));
        let mut tampered = packet.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(!request_message_authenticator_is_valid(&tampered, SECRET));
    }

    #[test]
    fn a_reply_with_a_bad_message_authenticator_is_refused() {
        let (request, _) =
            build_request(RequestKind::Disconnect, &session(), None, SECRET).unwrap();
        let vector = request[4..20].to_vec();
        // Right: HMAC-MD5 with the request's authenticator in place.
        let good = reply_with_ma(Code::DisconnectACK, &request, &[], SECRET, &vector);
        assert_eq!(
            parse_reply(RequestKind::Disconnect, &request, &good, SECRET),
            Ok(Reply::Ack)
        );
        let mut cause = vec![101, 6];
        cause.extend(503u32.to_be_bytes());
        let nak = reply_with_ma(Code::DisconnectNAK, &request, &cause, SECRET, &vector);
        assert_eq!(
            parse_reply(RequestKind::Disconnect, &request, &nak, SECRET),
            Ok(Reply::Nak {
                error_cause: Some(503)
            })
        );

        // Each of these has a valid Response Authenticator: only the
        // Message-Authenticator is wrong.
        let bad = |reply: Vec<u8>, why: &str| {
            assert_eq!(
                parse_reply(RequestKind::Disconnect, &request, &reply, SECRET),
                Err(ReplyProblem::BadMessageAuthenticator),
                "{why}"
            );
        };
        bad(
            reply_with_ma(Code::DisconnectACK, &request, &[], b"wrong-secret", &vector),
            "keyed with another secret",
        );
        // FreeRADIUS up to 3.2.3 computed it over a zero authenticator:
        // accepted too (the Response Authenticator still binds the reply).
        let old_freeradius = reply_with_ma(Code::DisconnectACK, &request, &[], SECRET, &[0; 16]);
        assert_eq!(
            parse_reply(RequestKind::Disconnect, &request, &old_freeradius, SECRET),
            Ok(Reply::Ack)
        );
        let mut flipped = vec![80, 18];
        flipped.extend(&good[22..38]);
        flipped[5] ^= 1;
        bad(
            reply(Code::DisconnectACK, &request, &flipped, SECRET),
            "one bit changed",
        );
        let mut short = vec![80, 10];
        short.extend([0; 8]);
        bad(
            reply(Code::DisconnectACK, &request, &short, SECRET),
            "8 octets",
        );
        let mut two = good[20..38].to_vec();
        two.extend(&good[20..38]);
        bad(
            reply(Code::DisconnectACK, &request, &two, SECRET),
            "two Message-Authenticators",
        );
        assert_eq!(
            parse_reply(
                RequestKind::Disconnect,
                &request,
                &reply(Code::DisconnectACK, &request, &[80, 40, 0], SECRET),
                SECRET
            ),
            Err(ReplyProblem::Malformed(
                "attribute at octet 20 has length 40".into()
            ))
        );
    }

    #[tokio::test]
    async fn a_reply_with_a_bad_message_authenticator_is_ignored_and_the_answer_awaited() {
        let nas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = nas.local_addr().unwrap();
        let (request, _) = build_request(RequestKind::Coa, &session(), None, SECRET).unwrap();
        let vector = request[4..20].to_vec();
        let forged = reply(Code::CoAACK, &request, &[], b"wrong-secret");
        let bad_ma = reply_with_ma(Code::CoAACK, &request, &[], b"wrong-secret", &vector);
        let good = reply_with_ma(Code::CoAACK, &request, &[], SECRET, &vector);
        let expected = request.clone();
        let answer = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let (n, from) = nas.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &expected[..]);
            for datagram in [bad_ma, forged, good] {
                nas.send_to(&datagram, from).await.unwrap();
            }
        });
        let settings = CoaSettings {
            attempts: 1,
            timeout: Duration::from_secs(5),
        };
        let exchange = exchange(RequestKind::Coa, target, &request, SECRET, settings).await;
        answer.await.unwrap();
        assert_eq!(exchange.attempts, [AttemptResult::Reply(Reply::Ack)]);
        assert_eq!(exchange.ignored_replies, 2);
    }

    #[test]
    fn a_disconnect_request_identifies_the_session_and_is_signed() {
        let (packet, identifier) =
            build_request(RequestKind::Disconnect, &session(), None, SECRET).unwrap();
        assert_eq!(packet[0], 40);
        assert_eq!(packet[1], identifier);
        assert_eq!(
            usize::from(u16::from_be_bytes([packet[2], packet[3]])),
            packet.len()
        );
        let attrs = attributes(&packet);
        assert!(attrs.contains(&(1, b"alice".to_vec())), "User-Name");
        assert!(
            attrs.contains(&(44, b"81200007".to_vec())),
            "Acct-Session-Id"
        );
        assert!(attrs.contains(&(4, vec![192, 0, 2, 1])), "NAS-IP-Address");
        assert!(
            attrs.contains(&(8, vec![100, 64, 0, 9])),
            "Framed-IP-Address"
        );
        assert_eq!(attrs.len(), 6, "and Message-Authenticator, Event-Timestamp");
        // Request Authenticator: MD5 over the packet with 16 zero octets in
        // its place, then the secret (RFC 5176 section 2.3).
        let mut zeroed = packet.clone();
        zeroed[4..20].fill(0);
        zeroed.extend(SECRET);
        assert_eq!(&packet[4..20], &md5_digest(&zeroed));
        assert!(Packet::is_authentic_request(&packet, SECRET));
        assert!(!Packet::is_authentic_request(&packet, b"other-secret"));
    }

    #[test]
    fn a_coa_request_carries_the_rate_limit_vsa_and_session_timeout() {
        let changes = CoaChanges {
            rate_limit: Some("5M/20M".into()),
            session_timeout_secs: Some(3600),
        };
        let (packet, _) =
            build_request(RequestKind::Coa, &session(), Some(&changes), SECRET).unwrap();
        assert_eq!(packet[0], 43);
        let attrs = attributes(&packet);
        let mut vsa = MIKROTIK_VENDOR_ID.to_be_bytes().to_vec();
        vsa.extend([MIKROTIK_RATE_LIMIT, 2 + 6]);
        vsa.extend(b"5M/20M");
        assert!(attrs.contains(&(26, vsa)), "Mikrotik-Rate-Limit: {attrs:?}");
        assert!(
            attrs.contains(&(27, 3600u32.to_be_bytes().to_vec())),
            "Session-Timeout"
        );
        assert!(Packet::is_authentic_request(&packet, SECRET));
    }

    #[test]
    fn a_session_without_username_or_framed_address_leaves_them_out() {
        let mut s = session();
        s.username = None;
        s.framedipaddress = Some(String::new());
        s.nasipaddress = "2001:db8::1".into();
        let (packet, _) = build_request(RequestKind::Disconnect, &s, None, SECRET).unwrap();
        let types: Vec<u8> = attributes(&packet).iter().map(|(t, _)| *t).collect();
        assert_eq!(
            types,
            [80, 44, 95, 55],
            "Acct-Session-Id and NAS-IPv6-Address only, between Message-Authenticator and Event-Timestamp"
        );
    }

    #[test]
    fn an_ack_with_the_right_authenticator_is_accepted() {
        let (request, _) =
            build_request(RequestKind::Disconnect, &session(), None, SECRET).unwrap();
        let ack = reply(Code::DisconnectACK, &request, &[], SECRET);
        assert_eq!(
            parse_reply(RequestKind::Disconnect, &request, &ack, SECRET),
            Ok(Reply::Ack)
        );
        // Trailing padding past Length is not part of the packet.
        let mut padded = ack.clone();
        padded.extend([0, 0, 0]);
        assert_eq!(
            parse_reply(RequestKind::Disconnect, &request, &padded, SECRET),
            Ok(Reply::Ack)
        );
    }

    #[test]
    fn a_nak_reports_its_error_cause() {
        let (request, _) = build_request(RequestKind::Coa, &session(), None, SECRET).unwrap();
        let mut attrs = vec![101, 6];
        attrs.extend(503u32.to_be_bytes());
        let nak = reply(Code::CoANAK, &request, &attrs, SECRET);
        assert_eq!(
            parse_reply(RequestKind::Coa, &request, &nak, SECRET),
            Ok(Reply::Nak {
                error_cause: Some(503)
            })
        );
        assert_eq!(error_cause_text(503), "Session-Context-Not-Found");
        assert_eq!(error_cause_text(201), "Residual-Session-Context-Removed");
        assert_eq!(error_cause_text(999), "Unknown-Error-Cause");
    }

    #[test]
    fn forged_or_mismatched_replies_are_refused() {
        let (request, _) =
            build_request(RequestKind::Disconnect, &session(), None, SECRET).unwrap();
        let forged = reply(Code::DisconnectACK, &request, &[], b"wrong-secret");
        assert_eq!(
            parse_reply(RequestKind::Disconnect, &request, &forged, SECRET),
            Err(ReplyProblem::BadAuthenticator)
        );
        let mut other_id = reply(Code::DisconnectACK, &request, &[], SECRET);
        other_id[1] = other_id[1].wrapping_add(1);
        assert_eq!(
            parse_reply(RequestKind::Disconnect, &request, &other_id, SECRET),
            Err(ReplyProblem::WrongIdentifier)
        );
        let coa_ack = reply(Code::CoAACK, &request, &[], SECRET);
        assert_eq!(
            parse_reply(RequestKind::Disconnect, &request, &coa_ack, SECRET),
            Err(ReplyProblem::WrongCode(44))
        );
        let mut tampered = reply(
            Code::DisconnectACK,
            &request,
            &[101, 6, 0, 0, 1, 247],
            SECRET,
        );
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            parse_reply(RequestKind::Disconnect, &request, &tampered, SECRET),
            Err(ReplyProblem::BadAuthenticator)
        );
        assert_eq!(
            parse_reply(RequestKind::Disconnect, &request, &request[..10], SECRET),
            Err(ReplyProblem::TooShort)
        );
    }

    #[test]
    fn rate_limits_are_checked() {
        for good in ["5M/20M", "512k", "5M/20M 8M/30M 4M/15M 10/10 8", " 1G/1G "] {
            assert!(check_rate_limit(good).is_ok(), "{good:?}");
        }
        assert_eq!(
            check_rate_limit(" 5M/20M  8M/30M ").unwrap(),
            "5M/20M 8M/30M"
        );
        for bad in [
            "",
            "fast",
            "5M/20M/30M",
            "5X/20M",
            "5M/",
            "1 2 3 4 5 6 7",
            "5M;reboot",
        ] {
            assert!(check_rate_limit(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn coa_changes_need_at_least_one_valid_change() {
        let fields = CoaChanges::parse(None, None).unwrap_err();
        assert!(fields.contains_key("_body"));
        let fields = CoaChanges::parse(Some("nope"), Some(0)).unwrap_err();
        assert!(fields.contains_key("rate_limit") && fields.contains_key("session_timeout_secs"));
        let ok = CoaChanges::parse(Some("5M/20M"), Some(60)).unwrap();
        assert_eq!(ok.rate_limit.as_deref(), Some("5M/20M"));
        assert_eq!(ok.session_timeout_secs, Some(60));
    }
}
