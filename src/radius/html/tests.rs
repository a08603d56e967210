use chrono::NaiveDate;

use super::super::accounting::{DailyUsage, Usage};
use super::super::service::{self as radius, AttrRow};
use super::charts::UsageChart;
use super::user_panels::AttrView;

#[test]
fn the_chart_has_a_bar_per_day_scaled_to_the_busiest() {
    let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let days = vec![DailyUsage {
        day: day("2026-11-03"),
        usage: Usage {
            sessions: 2,
            input_octets: 1_000,
            output_octets: 3_000,
            session_time_secs: 60,
        },
    }];
    let chart = UsageChart::new(&days, day("2026-11-01"), day("2026-11-04"));
    assert_eq!(chart.bars.len(), 4);
    assert!(!chart.empty);
    // The busiest day fills the plot: 128 units, 3/4 of them download.
    assert_eq!(chart.bars[2].down_h, "96.0");
    assert_eq!(chart.bars[2].up_h, "32.0");
    assert_eq!(chart.bars[0].down_h, "0.0");
    assert!(chart.description.contains("2026-11-03: 3.00 kB down"));
    let empty = UsageChart::new(&[], day("2026-11-01"), day("2026-11-01"));
    assert!(empty.empty);
}

#[test]
fn passwords_are_masked_in_the_radius_panel() {
    let row = AttrRow::set(radius::CLEARTEXT_PASSWORD, "hunter2");
    assert_eq!(AttrView::of(&row).value, "••••••••");
    let other = AttrRow::set("Framed-IP-Address", "10.0.0.1");
    assert_eq!(AttrView::of(&other).value, "10.0.0.1");
}
