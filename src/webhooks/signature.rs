//! The signature on every webhook request, and its check (which receivers
//! write in their own language; docs/API.md shows how).
//!
//! `X-Ispd-Signature: sha256=<hex>` is the HMAC-SHA256, keyed with the
//! endpoint's secret, of `"{timestamp}.{body}"`, where `timestamp` is the
//! `X-Ispd-Timestamp` header (unix seconds) and `body` the raw request
//! body. Signing the timestamp with the body lets a receiver refuse a
//! request replayed later by someone who captured it: it checks the
//! signature, then that the timestamp is within [`TOLERANCE_SECS`] of its
//! clock.

use ring::hmac;

pub const EVENT_HEADER: &str = "x-ispd-event";
pub const DELIVERY_HEADER: &str = "x-ispd-delivery";
pub const TIMESTAMP_HEADER: &str = "x-ispd-timestamp";
pub const SIGNATURE_HEADER: &str = "x-ispd-signature";

/// The window a receiver should allow between `X-Ispd-Timestamp` and its
/// own clock (either way).
pub const TOLERANCE_SECS: i64 = 300;

fn signed_text(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut text = format!("{timestamp}.").into_bytes();
    text.extend_from_slice(body);
    text
}

/// The `X-Ispd-Signature` value: `sha256=` and 64 lowercase hex digits.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, &signed_text(timestamp, body));
    format!("sha256={}", hex::encode(tag.as_ref()))
}

/// Whether `header` is the signature of `body` sent at `timestamp`
/// (compared in constant time), and `timestamp` is within
/// [`TOLERANCE_SECS`] of `now`: the check a receiver makes.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], header: &str, now: i64) -> bool {
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return false;
    }
    let Some(tag) = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|hex_digits| hex::decode(hex_digits).ok())
    else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, &signed_text(timestamp, body), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hmac_is_rfc_4231s() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for
        // nothing?". Here the data is split as "{timestamp}.{body}" would
        // not split it, so the HMAC itself is checked.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let tag = hmac::sign(&key, b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(tag.as_ref()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        let body = br#"{"id":"evt_1","type":"subscriber.state_changed"}"#;
        let signature = sign(b"s3cret-s3cret-s3cret", 1_765_000_000, body);
        assert!(signature.starts_with("sha256="));
        assert_eq!(signature.len(), 7 + 64);
        let now = 1_765_000_010;
        assert!(verify(
            b"s3cret-s3cret-s3cret",
            1_765_000_000,
            body,
            &signature,
            now
        ));
        assert!(!verify(
            b"another secret",
            1_765_000_000,
            body,
            &signature,
            now
        ));
        assert!(!verify(
            b"s3cret-s3cret-s3cret",
            1_765_000_001,
            body,
            &signature,
            now
        ));
        assert!(!verify(
            b"s3cret-s3cret-s3cret",
            1_765_000_000,
            b"{}",
            &signature,
            now
        ));
        assert!(!verify(
            b"s3cret-s3cret-s3cret",
            1_765_000_000,
            body,
            "sha256=zz",
            now
        ));
    }

    #[test]
    fn an_old_timestamp_is_refused_even_when_signed() {
        let body = b"{}";
        let signature = sign(b"secret", 1_000, body);
        assert!(verify(
            b"secret",
            1_000,
            body,
            &signature,
            1_000 + TOLERANCE_SECS
        ));
        assert!(!verify(
            b"secret",
            1_000,
            body,
            &signature,
            1_001 + TOLERANCE_SECS
        ));
        assert!(!verify(
            b"secret",
            1_000,
            body,
            &signature,
            999 - TOLERANCE_SECS
        ));
    }
}
