//! Network users and service packages: input parsed into validated types,
//! and the RouterOS rate-limit string a package turns into.
//!
//! `NetUsername` and `MacAddress` live in `ipam::domain`, where allocations
//! use them too; they are re-exported here so that callers of the users
//! service need not know that.

use std::fmt;
use std::str::FromStr;

pub use crate::ipam::domain::{MacAddress, NetUsername};

use super::entities::service_package;

/// A data rate in kbit/s (1 kbit = 1 000 bit, as RouterOS counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(u64);

impl Rate {
    /// 100 Gbit/s: far above any subscriber's plan, and well inside the
    /// 64-bit columns.
    pub const MAX_KBPS: u64 = 100_000_000;

    /// Parses `20M`, `512k`, `1G`, `1.5M` or a plain number of kbit/s
    /// (`2048`). Units are decimal and case-insensitive; the result must be
    /// a whole number of kbit/s, above zero.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = || format!("\"{text}\" is not a rate such as 20M, 512k, 1G or 2048 (kbit/s)");
        let (number, multiplier) = match text.char_indices().last() {
            Some((i, 'k' | 'K')) => (&text[..i], 1u64),
            Some((i, 'm' | 'M')) => (&text[..i], 1_000),
            Some((i, 'g' | 'G')) => (&text[..i], 1_000_000),
            Some(_) => (text, 1),
            None => return Err("must not be empty".into()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 6 {
            return Err(bad());
        }
        let whole: u64 = whole.parse().map_err(|_| bad())?;
        // The fraction in millionths of the unit, then in kbit/s.
        let micro: u64 = format!("{fraction:0<6}").parse().map_err(|_| bad())?;
        let fraction_scaled = micro * multiplier;
        if !fraction_scaled.is_multiple_of(1_000_000) {
            return Err(format!("\"{text}\" is not a whole number of kbit/s"));
        }
        let kbps = whole
            .checked_mul(multiplier)
            .and_then(|k| k.checked_add(fraction_scaled / 1_000_000))
            .ok_or_else(bad)?;
        Self::from_kbps(kbps).map_err(|e| format!("\"{text}\" {e}"))
    }

    pub fn from_kbps(kbps: u64) -> Result<Self, String> {
        if kbps == 0 {
            return Err("must be above zero".into());
        }
        if kbps > Self::MAX_KBPS {
            return Err("is more than 100G".into());
        }
        Ok(Self(kbps))
    }

    /// From a database column; `None` for a value no input could produce.
    pub fn from_column(kbps: i64) -> Option<Self> {
        u64::try_from(kbps)
            .ok()
            .and_then(|k| Self::from_kbps(k).ok())
    }

    pub fn kbps(self) -> u64 {
        self.0
    }

    /// For the `*_kbps` columns (the value is at most `MAX_KBPS`).
    pub fn kbps_i64(self) -> i64 {
        self.0 as i64
    }
}

/// RouterOS notation: `M` (10^6 bit/s) when whole, else `k` (10^3 bit/s).
/// RouterOS knows only these two suffixes in Mikrotik-Rate-Limit.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1_000) {
            write!(f, "{}M", self.0 / 1_000)
        } else {
            write!(f, "{}k", self.0)
        }
    }
}

/// A burst: for up to `time_secs`, while the average rate stays below the
/// threshold, the subscriber may reach the burst rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    pub download: Rate,
    pub upload: Rate,
    pub threshold_download: Rate,
    pub threshold_upload: Rate,
    pub time_secs: u32,
}

/// A package's rates, as the router is to enforce them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub download: Rate,
    pub upload: Rate,
    pub burst: Option<Burst>,
}

impl RateLimit {
    /// The value of the Mikrotik-Rate-Limit attribute:
    /// `rx/tx [rx-burst/tx-burst rx-threshold/tx-threshold rx-time/tx-time]`.
    ///
    /// The router names directions from its own side: what it receives
    /// (rx) from a subscriber is the subscriber's upload, what it sends
    /// (tx) is the download. So download 20M, upload 5M is `5M/20M`.
    pub fn to_mikrotik(&self) -> String {
        let mut out = format!("{}/{}", self.upload, self.download);
        if let Some(b) = &self.burst {
            out.push_str(&format!(
                " {}/{} {}/{} {}/{}",
                b.upload,
                b.download,
                b.threshold_upload,
                b.threshold_download,
                b.time_secs,
                b.time_secs
            ));
        }
        out
    }

