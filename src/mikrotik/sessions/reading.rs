//! Reading one router's `/ppp/active` and interface counters into
//! sessions, and the keys that identify them.

use std::collections::HashMap;
use std::time::Duration;

use super::super::entities::mikrotik_router;
use super::super::routeros::{self, Client, Row};

/// One `/ppp/active` entry with its interface's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSession {
    /// The router's item id, such as `*1A`.
    pub item_id: String,
    pub name: String,
    pub service: String,
    pub caller_id: Option<String>,
    pub address: Option<String>,
    pub uptime: Duration,
    /// The PPP session id (`0x81200001`), when the router gives one.
    pub session_id: Option<String>,
    /// From the subscriber (the interface's rx-byte).
    pub upload_bytes: Option<u64>,
    /// To the subscriber (the interface's tx-byte).
    pub download_bytes: Option<u64>,
}

/// Reads `/ppp/active` and the session interfaces' counters.
pub async fn read_active_sessions(client: Client) -> Result<Vec<ActiveSession>, routeros::Error> {
    let (active, interfaces) = tokio::try_join!(
        client.print(
            "/ppp/active",
            &[
                ".id",
                "name",
                "service",
                "caller-id",
                "address",
                "uptime",
                "session-id"
            ],
            &[],
        ),
        client.print("/interface", &["name", "rx-byte", "tx-byte"], &[]),
    )?;
    Ok(join_counters(active, interfaces))
}

/// Pairs each active entry with its `<service-name>` interface.
pub fn join_counters(active: Vec<Row>, interfaces: Vec<Row>) -> Vec<ActiveSession> {
    let mut counters: HashMap<String, (Option<u64>, Option<u64>)> = HashMap::new();
    for row in interfaces {
        let Some(name) = row.get("name") else {
            continue;
        };
        if name.starts_with('<') && name.ends_with('>') {
            let parse = |key: &str| row.get(key).and_then(|v| v.parse::<u64>().ok());
            counters.insert(name.clone(), (parse("rx-byte"), parse("tx-byte")));
        }
    }
    active
        .into_iter()
        .filter_map(|mut row| {
            let item_id = row.remove(".id")?;
            let name = row.remove("name")?;
            let service = row.remove("service").unwrap_or_default();
            let (upload_bytes, download_bytes) = counters
                .get(&format!("<{service}-{name}>"))
                .copied()
                .unwrap_or((None, None));
            let non_empty = |value: Option<String>| value.filter(|v| !v.is_empty());
            Some(ActiveSession {
                item_id,
                uptime: row
                    .get("uptime")
                    .and_then(|u| parse_uptime(u))
                    .unwrap_or_default(),
                caller_id: non_empty(row.remove("caller-id")),
                address: non_empty(row.remove("address")),
                session_id: non_empty(row.remove("session-id")),
                name,
                service,
                upload_bytes,
                download_bytes,
            })
        })
        .collect()
}

/// Parses a RouterOS duration: `2w3d4h5m6s` (units w, d, h, m, s, ms; any
/// subset, in order), or the older `1d02:03:04` / `02:03:04`.
pub fn parse_uptime(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.contains(':') {
        let (days, clock) = match text.split_once('d') {
            Some((days, clock)) => (days.parse::<u64>().ok()?, clock),
            None => (0, text),
        };
        let parts: Vec<u64> = clock
            .split(':')
            .map(|p| p.parse::<u64>().ok())
            .collect::<Option<_>>()?;
        let [h, m, s] = parts[..] else {
            return None;
        };
        if m >= 60 || s >= 60 {
            return None;
        }
        let secs = days
            .checked_mul(86_400)?
            .checked_add(h.checked_mul(3_600)?)?
            .checked_add(m * 60 + s)?;
        return Some(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let value: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else {
            let secs = match rest.chars().next()? {
                'w' => 604_800,
                'd' => 86_400,
                'h' => 3_600,
                'm' => 60,
                's' => 1,
                _ => return None,
            };
            (Duration::from_secs(secs), 1)
        };
        rest = &rest[len..];
        total = total.checked_add(unit.checked_mul(u32::try_from(value).ok()?)?)?;
    }
    Some(total)
}

/// `ROUTER:.ID:SESSION` as stored in `network_user_sessions.session_id`
/// (at most 64 characters).
pub fn session_key(router_id: i32, session: &ActiveSession) -> String {
    let tail = session.session_id.as_deref().unwrap_or(&session.name);
    truncate(format!("{router_id}:{}:{tail}", session.item_id), 64)
}

pub(super) fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The router's address as `nas_ip` (a 45-character column).
pub(super) fn nas_ip(router: &mikrotik_router::Model) -> String {
    truncate(router.ip_address.clone(), 45)
}
