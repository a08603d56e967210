use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::super::routeros::Row;
use super::live::{LiveSession, LiveSessionId, SessionRates};
use super::reading::{join_counters, parse_uptime, session_key};

#[test]
fn uptimes_parse_in_both_routeros_spellings() {
    let cases: &[(&str, Option<u64>)] = &[
        ("0s", Some(0)),
        ("45s", Some(45)),
        ("1m5s", Some(65)),
        ("2w3d7s", Some(2 * 604_800 + 3 * 86_400 + 7)),
        ("1d2h3m4s", Some(93_784)),
        ("3s500ms", Some(3)),
        ("02:03:04", Some(7_384)),
        ("1d02:03:04", Some(93_784)),
        ("", None),
        ("abc", None),
        ("5x", None),
        ("m5", None),
        ("01:75:00", None),
        ("1:2", None),
    ];
    for (text, secs) in cases {
        assert_eq!(parse_uptime(text).map(|d| d.as_secs()), *secs, "{text:?}");
    }
}

proptest! {
    #[test]
    fn the_mock_routers_uptimes_read_back(secs in 0u64..10_000_000_000) {
        let text = super::super::routeros::mock::format_uptime(Duration::from_secs(secs));
        prop_assert_eq!(parse_uptime(&text), Some(Duration::from_secs(secs)));
    }

    #[test]
    fn parse_uptime_never_panics(text in "\\PC{0,24}") {
        let _ = parse_uptime(&text);
    }
}

#[test]
fn session_ids_round_trip_and_reject_junk() {
    let id = LiveSessionId::parse("3-1a").unwrap();
    assert_eq!(id, LiveSessionId::new(3, "*1A"));
    assert_eq!(id.to_string(), "3-1A");
    for bad in [
        "",
        "3",
        "3-",
        "-1A",
        "x-1A",
        "0-1A",
        "3-*1A",
        "3-123456789",
        "3-zz",
    ] {
        assert!(LiveSessionId::parse(bad).is_err(), "{bad:?}");
    }
}

fn row(pairs: &[(&str, &str)]) -> Row {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn sessions_get_their_interfaces_counters() {
    let active = vec![
        row(&[
            (".id", "*1"),
            ("name", "alice"),
            ("service", "pppoe"),
            ("caller-id", "AA:BB:CC:DD:EE:01"),
            ("address", "100.64.0.10"),
            ("uptime", "1h"),
            ("session-id", "0x81200001"),
        ]),
        row(&[
            (".id", "*2"),
            ("name", "bob"),
            ("service", "l2tp"),
            ("uptime", "5s"),
        ]),
        row(&[("name", "no id")]),
    ];
    let interfaces = vec![
        row(&[("name", "ether1"), ("rx-byte", "1"), ("tx-byte", "2")]),
        row(&[
            ("name", "<pppoe-alice>"),
            ("rx-byte", "100"),
            ("tx-byte", "400"),
        ]),
    ];
    let sessions = join_counters(active, interfaces);
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].upload_bytes, Some(100));
    assert_eq!(sessions[0].download_bytes, Some(400));
    assert_eq!(sessions[0].uptime, Duration::from_secs(3600));
    assert_eq!(sessions[0].caller_id.as_deref(), Some("AA:BB:CC:DD:EE:01"));
    assert_eq!(session_key(7, &sessions[0]), "7:*1:0x81200001");
    assert_eq!(sessions[1].upload_bytes, None);
    assert_eq!(sessions[1].address, None);
    assert_eq!(session_key(7, &sessions[1]), "7:*2:bob");
}

fn live(item: &str, up: u64, down: u64) -> LiveSession {
    LiveSession {
        id: format!("1-{item}"),
        router_id: 1,
        item_id: format!("*{item}"),
        username: "u".into(),
        service: "pppoe".into(),
        address: None,
        caller_id: None,
        uptime_secs: 0,
        upload_bytes: Some(up),
        download_bytes: Some(down),
        upload_bps: None,
        download_bps: None,
    }
}

#[test]
fn rates_are_the_counter_difference_over_time() {
    let rates = SessionRates::default();
    let t0 = Instant::now();
    let mut first = vec![live("1", 1_000, 2_000)];
    rates.observe_at(1, &mut first, t0);
    assert_eq!(first[0].upload_bps, None);

    let mut second = vec![live("1", 2_000, 6_000)];
    rates.observe_at(1, &mut second, t0 + Duration::from_secs(2));
    assert_eq!(second[0].upload_bps, Some(4_000));
    assert_eq!(second[0].download_bps, Some(16_000));

    // Too soon after: the same rate, the sample kept.
    let mut soon = vec![live("1", 2_100, 6_100)];
    rates.observe_at(1, &mut soon, t0 + Duration::from_millis(2_500));
    assert_eq!(soon[0].download_bps, Some(16_000));

    // Gone, then back with lower counters: no rate.
    rates.observe_at(1, &mut [], t0 + Duration::from_secs(3));
    let mut back = vec![live("1", 10, 10)];
    rates.observe_at(1, &mut back, t0 + Duration::from_secs(4));
    assert_eq!(back[0].upload_bps, None);
}
