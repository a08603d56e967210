//! What the mock router holds (identity, PPP profiles, secrets, active
//! sessions, interfaces) and how each command reads or changes it: add,
//! set, remove and print with queries and `.proplist`, as RouterOS 7 does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::mikrotik::routeros::codec::{Command, Reply, ReplyKind, Row};

pub(super) fn trap(category: Option<u32>, message: impl Into<String>) -> Vec<Reply> {
    vec![
        Reply::new(ReplyKind::Trap {
            category,
            message: message.into(),
        }),
        done(None),
    ]
}

pub(super) fn done(ret: Option<String>) -> Reply {
    Reply::new(ReplyKind::Done { ret })
}

/// Items of one menu, with RouterOS-style ids.
struct Table {
    rows: Vec<Row>,
    next_id: u32,
}

impl Table {
    fn new() -> Self {
        Table {
            rows: Vec::new(),
            next_id: 1,
        }
    }

    fn insert(&mut self, mut row: Row) -> String {
        let id = format!("*{:X}", self.next_id);
        self.next_id += 1;
        row.insert(".id".into(), id.clone());
        self.rows.push(row);
        id
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.rows
            .iter()
            .position(|row| row.get(".id").is_some_and(|v| v.eq_ignore_ascii_case(id)))
    }

    fn name_taken(&self, name: &str, except: Option<usize>) -> bool {
        self.rows
            .iter()
            .enumerate()
            .any(|(i, row)| Some(i) != except && row.get("name").is_some_and(|n| n == name))
    }
}

/// How a writable menu checks its input.
struct Schema {
    fields: &'static [&'static str],
    defaults: &'static [(&'static str, &'static str)],
    booleans: &'static [&'static str],
    duplicate: &'static str,
}

const SECRET: Schema = Schema {
    fields: &[
        "name",
        "password",
        "service",
        "profile",
        "local-address",
        "remote-address",
        "caller-id",
        "disabled",
        "comment",
        "routes",
        "limit-bytes-in",
        "limit-bytes-out",
    ],
    defaults: &[
        ("service", "any"),
        ("profile", "default"),
        ("password", ""),
        ("caller-id", ""),
        ("disabled", "false"),
        ("limit-bytes-in", "0"),
        ("limit-bytes-out", "0"),
        ("last-logged-out", "never"),
    ],
    booleans: &["disabled"],
    duplicate: "failure: secret with the same name already exists",
};

const PROFILE: Schema = Schema {
    fields: &[
        "name",
        "local-address",
        "remote-address",
        "rate-limit",
        "only-one",
        "comment",
        "dns-server",
        "address-list",
        "session-timeout",
        "idle-timeout",
        "change-tcp-mss",
        "use-encryption",
    ],
    defaults: &[
        ("only-one", "default"),
        ("change-tcp-mss", "default"),
        ("use-encryption", "default"),
    ],
    booleans: &[],
    duplicate: "failure: profile with the same name already exists",
};

const SERVICES: &[&str] = &["any", "async", "l2tp", "ovpn", "pppoe", "pptp", "sstp"];

pub(super) struct State {
    identity: String,
    profiles: Table,
    secrets: Table,
    active: Table,
    interfaces: Table,
    /// When each session and each session's interface started (ids are
    /// per table; everything else counts from boot).
    active_started: HashMap<String, Instant>,
    interface_started: HashMap<String, Instant>,
    next_session: u32,
}

impl State {
    pub(super) fn new() -> Self {
        let mut profiles = Table::new();
        for (id, name) in [("*0", "default"), ("*FFFFFFFE", "default-encryption")] {
            let mut row = Row::new();
            row.insert(".id".into(), id.into());
            row.insert("name".into(), name.into());
            row.insert("only-one".into(), "default".into());
            row.insert("change-tcp-mss".into(), "yes".into());
            row.insert(
                "use-encryption".into(),
                if name == "default" { "default" } else { "yes" }.into(),
            );
            row.insert("default".into(), "true".into());
            profiles.rows.push(row);
        }
        let mut interfaces = Table::new();
        for name in ["ether1", "ether2"] {
            interfaces.insert(interface_row(name, "ether", false));
        }
        State {
            identity: "MikroTik".into(),
            profiles,
            secrets: Table::new(),
            active: Table::new(),
            interfaces,
            active_started: HashMap::new(),
            interface_started: HashMap::new(),
            next_session: 1,
        }
    }

