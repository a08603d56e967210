use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::DbBackend;

use super::display::{human_bytes, human_duration};
use super::online::OnlineSort;
use super::ranges::DateRange;
use super::sessions::Session;
use super::sql::{contains_pattern, Sql};
use super::usage::{months_of, total_of, DailyUsage, Usage};
use crate::error::FieldErrors;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

#[test]
fn date_ranges_take_days_and_times_and_refuse_nonsense() {
    let mut errors = FieldErrors::new();
    let r = DateRange::parse(Some("2026-11-01"), Some("2026-11-30"), &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(r.from, Some(at("2026-11-01T00:00:00Z")));
    // `to` as a day includes that day.
    assert_eq!(r.to, Some(at("2026-12-01T00:00:00Z")));

    let r = DateRange::parse(Some("2026-11-01T10:00:00+02:00"), None, &mut errors);
    assert!(errors.is_empty());
    assert_eq!(r.from, Some(at("2026-11-01T08:00:00Z")));
    assert_eq!(r.to, None);

    for (from, to, field) in [
        (Some("yesterday"), None, "from"),
        (None, Some("2026-13-01"), "to"),
        (Some("2026-11-05"), Some("2026-11-01"), "to"),
        (Some("1900-01-01"), None, "from"),
        (Some("2000-01-01"), Some("2026-01-01"), "to"),
    ] {
        let mut errors = FieldErrors::new();
        DateRange::parse(from, to, &mut errors);
        assert!(errors.contains_key(field), "{from:?} {to:?}: {errors:?}");
    }
}

#[test]
fn the_last_days_end_tomorrow_at_midnight() {
    let r = DateRange::last_days(30, at("2026-11-28T15:00:00Z"));
    assert_eq!(r.from, Some(at("2026-10-30T00:00:00Z")));
    assert_eq!(r.to, Some(at("2026-11-29T00:00:00Z")));
}

#[test]
fn months_add_up_their_days() {
    let day = |d: &str, input: i64| DailyUsage {
        day: NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap(),
        usage: Usage {
            sessions: 1,
            input_octets: input,
            output_octets: 2 * input,
            session_time_secs: 10,
        },
    };
    let days = vec![
        day("2026-10-31", 5),
        day("2026-11-01", 7),
        day("2026-11-02", 1),
    ];
    let months = months_of(&days);
    assert_eq!(months.len(), 2);
    assert_eq!(months[0].month, "2026-10");
    assert_eq!(months[1].month, "2026-11");
    assert_eq!(months[1].usage.input_octets, 8);
    assert_eq!(months[1].usage.output_octets, 16);
    assert_eq!(months[1].usage.sessions, 2);
    assert_eq!(total_of(&days).session_time_secs, 30);
}

#[test]
fn a_session_lasts_its_session_time_or_until_now() {
    let mut s = Session {
        radacctid: 1,
        acct_session_id: "a".into(),
        acct_unique_id: "b".into(),
        username: "u".into(),
        nas_ip: "192.0.2.1".into(),
        nas_port_id: None,
        framed_ip: None,
        calling_station_id: None,
        started_at: Some(at("2026-11-28T10:00:00Z")),
        updated_at: None,
        stopped_at: None,
        session_time_secs: Some(600),
        interval_secs: None,
        input_octets: 0,
        output_octets: 0,
        terminate_cause: None,
    };
    let now = at("2026-11-28T11:00:00Z");
    assert_eq!(s.duration_secs(now), Some(3600));
    assert_eq!(s.last_update(), Some(at("2026-11-28T10:10:00Z")));
    assert_eq!(s.last_update_age_secs(now), Some(3000));
    s.stopped_at = Some(at("2026-11-28T10:20:00Z"));
    assert_eq!(s.duration_secs(now), Some(600));
    s.session_time_secs = None;
    assert_eq!(s.duration_secs(now), Some(1200));
}

#[test]
fn bytes_and_durations_read_as_staff_expect() {
    assert_eq!(human_bytes(999), "999 B");
    assert_eq!(human_bytes(1_500_000_000), "1.50 GB");
    assert_eq!(human_bytes((1 << 32) + 5), "4.29 GB");
    assert_eq!(human_duration(3_723), "01:02:03");
    assert_eq!(human_duration(90_061), "1d 01:01:01");
}

#[test]
fn like_patterns_escape_their_wildcards() {
    assert_eq!(contains_pattern("A_b%c!"), "%a!_b!%c!!%");
}

#[test]
fn placeholders_follow_the_backend() {
    let mut pg = Sql::new(DbBackend::Postgres);
    pg.push("a = ").bind(1).push(" AND b = ").bind(2);
    assert_eq!(pg.text, "a = $1 AND b = $2");
    let mut my = Sql::new(DbBackend::MySql);
    my.push("a = ").bind(1);
    assert_eq!(my.text, "a = ?");
}

#[test]
fn online_sort_names_round_trip() {
    for (name, sort) in OnlineSort::NAMES {
        let mut errors = FieldErrors::new();
        assert_eq!(OnlineSort::parse(Some(name), &mut errors), *sort);
        assert_eq!(sort.name(), *name);
    }
    let mut errors = FieldErrors::new();
    OnlineSort::parse(Some("password"), &mut errors);
    assert!(errors.contains_key("sort"));
}