    /// The rates stored for a package. A burst is used only when all of its
    /// five columns are set, as the service always writes them.
    pub fn of_package(package: &service_package::Model) -> Option<Self> {
        let rate = |v: Option<i64>| v.and_then(Rate::from_column);
        let burst = match (
            rate(package.burst_download_kbps),
            rate(package.burst_upload_kbps),
            rate(package.burst_threshold_download_kbps),
            rate(package.burst_threshold_upload_kbps),
            package
                .burst_time_secs
                .and_then(|t| u32::try_from(t).ok())
                .filter(|t| *t > 0),
        ) {
            (Some(download), Some(upload), Some(td), Some(tu), Some(time_secs)) => Some(Burst {
                download,
                upload,
                threshold_download: td,
                threshold_upload: tu,
                time_secs,
            }),
            _ => None,
        };
        Some(Self {
            download: Rate::from_column(package.download_rate_kbps)?,
            upload: Rate::from_column(package.upload_rate_kbps)?,
            burst,
        })
    }
}

/// The Mikrotik-Rate-Limit value of a package (see [`RateLimit::to_mikrotik`]).
/// A row whose base rates are not positive (written by hand, not by the
/// service) gives an empty string: no limit is better than a wrong one.
pub fn mikrotik_rate_limit(package: &service_package::Model) -> String {
    RateLimit::of_package(package)
        .map(|limit| limit.to_mikrotik())
        .unwrap_or_default()
}

/// A RADIUS group name (radusergroup.groupname): 1 to 64 letters, digits
/// and `. _ -`, so that it needs no quoting anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RadiusGroup(String);

impl RadiusGroup {
    pub fn parse(text: &str) -> Result<Self, String> {
        let name = text.trim();
        if name.is_empty() || name.len() > 64 {
            return Err("must be 1 to 64 characters long".into());
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(format!(
                "\"{name}\" may contain only letters, digits and . _ -"
            ));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A RouterOS PPP profile name: 1 to 64 printable characters, no quotes or
/// backslashes (they would need escaping in RouterOS scripts).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MikrotikProfile(String);

impl MikrotikProfile {
    pub fn parse(text: &str) -> Result<Self, String> {
        let name = text.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err("must be 1 to 64 characters long".into());
        }
        if name
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | '\'' | '\\'))
        {
            return Err("must not contain quotes, backslashes or control characters".into());
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The most bytes of a subscriber's password: PAP's User-Password carries
/// at most 128 octets (RFC 2865 section 5.2).
pub const PASSWORD_MAX_BYTES: usize = 128;

/// Checks a subscriber's password: 8 to 128 characters and at most 128
/// bytes in UTF-8, no control characters (RADIUS and RouterOS would mangle
/// them). Any printable character is allowed: quotes, backticks, `%{` and
/// backslashes reach FreeRADIUS literally (`radius::value`). It is not
/// trimmed: spaces are part of it. The message never contains the password.
pub fn check_password(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if !(8..=128).contains(&len) {
        return Err("must be 8 to 128 characters long".into());
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(format!(
            "is {} bytes long in UTF-8; RADIUS carries at most {PASSWORD_MAX_BYTES} \
             (accented and non-Latin characters take 2 to 4 bytes each)",
            password.len()
        ));
    }
    if password.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// How a subscriber connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceType {
    Pppoe,
    Hotspot,
    /// A fixed address, allocated from an IPAM subnet.
    Static,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Pppoe => "pppoe",
            ServiceType::Hotspot => "hotspot",
            ServiceType::Static => "static",
        }
    }
}

impl FromStr for ServiceType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "pppoe" => Ok(ServiceType::Pppoe),
            "hotspot" => Ok(ServiceType::Hotspot),
            "static" => Ok(ServiceType::Static),
            other => Err(format!(
                "\"{other}\" is not a service type (pppoe, hotspot or static)"
            )),
        }
    }
}

/// Whether a subscriber may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    Active,
    /// Temporarily refused (for example, unpaid); kept as is.
    Suspended,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
            UserStatus::Disabled => "disabled",
        }
    }
}

