//! The usage charts: bars per day and month, drawn as inline SVG.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate};

use super::super::accounting::{human_bytes, human_duration, DailyUsage, Usage};

/// One day's bar: download below, upload stacked on it.
pub struct ChartBar {
    pub x: String,
    pub width: String,
    pub down_y: String,
    pub down_h: String,
    pub up_y: String,
    pub up_h: String,
    /// What a pointer hovering the bar reads.
    pub title: String,
}

/// Daily traffic as a server-drawn SVG bar chart (no JavaScript), with
/// the same figures as text for screen readers.
pub struct UsageChart {
    pub bars: Vec<ChartBar>,
    pub width: u32,
    pub height: u32,
    pub plot_bottom: u32,
    pub first_day: String,
    pub last_day: String,
    pub max_label: String,
    /// The figures in words (the SVG's `<desc>`).
    pub description: String,
    pub empty: bool,
}

impl UsageChart {
    const WIDTH: u32 = 600;
    const HEIGHT: u32 = 160;
    const BOTTOM: u32 = 140;
    const TOP: u32 = 12;

    /// Bars for every day from `first` to `last` (days without usage are
    /// zero).
    pub fn new(days: &[DailyUsage], first: NaiveDate, last: NaiveDate) -> Self {
        let by_day: HashMap<NaiveDate, Usage> = days.iter().map(|d| (d.day, d.usage)).collect();
        let count = ((last - first).num_days() + 1).clamp(1, 400) as usize;
        let all: Vec<(NaiveDate, Usage)> = (0..count)
            .map(|i| {
                let day = first + Duration::days(i as i64);
                (day, by_day.get(&day).copied().unwrap_or_default())
            })
            .collect();
        let max = all
            .iter()
            .map(|(_, u)| u.total_octets())
            .max()
            .unwrap_or(0)
            .max(1);
        let plot = f64::from(Self::BOTTOM - Self::TOP);
        let slot = f64::from(Self::WIDTH) / count as f64;
        let width = (slot * 0.8).max(1.0);
        let mut bars = Vec::with_capacity(count);
        let mut words = Vec::new();
        for (i, (day, usage)) in all.iter().enumerate() {
            let down_h = plot * usage.output_octets.max(0) as f64 / max as f64;
            let up_h = plot * usage.input_octets.max(0) as f64 / max as f64;
            let down_y = f64::from(Self::BOTTOM) - down_h;
            let up_y = down_y - up_h;
            let title = format!(
                "{day}: {} down, {} up, {} session(s)",
                human_bytes(usage.output_octets),
                human_bytes(usage.input_octets),
                usage.sessions
            );
            if usage.sessions > 0 {
                words.push(title.clone());
            }
            bars.push(ChartBar {
                x: format!("{:.1}", i as f64 * slot + (slot - width) / 2.0),
                width: format!("{width:.1}"),
                down_y: format!("{down_y:.1}"),
                down_h: format!("{down_h:.1}"),
                up_y: format!("{up_y:.1}"),
                up_h: format!("{up_h:.1}"),
                title,
            });
        }
        let empty = words.is_empty();
        Self {
            bars,
            width: Self::WIDTH,
            height: Self::HEIGHT,
            plot_bottom: Self::BOTTOM,
            first_day: first.to_string(),
            last_day: last.to_string(),
            max_label: human_bytes(max),
            description: if empty {
                "No traffic in these days.".into()
            } else {
                words.join(". ")
            },
            empty,
        }
    }
}

/// A usage summary as the pages show it.
pub struct UsageRow {
    pub label: String,
    pub sessions: u64,
    pub download: String,
    pub upload: String,
    pub total: String,
    pub time: String,
}

impl UsageRow {
    pub(super) fn of(label: String, u: &Usage) -> Self {
        Self {
            label,
            sessions: u.sessions,
            download: human_bytes(u.output_octets),
            upload: human_bytes(u.input_octets),
            total: human_bytes(u.total_octets()),
            time: human_duration(u.session_time_secs),
        }
    }
}
