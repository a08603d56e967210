//! Small checks on text input that every service's validation shares.

use std::net::IpAddr;

/// The trimmed value of an optional field, or None when it is absent or
/// blank: a form's empty input and a JSON `""` both mean "not given".
pub fn optional_text(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// True when the text holds a control character (a newline included),
/// which no name, secret or address may carry into a router or a log.
pub fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// Parses one address, naming the family in the message. IPAM's addresses
/// and RADIUS's NAS filter read addresses alike.
pub fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("\"{}\" is not an IPv4 or IPv6 address", text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_optional_text_is_absent() {
        assert_eq!(optional_text(&None), None);
        assert_eq!(optional_text(&Some("  ".into())), None);
        assert_eq!(optional_text(&Some(" a b ".into())), Some("a b"));
    }

    #[test]
    fn control_characters_are_found() {
        assert!(has_control("a\nb"));
        assert!(has_control("\u{7f}"));
        assert!(!has_control("plain text"));
    }
}