    pub(super) fn login_session(&mut self, name: &str, address: &str, caller_id: &str) -> String {
        let session = self.next_session;
        self.next_session += 1;
        let mut row = Row::new();
        for (key, value) in [
            ("name", name),
            ("service", "pppoe"),
            ("caller-id", caller_id),
            ("address", address),
            ("encoding", ""),
            ("limit-bytes-in", "0"),
            ("limit-bytes-out", "0"),
            ("radius", "false"),
        ] {
            row.insert(key.into(), value.into());
        }
        row.insert(
            "session-id".into(),
            format!("0x{:08X}", 0x8120_0000 + session),
        );
        let id = self.active.insert(row);
        let iface =
            self.interfaces
                .insert(interface_row(&format!("<pppoe-{name}>"), "pppoe-in", true));
        let now = Instant::now();
        self.interface_started.insert(iface, now);
        self.active_started.insert(id.clone(), now);
        id
    }

    /// Rows with computed fields (uptime, counters) filled in.
    pub(super) fn rows(&self, menu: &str, booted: Instant) -> Vec<Row> {
        let now = Instant::now();
        match menu {
            "/system/identity" => {
                let mut row = Row::new();
                row.insert("name".into(), self.identity.clone());
                vec![row]
            }
            "/system/resource" => vec![resource_row(now - booted)],
            "/ppp/profile" => self.profiles.rows.clone(),
            "/ppp/secret" => self.secrets.rows.clone(),
            "/ppp/active" => self
                .active
                .rows
                .iter()
                .map(|row| {
                    let mut row = row.clone();
                    let started = started_at(&self.active_started, &row, booted);
                    row.insert("uptime".into(), format_uptime(now - started));
                    row
                })
                .collect(),
            "/interface" => self
                .interfaces
                .rows
                .iter()
                .map(|row| {
                    let mut row = row.clone();
                    let started = started_at(&self.interface_started, &row, booted);
                    let ms = (now - started).as_millis() as u64;
                    // About 10 Mbit/s in and 40 Mbit/s out, from a non-zero start.
                    let (rx, tx) = (1_000 + ms * 1_250, 2_000 + ms * 5_000);
                    for (key, value) in [
                        ("rx-byte", rx),
                        ("tx-byte", tx),
                        ("rx-packet", rx / 1_000),
                        ("tx-packet", tx / 1_000),
                    ] {
                        row.insert(key.into(), value.to_string());
                    }
                    row
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    pub(super) fn execute(&mut self, command: &Command, booted: Instant) -> Vec<Reply> {
        let Some((menu, verb)) = command.path.rsplit_once('/') else {
            return no_such_command();
        };
        match (menu, verb) {
            (
                "/system/identity" | "/system/resource" | "/ppp/profile" | "/ppp/secret"
                | "/ppp/active" | "/interface",
                "print" | "getall",
            ) => print(self.rows(menu, booted), command),
            ("/system/identity", "set") => match command.get("name") {
                Some(name) if !name.is_empty() => {
                    self.identity = name.to_owned();
                    vec![done(None)]
                }
                _ => trap(Some(1), "name must not be empty"),
            },
            ("/ppp/profile", "add") => add(&mut self.profiles, &PROFILE, command, |_| None),
            ("/ppp/profile", "set") => set(&mut self.profiles, &PROFILE, command, |_| None),
            ("/ppp/profile", "remove") => remove(&mut self.profiles, command),
            ("/ppp/secret", verb @ ("add" | "set")) => {
                let profiles: Vec<String> = self
                    .profiles
                    .rows
                    .iter()
                    .filter_map(|row| row.get("name").cloned())
                    .collect();
                let check = |row: &Row| check_secret(row, &profiles);
                if verb == "add" {
                    add(&mut self.secrets, &SECRET, command, check)
                } else {
                    set(&mut self.secrets, &SECRET, command, check)
                }
            }
            ("/ppp/secret", "remove") => remove(&mut self.secrets, command),
            ("/ppp/active", "remove") => {
                let replies = remove(&mut self.active, command);
                if replies
                    .first()
                    .is_some_and(|reply| matches!(reply.kind, ReplyKind::Done { .. }))
                {
                    self.drop_gone_sessions();
                }
                replies
            }
            ("", "cancel") => vec![done(None)],
            _ => no_such_command(),
        }
    }

    /// Removes the interfaces of sessions no longer in `/ppp/active`.
    fn drop_gone_sessions(&mut self) {
        let active: Vec<String> = self
            .active
            .rows
            .iter()
            .filter_map(|row| row.get("name").map(|name| format!("<pppoe-{name}>")))
            .collect();
        self.interfaces.rows.retain(|row| {
            row.get("type").map(String::as_str) != Some("pppoe-in")
                || row.get("name").is_some_and(|name| active.contains(name))
        });
        let ids = |table: &Table| -> Vec<String> {
            table
                .rows
                .iter()
                .filter_map(|row| row.get(".id").cloned())
                .collect()
        };
        let (active, interfaces) = (ids(&self.active), ids(&self.interfaces));
        self.active_started.retain(|id, _| active.contains(id));
        self.interface_started
            .retain(|id, _| interfaces.contains(id));
    }
}

fn started_at(started: &HashMap<String, Instant>, row: &Row, booted: Instant) -> Instant {
    row.get(".id")
        .and_then(|id| started.get(id))
        .copied()
        .unwrap_or(booted)
}

fn no_such_command() -> Vec<Reply> {
    trap(Some(0), "no such command")
}

fn interface_row(name: &str, kind: &str, dynamic: bool) -> Row {
    let mut row = Row::new();
    for (key, value) in [
        ("name", name),
        ("type", kind),
        ("running", "true"),
        ("disabled", "false"),
        ("dynamic", if dynamic { "true" } else { "false" }),
        ("mtu", if dynamic { "1480" } else { "1500" }),
    ] {
        row.insert(key.into(), value.into());
    }
    row
}

fn resource_row(uptime: Duration) -> Row {
    let mut row = Row::new();
    for (key, value) in [
        ("version", "7.16.2 (stable)"),
        ("build-time", "2024-11-26 12:28:35"),
        ("factory-software", "7.1"),
        ("free-memory", "3472965632"),
        ("total-memory", "4294967296"),
        ("cpu", "ARM64"),
        ("cpu-count", "4"),
        ("cpu-frequency", "1700"),
        ("cpu-load", "3"),
        ("free-hdd-space", "96780288"),
        ("total-hdd-space", "134217728"),
        ("architecture-name", "arm64"),
        ("board-name", "CCR2004-1G-12S+2XS"),
        ("platform", "MikroTik"),
    ] {
        row.insert(key.into(), value.into());
    }
    row.insert("uptime".into(), format_uptime(uptime));
    row
}

/// RouterOS durations: `2w3d4h5m6s`, zero units left out.
pub fn format_uptime(uptime: Duration) -> String {
    let mut secs = uptime.as_secs();
    let mut out = String::new();
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if secs > 0 || out.is_empty() {
        out.push_str(&format!("{secs}s"));
    }
    out
}

fn check_secret(row: &Row, profiles: &[String]) -> Option<Vec<Reply>> {
    if let Some(service) = row.get("service") {
        if !SERVICES.contains(&service.as_str()) {
            return Some(trap(Some(1), "input does not match any value of service"));
        }
    }
    if let Some(profile) = row.get("profile") {
        if !profiles.contains(profile) {
            return Some(trap(Some(1), "input does not match any value of profile"));
        }
    }
    None
}

/// The values of an add or set, checked against the menu's fields.
fn values(schema: &Schema, command: &Command) -> Result<Vec<(String, String)>, Vec<Reply>> {
    let mut values = Vec::new();
    for (key, value) in &command.attributes {
        if key == ".id" {
            continue;
        }
        if !schema.fields.contains(&key.as_str()) {
            return Err(trap(Some(1), format!("unknown parameter {key}")));
        }
        let value = if schema.booleans.contains(&key.as_str()) {
            match value.as_str() {
                "yes" | "true" => "true".to_owned(),
                "no" | "false" => "false".to_owned(),
                _ => {
                    return Err(trap(
                        Some(1),
                        format!("input does not match any value of {key}"),
                    ))
                }
            }
        } else {
            value.clone()
        };
        values.push((key.clone(), value));
    }
    Ok(values)
}

fn add(
    table: &mut Table,
    schema: &Schema,
    command: &Command,
    check: impl Fn(&Row) -> Option<Vec<Reply>>,
) -> Vec<Reply> {
    let values = match values(schema, command) {
        Ok(values) => values,
        Err(replies) => return replies,
    };
    let mut row: Row = schema
        .defaults
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    row.extend(values);
    match row.get("name") {
        Some(name) if !name.is_empty() => {
            if table.name_taken(name, None) {
                return trap(None, schema.duplicate);
            }
        }
        _ => return trap(Some(1), "failure: name must be set"),
    }
    if let Some(replies) = check(&row) {
        return replies;
    }
    vec![done(Some(table.insert(row)))]
}

fn set(
    table: &mut Table,
    schema: &Schema,
    command: &Command,
    check: impl Fn(&Row) -> Option<Vec<Reply>>,
) -> Vec<Reply> {
    let Some(index) = command.get(".id").and_then(|id| table.position(id)) else {
        return trap(Some(0), "no such item");
    };
    let values = match values(schema, command) {
        Ok(values) => values,
        Err(replies) => return replies,
    };
    let mut row = table.rows[index].clone();
    row.extend(values);
    match row.get("name") {
        Some(name) if !name.is_empty() => {
            if table.name_taken(name, Some(index)) {
                return trap(None, schema.duplicate);
            }
        }
        _ => return trap(Some(1), "failure: name must be set"),
    }
    if let Some(replies) = check(&row) {
        return replies;
    }
    table.rows[index] = row;
    vec![done(None)]
}

/// Removes `.id`, a comma-separated list of ids: all or none.
fn remove(table: &mut Table, command: &Command) -> Vec<Reply> {
    let ids: Vec<&str> = command
        .get(".id")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    if ids.is_empty() || ids.iter().any(|id| table.position(id).is_none()) {
        return trap(Some(0), "no such item");
    }
    table.rows.retain(|row| {
        !row.get(".id")
            .is_some_and(|id| ids.iter().any(|gone| gone.eq_ignore_ascii_case(id)))
    });
    vec![done(None)]
}

fn print(rows: Vec<Row>, command: &Command) -> Vec<Reply> {
    let mut found = Vec::new();
    for row in rows {
        match matches(&row, &command.queries) {
            Ok(true) => found.push(row),
            Ok(false) => {}
            Err(message) => return trap(Some(1), message),
        }
    }
    if command
        .get("count-only")
        .is_some_and(|v| v.is_empty() || v == "yes" || v == "true")
    {
        return vec![done(Some(found.len().to_string()))];
    }
    let proplist: Option<Vec<&str>> = command
        .get(".proplist")
        .map(|list| list.split(',').map(str::trim).collect());
    let mut replies: Vec<Reply> = found
        .into_iter()
        .map(|mut row| {
            if let Some(keep) = &proplist {
                row.retain(|key, _| keep.contains(&key.as_str()));
            }
            Reply::new(ReplyKind::Re(row))
        })
        .collect();
    replies.push(done(None));
    replies
}

/// Evaluates RouterOS query words against one row. Each word pushes a
/// result on a stack; `#` words combine them (`!` not, `&` and, `|` or,
/// `.` copy of the top, digits a copy of that entry, counted from the
/// bottom); the row matches when every entry left is true.
fn matches(row: &Row, queries: &[String]) -> Result<bool, String> {
    let mut stack: Vec<bool> = Vec::new();
    let underflow = || "query stack underflow".to_string();
    for query in queries {
        if let Some(ops) = query.strip_prefix('#') {
            let mut ops = ops.chars().peekable();
            while let Some(op) = ops.next() {
                match op {
                    '!' => {
                        let top = stack.pop().ok_or_else(underflow)?;
                        stack.push(!top);
                    }
                    '&' | '|' => {
                        let b = stack.pop().ok_or_else(underflow)?;
                        let a = stack.pop().ok_or_else(underflow)?;
                        stack.push(if op == '&' { a && b } else { a || b });
                    }
                    '.' => {
                        let top = *stack.last().ok_or_else(underflow)?;
                        stack.push(top);
                    }
                    '0'..='9' => {
                        let mut index = op.to_digit(10).unwrap_or(0) as usize;
                        while let Some(digit) = ops.peek().and_then(|c| c.to_digit(10)) {
                            ops.next();
                            index = index.saturating_mul(10).saturating_add(digit as usize);
                        }
                        let value = *stack.get(index).ok_or_else(underflow)?;
                        stack.push(value);
                    }
                    other => return Err(format!("unknown query operation {other:?}")),
                }
            }
        } else {
            stack.push(term(row, query));
        }
    }
    Ok(stack.into_iter().all(|value| value))
}

fn term(row: &Row, query: &str) -> bool {
    if let Some(name) = query.strip_prefix('-') {
        return !row.contains_key(name);
    }
    for (op, ordering) in [
        ('<', std::cmp::Ordering::Less),
        ('>', std::cmp::Ordering::Greater),
    ] {
        if let Some(rest) = query.strip_prefix(op) {
            let (name, value) = rest.split_once('=').unwrap_or((rest, ""));
            return row
                .get(name)
                .is_some_and(|have| compare(have, value) == ordering);
        }
    }
    let query = query.strip_prefix('=').unwrap_or(query);
    match query.split_once('=') {
        Some((name, value)) => {
            let have = row.get(name).map_or("", String::as_str);
            have == value || (as_bool(have).is_some() && as_bool(have) == as_bool(value))
        }
        None => row.contains_key(query),
    }
}

fn as_bool(value: &str) -> Option<bool> {
    match value {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

fn compare(have: &str, want: &str) -> std::cmp::Ordering {
    match (have.parse::<i128>(), want.parse::<i128>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => have.cmp(want),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> Row {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn q(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn queries_follow_the_stack_rules() {
        let alice = row(&[("name", "alice"), ("limit", "10"), ("disabled", "false")]);
        let cases: &[(&[&str], bool)] = &[
            (&[], true),
            (&["name=alice"], true),
            (&["=name=alice"], true),
            (&["name=bob"], false),
            (&["name"], true),
            (&["-name"], false),
            (&["-comment"], true),
            (&["<limit=11"], true),
            (&["<limit=9"], false),
            (&[">limit=9"], true),
            (&["name=bob", "name=alice", "#|"], true),
            (&["name=bob", "name=alice", "#&"], false),
            (&["name=bob", "#!"], true),
            (&["name=bob", "name=carol", "#|!"], true),
            (&["disabled=no"], true),
            (&["disabled=yes"], false),
            (&["name=alice", "#0"], true),
        ];
        for (queries, expected) in cases {
            assert_eq!(matches(&alice, &q(queries)), Ok(*expected), "{queries:?}");
        }
        assert!(matches(&alice, &q(&["#|"])).is_err());
        assert!(matches(&alice, &q(&["name", "#x"])).is_err());
    }

    #[test]
    fn uptimes_are_formatted_like_routeros() {
        assert_eq!(format_uptime(Duration::ZERO), "0s");
        assert_eq!(format_uptime(Duration::from_secs(65)), "1m5s");
        assert_eq!(
            format_uptime(Duration::from_secs(2 * 604_800 + 3 * 86_400 + 7)),
            "2w3d7s"
        );
    }
}