impl FromStr for UserStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "active" => Ok(UserStatus::Active),
            "suspended" => Ok(UserStatus::Suspended),
            "disabled" => Ok(UserStatus::Disabled),
            other => Err(format!(
                "\"{other}\" is not a status (active, suspended or disabled)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rate(s: &str) -> u64 {
        Rate::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).kbps()
    }

    #[test]
    fn rates_parse_into_kbit_per_second() {
        assert_eq!(rate("20M"), 20_000);
        assert_eq!(rate("20m"), 20_000);
        assert_eq!(rate("512k"), 512);
        assert_eq!(rate("512K"), 512);
        assert_eq!(rate("1G"), 1_000_000);
        assert_eq!(rate("2048"), 2048);
        assert_eq!(rate(" 1.5M "), 1_500);
        assert_eq!(rate("0.5G"), 500_000);
        assert_eq!(rate("100G"), Rate::MAX_KBPS);
        for bad in [
            "",
            "M",
            "0",
            "0M",
            "-5M",
            "5T",
            "5 M",
            "1.5",
            "1.5k",
            "abc",
            "1..5M",
            ".5M",
            "101G",
            "99999999999999999999k",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(Rate::parse("0").unwrap_err().contains("above zero"));
        assert!(Rate::parse("1.5k").unwrap_err().contains("whole number"));
    }

    #[test]
    fn rates_print_in_routeros_units() {
        let show = |s: &str| Rate::parse(s).unwrap().to_string();
        assert_eq!(show("20M"), "20M");
        assert_eq!(show("1G"), "1000M");
        assert_eq!(show("512k"), "512k");
        assert_eq!(show("1.5M"), "1500k");
        assert_eq!(show("2048"), "2048k");
        assert_eq!(show("2000"), "2M");
    }

    fn package(download: i64, upload: i64) -> service_package::Model {
        service_package::Model {
            download_rate_kbps: download,
            upload_rate_kbps: upload,
            ..crate::users::samples::package()
        }
    }

    #[test]
    fn the_router_receives_the_upload_and_sends_the_download() {
        assert_eq!(mikrotik_rate_limit(&package(20_000, 5_000)), "5M/20M");
        assert_eq!(mikrotik_rate_limit(&package(1_500, 512)), "512k/1500k");
    }

    #[test]
    fn a_burst_gives_the_full_form() {
        let mut p = package(20_000, 5_000);
        p.burst_download_kbps = Some(30_000);
        p.burst_upload_kbps = Some(8_000);
        p.burst_threshold_download_kbps = Some(15_000);
        p.burst_threshold_upload_kbps = Some(4_000);
        p.burst_time_secs = Some(10);
        assert_eq!(mikrotik_rate_limit(&p), "5M/20M 8M/30M 4M/15M 10/10");
        // An incomplete burst (only possible by hand) is left out.
        p.burst_time_secs = None;
        assert_eq!(mikrotik_rate_limit(&p), "5M/20M");
        // Rates no input could give: no limit rather than a wrong one.
        assert_eq!(mikrotik_rate_limit(&package(0, 5_000)), "");
    }

    #[test]
    fn names_profiles_and_passwords_are_checked() {
        assert_eq!(
            RadiusGroup::parse(" home-20M ").unwrap().as_str(),
            "home-20M"
        );
        for bad in ["", "has space", "quote'", "semi;colon", &"g".repeat(65)] {
            assert!(RadiusGroup::parse(bad).is_err(), "{bad:?}");
        }
        assert!(MikrotikProfile::parse("Home 20M").is_ok());
        for bad in ["", "a\"b", "a\\b", "tab\there", &"p".repeat(65)] {
            assert!(MikrotikProfile::parse(bad).is_err(), "{bad:?}");
        }
        assert!(check_password("correct horse").is_ok());
        assert!(check_password(&"x".repeat(128)).is_ok());
        assert!(check_password(&"é".repeat(64)).is_ok());
        assert!(check_password(&"é".repeat(65))
            .unwrap_err()
            .contains("130 bytes"));
        for bad in ["short", "", &"x".repeat(129), "new\nline-pass"] {
            assert!(check_password(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn service_types_and_statuses_parse() {
        assert_eq!("static".parse::<ServiceType>(), Ok(ServiceType::Static));
        assert_eq!(" pppoe ".parse::<ServiceType>(), Ok(ServiceType::Pppoe));
        assert!("dhcp".parse::<ServiceType>().is_err());
        assert_eq!("suspended".parse::<UserStatus>(), Ok(UserStatus::Suspended));
        assert!("deleted".parse::<UserStatus>().is_err());
    }

    proptest! {
        /// Printing a rate in RouterOS units and parsing it back gives the
        /// same rate.
        #[test]
        fn rates_round_trip(kbps in 1u64..=Rate::MAX_KBPS) {
            let rate = Rate::from_kbps(kbps).unwrap();
            prop_assert_eq!(Rate::parse(&rate.to_string()), Ok(rate));
        }
    }
}
