//! The wire format: building a signed request (Request Authenticator,
//! Message-Authenticator, Event-Timestamp) and checking a reply against it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use md5::{Digest as _, Md5};
use radius::core::avp::AVP;
use radius::core::code::Code;
use radius::core::packet::Packet;
use radius::core::{rfc2865, rfc2866, rfc2869, rfc3162, rfc3576};

use super::request::{mikrotik_avp, mikrotik_rate_limit_avp, CoaChanges, RequestKind, SessionRef};
use super::MIKROTIK_ADDRESS_LIST;

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
        if let Some(list) = &changes.address_list {
            packet.add(mikrotik_avp(MIKROTIK_ADDRESS_LIST, list));
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
