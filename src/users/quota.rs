//! A package's fair-usage quota, free of any database: sizes, billing
//! cycles, counter growth and tiers. The metering that applies it lives in
//! `crate::quotas`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// A number of bytes, read from text such as `100G`, `1.5T`, `500MB` or a
/// plain number of bytes. Units are decimal (1G = 10^9 bytes), as ISPs
/// sell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// The largest quota accepted: 1 EB, far beyond any cycle.
pub const MAX_QUOTA_BYTES: u64 = 1_000_000_000_000_000_000;

const UNITS: [(char, u64); 5] = [
    ('k', 1_000),
    ('m', 1_000_000),
    ('g', 1_000_000_000),
    ('t', 1_000_000_000_000),
    ('p', 1_000_000_000_000_000),
];

impl ByteSize {
    pub fn parse(text: &str) -> Result<Self, String> {
        let problem = || {
            format!(
                "\"{}\" is not a size: use a number of bytes or a number with k, M, G, T or P (decimal: 1G = 1 000 000 000 bytes), such as 100G or 1.5T",
                text.trim()
            )
        };
        let lower = text.trim().to_ascii_lowercase();
        let lower = lower.strip_suffix('b').unwrap_or(&lower).trim_end();
        let (number, multiplier) = match lower.chars().last() {
            Some(unit) if unit.is_ascii_alphabetic() => {
                let (_, multiplier) = UNITS.iter().find(|(u, _)| *u == unit).ok_or_else(problem)?;
                (lower[..lower.len() - 1].trim_end(), *multiplier)
            }
            _ => (lower, 1),
        };
        let bytes = decimal_times(number, multiplier).ok_or_else(problem)?;
        if bytes == 0 {
            return Err("must be above zero".into());
        }
        if bytes > MAX_QUOTA_BYTES {
            return Err("must be at most 1000P (10^18 bytes)".into());
        }
        Ok(Self(bytes))
    }

    /// The column's value (always within `i64`).
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

/// `number` (digits, at most one `.`) times `multiplier`, when whole.
fn decimal_times(number: &str, multiplier: u64) -> Option<u64> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || !digits(fraction) || fraction.len() > 18 {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    let scaled = (whole * scale + fraction).checked_mul(u128::from(multiplier))?;
    if scaled % scale != 0 {
        return None;
    }
    u64::try_from(scaled / scale).ok()
}

impl fmt::Display for ByteSize {
    /// The largest unit that says it exactly with at most two decimals
    /// (`100G`, `1.5T`, `2.25M`), else plain bytes (`1234`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, size) in UNITS.iter().rev() {
            if self.0 >= *size && self.0.is_multiple_of(size / 100) {
                let whole = self.0 / size;
                let hundredths = (self.0 % size) / (size / 100);
                let unit = unit.to_ascii_uppercase();
                let unit = if unit == 'K' { 'k' } else { unit };
                return if hundredths == 0 {
                    write!(f, "{whole}{unit}")
                } else {
                    let decimals = format!("{hundredths:02}");
                    write!(f, "{whole}.{}{unit}", decimals.trim_end_matches('0'))
                };
            }
        }
        write!(f, "{}", self.0)
    }
}

/// A size for people: `12.35 GB`, `512 B`.
pub fn human_bytes(bytes: i64) -> String {
    let bytes = bytes.max(0) as f64;
    for (unit, size) in [
        ("PB", 1e15),
        ("TB", 1e12),
        ("GB", 1e9),
        ("MB", 1e6),
        ("kB", 1e3),
    ] {
        if bytes >= size {
            return format!("{:.2} {unit}", bytes / size);
        }
    }
    format!("{bytes} B")
}

/// What counts towards a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Download and upload together.
    #[default]
    Total,
    Download,
    Upload,
}

impl Direction {
    pub const ALL: [Direction; 3] = [Self::Total, Self::Download, Self::Upload];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Total => "total",
            Self::Download => "download",
            Self::Upload => "upload",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Total => "Download and upload",
            Self::Download => "Download only",
            Self::Upload => "Upload only",
        }
    }

    /// The bytes that count, of these.
    pub fn used(self, download: i64, upload: i64) -> i64 {
        match self {
            Self::Total => download.saturating_add(upload),
            Self::Download => download,
            Self::Upload => upload,
        }
    }
}

impl FromStr for Direction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "total" => Ok(Self::Total),
            "download" => Ok(Self::Download),
            "upload" => Ok(Self::Upload),
            other => Err(format!(
                "\"{other}\" is not a quota direction (total, download or upload)"
            )),
        }
    }
}

/// The anchor of a billing cycle: the day of the month it starts, at
/// 00:00 UTC. At most the 28th, so that every month has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorDay(u32);

impl AnchorDay {
    pub const FIRST: AnchorDay = AnchorDay(1);

