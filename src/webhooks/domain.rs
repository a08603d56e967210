//! What a webhook endpoint is made of, parsed: its URL, the event types it
//! takes, and the events themselves.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::text::has_control;

/// An event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    /// A subscriber's effective state changed and was carried to RADIUS
    /// and its sessions (suspended, resumed, disabled, expired).
    SubscriberStateChanged,
    /// A live session showed the change it was sent.
    EnforcementConfirmed,
    /// A session change could not be applied (the NAS is not registered,
    /// or nothing confirmed it in 24 hours).
    EnforcementNotApplied,
    /// A subscriber's usage this cycle reached a quota tier, or fell back
    /// below it (a top-up, a new cycle).
    QuotaTierCrossed,
    /// An accounting session of a subscriber started.
    SessionStarted,
    /// An accounting session of a subscriber stopped.
    SessionStopped,
}

impl EventType {
    pub const ALL: &[EventType] = &[
        EventType::SubscriberStateChanged,
        EventType::EnforcementConfirmed,
        EventType::EnforcementNotApplied,
        EventType::QuotaTierCrossed,
        EventType::SessionStarted,
        EventType::SessionStopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SubscriberStateChanged => "subscriber.state_changed",
            EventType::EnforcementConfirmed => "enforcement.confirmed",
            EventType::EnforcementNotApplied => "enforcement.not_applied",
            EventType::QuotaTierCrossed => "quota.tier_crossed",
            EventType::SessionStarted => "session.started",
            EventType::SessionStopped => "session.stopped",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        EventType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                format!(
                    "\"{text}\" is not an event type (one of {}, or \"*\" for all)",
                    names.join(", ")
                )
            })
    }
}

/// The event types an endpoint takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    /// Every event, those added later included (`*`).
    All,
    /// These (never empty).
    Only(BTreeSet<EventType>),
}

impl Subscription {
    /// Parses a list of names; `*` anywhere means all. The message names
    /// the first name that is not an event type.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let mut types = BTreeSet::new();
        let mut all = false;
        for name in names {
            match name.as_ref().trim() {
                "*" => all = true,
                other => {
                    types.insert(other.parse::<EventType>()?);
                }
            }
        }
        if all {
            Ok(Subscription::All)
        } else if types.is_empty() {
            Err("name at least one event type, or \"*\" for all".into())
        } else {
            Ok(Subscription::Only(types))
        }
    }

    /// From the `event_types` column. A name this version does not know
    /// (written by a newer one) is left out rather than refused.
    pub fn from_column(text: &str) -> Self {
        let names: Vec<&str> = text.split(',').map(str::trim).collect();
        if names.contains(&"*") {
            return Subscription::All;
        }
        Subscription::Only(names.iter().filter_map(|n| n.parse().ok()).collect())
    }

    /// For the `event_types` column: `*`, or the names joined by commas.
    pub fn to_column(&self) -> String {
        self.names().join(",")
    }

    /// `["*"]`, or the names in a stable order.
    pub fn names(&self) -> Vec<String> {
        match self {
            Subscription::All => vec!["*".into()],
            Subscription::Only(types) => types.iter().map(|t| t.as_str().to_string()).collect(),
        }
    }

    pub fn includes(&self, event_type: EventType) -> bool {
        match self {
            Subscription::All => true,
            Subscription::Only(types) => types.contains(&event_type),
        }
    }
}

