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
//! (vendor 14988, attribute 8), `Mikrotik-Address-List` (attribute 19)
//! and/or `Session-Timeout`. Every request
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

use std::time::Duration;

use crate::config::Config;

mod exchange;
mod packet;
mod request;
mod session;
pub use exchange::*;
pub use packet::*;
pub use request::*;
pub use session::*;

/// RFC 5176's UDP port for Disconnect and CoA requests.
pub const DEFAULT_COA_PORT: u16 = 3799;
/// MikroTik's IANA enterprise number.
pub const MIKROTIK_VENDOR_ID: i32 = 14988;
/// `Mikrotik-Rate-Limit` in MikroTik's dictionary.
pub const MIKROTIK_RATE_LIMIT: u8 = 8;
/// `Mikrotik-Address-List` in MikroTik's dictionary.
pub const MIKROTIK_ADDRESS_LIST: u8 = 19;

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

#[cfg(test)]
mod tests;
