use std::time::Duration;

use md5::{Digest as _, Md5};
use radius::core::code::Code;
use radius::core::packet::Packet;
use radius::core::rfc2869;
use tokio::net::UdpSocket;

use super::exchange::{exchange, AttemptResult};
use super::packet::{
    build_request, build_request_at, event_timestamp_now, hmac_md5, parse_reply,
    request_message_authenticator_is_valid, Reply, ReplyProblem,
};
use super::request::{check_rate_limit, error_cause_text, CoaChanges, RequestKind, SessionRef};
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
            b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data".to_vec(),
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
        address_list: None,
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
            address_list: None,
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
    let (request, _) = build_request(RequestKind::Disconnect, &session(), None, SECRET).unwrap();
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
        address_list: None,
    };
    let (packet, _) = build_request(RequestKind::Coa, &session(), Some(&changes), SECRET).unwrap();
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
fn a_coa_request_carries_the_address_list_vsa() {
    let changes = CoaChanges {
        rate_limit: Some("512k/1M".into()),
        session_timeout_secs: None,
        address_list: Some("unpaid".into()),
    };
    let (packet, _) = build_request(RequestKind::Coa, &session(), Some(&changes), SECRET).unwrap();
    let attrs = attributes(&packet);
    let mut vsa = MIKROTIK_VENDOR_ID.to_be_bytes().to_vec();
    vsa.extend([super::MIKROTIK_ADDRESS_LIST, 2 + 6]);
    vsa.extend(b"unpaid");
    assert!(
        attrs.contains(&(26, vsa)),
        "Mikrotik-Address-List: {attrs:?}"
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
    let (request, _) = build_request(RequestKind::Disconnect, &session(), None, SECRET).unwrap();
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
    let (request, _) = build_request(RequestKind::Disconnect, &session(), None, SECRET).unwrap();
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
