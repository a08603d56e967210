//! What a request asks: Disconnect or CoA, the session it names, and the
//! attributes a CoA changes (checked as the NAS will read them).

use radius::core::avp::AVP;
use radius::core::code::Code;
use radius::core::rfc2865;
use radius::core::vsa::{StringVSA, VSA};

use super::{MIKROTIK_RATE_LIMIT, MIKROTIK_VENDOR_ID};
use crate::error::FieldErrors;

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

    pub(super) fn ack(self) -> Code {
        match self {
            RequestKind::Disconnect => Code::DisconnectACK,
            RequestKind::Coa => Code::CoAACK,
        }
    }

    pub(super) fn nak(self) -> Code {
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
    /// A `Mikrotik-Address-List` value: the router puts the session's
    /// address on this list (a walled garden's firewall redirects it).
    pub address_list: Option<String>,
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
                address_list: None,
            })
        } else {
            Err(errors)
        }
    }
}

/// The `Vendor-Specific` attribute carrying `Mikrotik-Rate-Limit`.
pub fn mikrotik_rate_limit_avp(value: &str) -> AVP {
    mikrotik_avp(MIKROTIK_RATE_LIMIT, value)
}

/// A MikroTik string attribute (vendor 14988) as a `Vendor-Specific` AVP.
pub fn mikrotik_avp(attribute: u8, value: &str) -> AVP {
    let vsa = StringVSA::new(MIKROTIK_VENDOR_ID, attribute, value);
    AVP::from_bytes(rfc2865::VENDOR_SPECIFIC_TYPE, &vsa.message())
}
