//! CSV exports: cells that are safe to open in a spreadsheet, lines, and
//! the download itself.

use axum::http::header;
use axum::response::{IntoResponse, Response};

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

/// One line of `cells`, each made safe by [`cell`], ended by CRLF.
pub fn line(out: &mut String, cells: &[String]) {
    let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
    out.push_str(&cells.join(","));
    out.push_str("\r\n");
}

/// `body` as a CSV file to download under `filename`.
pub fn download(filename: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}