/// An endpoint's URL: absolute `http` or `https`, with a host, without
/// credentials (the secret authenticates ispd) or a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        if text.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters long", Self::MAX_LEN));
        }
        if has_control(text) || text.contains(char::is_whitespace) || text.contains('#') {
            return Err("must be a URL without spaces or a #fragment".into());
        }
        let uri: hyper::Uri = text
            .parse()
            .map_err(|_| {
                format!("\"{text}\" is not an absolute http or https URL such as https://crm.example.net/hooks/ispd")
            })?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            Some(other) => return Err(format!("must be an http or https URL, not {other}")),
            None => return Err("must be an absolute http or https URL".into()),
        }
        let Some(authority) = uri.authority() else {
            return Err("must name a host".into());
        };
        if authority.as_str().contains('@') {
            return Err(
                "must not carry a user name or password: the secret signs every request".into(),
            );
        }
        if uri
            .host()
            .is_none_or(|host| host.is_empty() || host == "[]")
        {
            return Err("must name a host".into());
        }
        if authority.port().is_some() && authority.port_u16().is_none_or(|port| port == 0) {
            return Err("has a port that is not 1 to 65535".into());
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scheme and host, for the audit log (a path or query may carry a
    /// token of the receiver's).
    pub fn origin(&self) -> String {
        origin_of(&self.0)
    }
}

/// `scheme://host[:port]` of a stored URL, or "" when it does not parse.
pub fn origin_of(url: &str) -> String {
    match url.parse::<hyper::Uri>() {
        Ok(uri) => match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
            _ => String::new(),
        },
        Err(_) => String::new(),
    }
}

/// Something that happened, to be pushed to every endpoint that takes its
/// type: [`super::service::emit`].
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    pub event_type: EventType,
    pub occurred_at: DateTime<Utc>,
    /// The payload's `data`.
    pub data: serde_json::Value,
}

impl WebhookEvent {
    pub fn new(event_type: EventType, data: impl Serialize) -> Self {
        Self {
            event_type,
            occurred_at: Utc::now(),
            data: serde_json::to_value(data).unwrap_or(serde_json::Value::Null),
        }
    }

    /// `subscriber.state_changed`.
    pub fn state_changed(change: StateChanged) -> Self {
        Self::new(EventType::SubscriberStateChanged, change)
    }

    /// `enforcement.confirmed`, or `enforcement.not_applied`.
    pub fn session_change(confirmed: bool, change: SessionChangeSettled) -> Self {
        let event_type = if confirmed {
            EventType::EnforcementConfirmed
        } else {
            EventType::EnforcementNotApplied
        };
        Self::new(event_type, change)
    }
}

impl WebhookEvent {
    /// `quota.tier_crossed`.
    pub fn quota_tier_crossed(crossing: QuotaTierCrossed) -> Self {
        Self::new(EventType::QuotaTierCrossed, crossing)
    }

    /// `session.started`, or `session.stopped`.
    pub fn session(started: bool, session: SessionEvent) -> Self {
        let event_type = if started {
            EventType::SessionStarted
        } else {
            EventType::SessionStopped
        };
        Self::new(event_type, session)
    }
}

/// The `data` of `quota.tier_crossed`.
#[derive(Debug, Clone, Serialize)]
pub struct QuotaTierCrossed {
    pub user_id: i32,
    pub username: String,
    pub cycle_start: DateTime<Utc>,
    pub resets_at: DateTime<Utc>,
    /// The bytes that count this cycle (`direction`), and the allowance
    /// (quota plus top-ups).
    pub used_bytes: i64,
    pub allowance_bytes: i64,
    pub percent: i64,
    /// `total`, `download` or `upload`.
    pub direction: String,
    /// The tier now reached; null when back below every tier.
    pub threshold_percent: Option<u32>,
    pub policy_id: Option<i32>,
    /// The tier before; null when it was below every tier.
    pub previous_threshold_percent: Option<u32>,
}

/// The `data` of `session.started` and `session.stopped`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionEvent {
    pub user_id: i32,
    pub username: String,
    pub radacctid: i64,
    /// Acct-Session-Id.
    pub session_id: String,
    pub nas: String,
    pub framed_ip: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    /// Null on `session.started`.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Octets to and from the subscriber so far (gigawords included).
    pub download_bytes: i64,
    pub upload_bytes: i64,
    pub terminate_cause: Option<String>,
}

/// The `data` of `subscriber.state_changed`.
#[derive(Debug, Clone, Serialize)]
pub struct StateChanged {
    pub user_id: i32,
    pub username: String,
    /// The state last carried to the network; None the first time.
    pub from: Option<String>,
    /// `active`, `suspended`, `disabled` or `expired`.
    pub to: String,
    /// The service it now gets: `active`, `reject`, `walled_garden` or
    /// `throttle`.
    pub target: String,
    /// `suspended`, `resumed`, `disabled`, `expired` or `changed`.
    pub reason: String,
    pub changed_at: DateTime<Utc>,
}