    pub fn new(day: i64) -> Result<Self, String> {
        if (1..=28).contains(&day) {
            Ok(Self(day as u32))
        } else {
            Err("must be a day of the month from 1 to 28".into())
        }
    }

    /// The stored value, when it is a valid day (a hand-edited row
    /// outside 1 to 28 counts as unset).
    pub fn from_column(day: Option<i32>) -> Option<Self> {
        day.and_then(|d| Self::new(i64::from(d)).ok())
    }

    pub fn day(self) -> u32 {
        self.0
    }

    /// The start of the cycle that `at` falls in.
    pub fn cycle_start(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let this_month = NaiveDate::from_ymd_opt(at.year(), at.month(), self.0)
            .expect("days 1 to 28 exist in every month");
        let start = if at.day() >= self.0 {
            this_month
        } else {
            this_month - Months::new(1)
        };
        Utc.from_utc_datetime(&start.and_hms_opt(0, 0, 0).expect("midnight exists"))
    }

    /// The start of the cycle after the one that `at` falls in.
    pub fn next_cycle_start(self, at: DateTime<Utc>) -> DateTime<Utc> {
        self.cycle_start(at) + Months::new(1)
    }
}

/// 2^32: where a 32-bit octet counter wraps.
pub const WRAP: i64 = 1 << 32;

/// How much a session's octet counter grew from the reading already
/// counted (`counted`) to this one. radacct holds 64-bit counts when the
/// NAS sends gigawords (FreeRADIUS adds them in), and those never go back;
/// a NAS without gigawords wraps at 2^32, which shows as a smaller count
/// below 2^32: the growth is then what was left to 2^32 plus the new
/// count. (A counter that wrapped twice between two readings cannot be
/// told from one that wrapped once; that is what gigawords are for.) Any
/// other smaller count is a counter that started again: all of it is new.
pub fn counter_growth(counted: i64, now: i64) -> i64 {
    let (counted, now) = (counted.max(0), now.max(0));
    if now >= counted {
        now - counted
    } else if counted < WRAP {
        WRAP - counted + now
    } else {
        now
    }
}

/// At which share of the allowance a policy takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    /// Percent of the allowance (quota plus top-ups), 1 to 1000.
    pub threshold_percent: u32,
    pub policy_id: i32,
}

/// The most tiers a package may have.
pub const MAX_TIERS: usize = 5;

/// A package's tiers, lowest threshold first, thresholds distinct.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tiers(Vec<Tier>);

impl Tiers {
    /// Checks the tiers (thresholds 1 to 1000, distinct, at most
    /// [`MAX_TIERS`]) and orders them.
    pub fn new(mut tiers: Vec<Tier>) -> Result<Self, String> {
        if tiers.len() > MAX_TIERS {
            return Err(format!("at most {MAX_TIERS} tiers"));
        }
        if let Some(t) = tiers
            .iter()
            .find(|t| !(1..=1000).contains(&t.threshold_percent))
        {
            return Err(format!(
                "threshold {}% is outside 1 to 1000",
                t.threshold_percent
            ));
        }
        tiers.sort_by_key(|t| t.threshold_percent);
        if let Some(pair) = tiers
            .windows(2)
            .find(|p| p[0].threshold_percent == p[1].threshold_percent)
        {
            return Err(format!(
                "two tiers at {}%: each threshold once",
                pair[0].threshold_percent
            ));
        }
        Ok(Self(tiers))
    }

    /// The stored column; unreadable or absent: no tiers.
    pub fn from_column(stored: Option<&str>) -> Self {
        stored
            .and_then(|s| serde_json::from_str::<Vec<Tier>>(s).ok())
            .and_then(|t| Self::new(t).ok())
            .unwrap_or_default()
    }

    /// The column's value; None when there are no tiers.
    pub fn stored(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| serde_json::to_string(&self.0).unwrap_or_default())
    }

    pub fn as_slice(&self) -> &[Tier] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The highest tier reached by `used` of `allowance` bytes.
    pub fn reached(&self, used: i64, allowance: i64) -> Option<Tier> {
        let (used, allowance) = (i128::from(used.max(0)), i128::from(allowance.max(0)));
        self.0
            .iter()
            .rev()
            .find(|t| used * 100 >= i128::from(t.threshold_percent) * allowance)
            .copied()
    }
}

