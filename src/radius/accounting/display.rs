//! Display.

/// Bytes as staff read them: `1.5 GB` (powers of 1000, as ISPs bill).
pub fn human_bytes(octets: i64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = octets.max(0) as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{} B", octets.max(0))
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

/// Seconds as `2d 03:04:05` / `03:04:05`.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let clock = format!(
        "{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    if days > 0 {
        format!("{days}d {clock}")
    } else {
        clock
    }
}
