//! CSV exports: cells that are safe to open in a spreadsheet.

/// One CSV cell (RFC 4180 quoting). A cell that a spreadsheet would run as
/// a formula (starting with = + - @, tab or carriage return) gets a leading
/// quote, so that an exported value can never execute (CSV injection).
pub fn cell(value: &str) -> String {
    let mut cell = String::with_capacity(value.len() + 3);
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        cell.push('\'');
    }
    cell.push_str(value);
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}