/// Whole percent of `allowance` that `used` is (rounded down).
pub fn percent_of(used: i64, allowance: i64) -> i64 {
    if allowance <= 0 {
        return 0;
    }
    let percent = i128::from(used.max(0)) * 100 / i128::from(allowance);
    i64::try_from(percent).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_decimal_units_and_print_back_the_same() {
        for (text, bytes) in [
            ("100G", 100_000_000_000u64),
            ("100 GB", 100_000_000_000),
            ("1.5T", 1_500_000_000_000),
            ("512k", 512_000),
            ("750M", 750_000_000),
            ("1234", 1_234),
            ("0.5g", 500_000_000),
        ] {
            assert_eq!(ByteSize::parse(text), Ok(ByteSize(bytes)), "{text}");
            let printed = ByteSize(bytes).to_string();
            assert_eq!(ByteSize::parse(&printed), Ok(ByteSize(bytes)), "{printed}");
        }
        assert_eq!(ByteSize(100_000_000_000).to_string(), "100G");
        assert_eq!(ByteSize(1_500_000_000_000).to_string(), "1.5T");
        assert_eq!(ByteSize(1_234).to_string(), "1234");
        assert_eq!(ByteSize(2_250_000).to_string(), "2.25M");
        for bad in [
            "",
            "G",
            "ten gigabytes",
            "1.5.5G",
            "-3G",
            "1X",
            "0.0000000001k",
        ] {
            assert!(ByteSize::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ByteSize::parse("0"), Err("must be above zero".into()));
        assert!(ByteSize::parse("2000P").is_err());
        assert!(ByteSize::parse("2P").is_ok());
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_cycle_starts_on_the_anchor_day_at_midnight_utc() {
        let anchor = AnchorDay::new(15).unwrap();
        assert_eq!(
            anchor.cycle_start(utc("2026-12-20T10:00:00Z")),
            utc("2026-12-15T00:00:00Z")
        );
        assert_eq!(
            anchor.cycle_start(utc("2026-12-14T23:59:59Z")),
            utc("2026-11-15T00:00:00Z")
        );
        assert_eq!(
            anchor.cycle_start(utc("2026-12-15T00:00:00Z")),
            utc("2026-12-15T00:00:00Z")
        );
        // Across a year.
        assert_eq!(
            AnchorDay::FIRST.cycle_start(utc("2027-01-01T00:00:01Z")),
            utc("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            anchor.next_cycle_start(utc("2026-12-20T10:00:00Z")),
            utc("2027-01-15T00:00:00Z")
        );
        assert_eq!(
            AnchorDay::new(28)
                .unwrap()
                .cycle_start(utc("2027-03-01T00:00:00Z")),
            utc("2027-02-28T00:00:00Z")
        );
        assert!(AnchorDay::new(29).is_err());
        assert!(AnchorDay::new(0).is_err());
        assert_eq!(AnchorDay::from_column(Some(31)), None);
    }

    #[test]
    fn counters_grow_across_a_32_bit_wrap_and_restart_after_a_reset() {
        assert_eq!(counter_growth(1_000, 5_000), 4_000);
        assert_eq!(counter_growth(0, 0), 0);
        // A NAS without gigawords: 4 294 967 000 then 704 is 1 000 bytes.
        assert_eq!(counter_growth(4_294_967_000, 704), 1_000);
        // With gigawords FreeRADIUS stores the 64-bit count: plain growth.
        assert_eq!(counter_growth(4_294_967_000, WRAP + 704), 1_000);
        // A 64-bit count that went back: a new counter.
        assert_eq!(counter_growth(3 * WRAP, 500), 500);
    }

    #[test]
    fn the_highest_tier_reached_counts() {
        let tiers = Tiers::new(vec![
            Tier {
                threshold_percent: 100,
                policy_id: 2,
            },
            Tier {
                threshold_percent: 80,
                policy_id: 1,
            },
        ])
        .unwrap();
        assert_eq!(tiers.as_slice()[0].threshold_percent, 80);
        assert_eq!(tiers.reached(79, 100), None);
        assert_eq!(tiers.reached(80, 100).map(|t| t.policy_id), Some(1));
        assert_eq!(tiers.reached(99, 100).map(|t| t.policy_id), Some(1));
        assert_eq!(tiers.reached(100, 100).map(|t| t.policy_id), Some(2));
        // A top-up raises the allowance.
        assert_eq!(tiers.reached(100, 200), None);
        assert_eq!(Tiers::from_column(tiers.stored().as_deref()), tiers);
        assert_eq!(Tiers::from_column(Some("nonsense")), Tiers::default());
        assert!(Tiers::new(vec![
            Tier {
                threshold_percent: 100,
                policy_id: 1
            };
            2
        ])
        .is_err());
        assert!(Tiers::new(vec![Tier {
            threshold_percent: 0,
            policy_id: 1
        }])
        .is_err());
        assert_eq!(percent_of(150, 100), 150);
        assert_eq!(percent_of(1, 0), 0);
    }

    #[test]
    fn the_direction_says_what_counts() {
        assert_eq!(Direction::Total.used(3, 4), 7);
        assert_eq!(Direction::Download.used(3, 4), 3);
        assert_eq!(Direction::Upload.used(3, 4), 4);
        assert_eq!("upload".parse(), Ok(Direction::Upload));
        assert!("both".parse::<Direction>().is_err());
    }
}