/// The `data` of `enforcement.confirmed` and `enforcement.not_applied`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionChangeSettled {
    pub action_id: i64,
    pub user_id: Option<i32>,
    pub username: String,
    /// The session's Acct-Session-Id.
    pub session_id: String,
    pub radacctid: Option<i64>,
    pub nas: String,
    /// `coa` or `disconnect`.
    pub request: String,
    /// The last answer: `ack`, `nak`, `session_closed`, or what stopped it.
    pub outcome: Option<String>,
    pub reason: String,
    pub target: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn event_types_read_back_their_names() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
        }
        let err = "subscriber.suspended".parse::<EventType>().unwrap_err();
        assert!(
            err.contains("\"subscriber.suspended\" is not an event type"),
            "{err}"
        );
        assert!(err.contains("enforcement.confirmed"), "{err}");
    }

    #[test]
    fn a_subscription_is_all_or_a_set_of_known_names() {
        assert_eq!(Subscription::parse(&["*"]), Ok(Subscription::All));
        assert_eq!(
            Subscription::parse(&["enforcement.confirmed", "*"]),
            Ok(Subscription::All)
        );
        let only = Subscription::parse(&[" enforcement.confirmed", "session.started"]).unwrap();
        assert!(only.includes(EventType::EnforcementConfirmed));
        assert!(!only.includes(EventType::SubscriberStateChanged));
        assert_eq!(only.to_column(), "enforcement.confirmed,session.started");
        assert!(Subscription::parse::<&str>(&[])
            .unwrap_err()
            .contains("at least one"));
        assert!(Subscription::parse(&["enforcement.confirmed", "nope"])
            .unwrap_err()
            .contains("\"nope\""));
    }

    #[test]
    fn a_stored_name_this_version_does_not_know_is_left_out() {
        assert_eq!(
            Subscription::from_column("enforcement.confirmed,billing.paid"),
            Subscription::Only([EventType::EnforcementConfirmed].into())
        );
        assert_eq!(Subscription::from_column("*"), Subscription::All);
    }

    #[test]
    fn urls_must_be_absolute_http_with_a_host() {
        for good in [
            "https://crm.example.net/hooks/ispd",
            "http://10.0.0.5:8080/webhook?source=ispd",
            "http://[2001:db8::1]:9000/",
            "https://billing.example.net",
        ] {
            assert_eq!(WebhookUrl::parse(good).unwrap().as_str(), good);
        }
        for (bad, says) in [
            ("", "must not be empty"),
            ("crm.example.net/hooks", "absolute"),
            ("ftp://example.net/x", "not ftp"),
            ("https://user:pass@example.net/", "user name or password"),
            ("https://example.net/a b", "without spaces"),
            ("https://example.net/#top", "fragment"),
            ("https://:443/", "must name a host"),
            ("http://example.net:0/", "port"),
            ("not a url", "without spaces"),
            ("http//example.net", "absolute"),
        ] {
            let err = WebhookUrl::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        assert!(WebhookUrl::parse(&format!("https://e.net/{}", "a".repeat(2100))).is_err());
    }

    #[test]
    fn the_origin_leaves_out_path_and_query() {
        let url = WebhookUrl::parse("https://crm.example.net:8443/hooks?token=abc").unwrap();
        assert_eq!(url.origin(), "https://crm.example.net:8443");
    }

    proptest! {
        #[test]
        fn a_subscription_survives_its_column(picks in proptest::collection::btree_set(0..EventType::ALL.len(), 1..=6)) {
            let names: Vec<&str> = picks.iter().map(|i| EventType::ALL[*i].as_str()).collect();
            let parsed = Subscription::parse(&names).unwrap();
            prop_assert_eq!(Subscription::from_column(&parsed.to_column()), parsed);
        }

        #[test]
        fn url_parsing_never_panics(text in "\\PC{0,80}") {
            let _ = WebhookUrl::parse(&text);
        }
    }
}
