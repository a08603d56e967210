//! Values as FreeRADIUS's rlm_sql reads them from radcheck, radreply,
//! radgroupcheck and radgroupreply.
//!
//! rlm_sql does not take the `value` column literally (FreeRADIUS 3.2.1,
//! `sql_fr_pair_list_afrom_str` in src/modules/rlm_sql/sql.c, then
//! `fr_pair_value_from_str` in src/lib/pair.c):
//! 1. a value whose first and last characters are the same quote (`'`, `"`
//!    or a backtick; a lone quote counts) is read as a quoted token: in
//!    backticks it is an expression (xlat) evaluated at authorize time, so
//!    `%{User-Name}` becomes the user's name and `%{sql:...}` runs SQL; in
//!    quotes, the quotes go, the token ends at the first unescaped quote
//!    (the rest is dropped), and past 253 bytes the whole value is used raw;
//! 2. every value of a string attribute, wrapped or not, then has its
//!    backslash escapes resolved as in a double-quoted string: `\\`, `\"`,
//!    `\n`, `\r`, `\t`, and three digits as octal (`\101` is `A`); a
//!    trailing lone backslash makes the row, and the user's whole lookup,
//!    fail.
//!
//! [`stored`] writes a value so that step 1 never applies and step 2 gives
//! back exactly what was typed: every backslash is doubled, and a quote in
//! first place is written as its octal escape (`\042`, `\047`, `\140`), so
//! the stored value never starts with a quote. `%{` outside backticks is
//! not evaluated. Values without a backslash or a leading quote (addresses,
//! rate limits, nearly every password) are stored as they are, so a row
//! written by hand in plain form still compares equal to what ispd writes.
//!
//! FreeRADIUS carries at most [`MAX_VALUE_BYTES`] of a value in a RADIUS
//! attribute; the edge checks lengths in bytes against it.

use std::borrow::Cow;

/// The longest value a RADIUS attribute carries (RFC 2865 section 5: 253
/// octets after the type and length).
pub const MAX_VALUE_BYTES: usize = 253;

/// The octal escape of a quote character that starts a value.
fn leading_quote_escape(c: char) -> Option<&'static str> {
    match c {
        '"' => Some("\\042"),
        '\'' => Some("\\047"),
        '`' => Some("\\140"),
        _ => None,
    }
}

/// What to write in the `value` column so that FreeRADIUS reads `literal`.
pub fn stored(literal: &str) -> Cow<'_, str> {
    let leading = literal.chars().next().and_then(leading_quote_escape);
    if leading.is_none() && !literal.contains('\\') {
        return Cow::Borrowed(literal);
    }
    let mut out = String::with_capacity(literal.len() + 8);
    let mut chars = literal.chars();
    if let Some(escape) = leading {
        out.push_str(escape);
        chars.next();
    }
    for c in chars {
        if c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// What FreeRADIUS reads from a value written by [`stored`]: the inverse,
/// for showing a row as FreeRADIUS sees it.
pub fn literal(stored: &str) -> Cow<'_, str> {
    if !stored.contains('\\') {
        return Cow::Borrowed(stored);
    }
    let mut out = String::with_capacity(stored.len());
    let mut rest = stored;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let octal = rest
            .get(..3)
            .filter(|digits| digits.bytes().all(|b| (b'0'..=b'7').contains(&b)))
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match octal {
            Some(byte) if byte.is_ascii() => {
                out.push(char::from(byte));
                rest = &rest[3..];
            }
            _ => {
                let mut chars = rest.chars();
                if let Some(escaped) = chars.next() {
                    out.push(escaped);
                }
                rest = chars.as_str();
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ordinary_values_are_stored_as_they_are() {
        for value in [
            "Reject",
            "100.64.0.2",
            "5M/20M 8M/30M 4M/15M 10/10",
            "Jan 05 2027 13:00:00",
            "%{User-Name}",
            "only at the end'",
            "a 'quote' inside",
            "",
        ] {
            assert_eq!(stored(value), value, "{value:?}");
        }
    }

    #[test]
    fn a_leading_quote_is_written_as_its_octal_escape() {
        assert_eq!(stored("`%{User-Name}`"), "\\140%{User-Name}`");
        assert_eq!(stored("'abcdefgh'"), "\\047abcdefgh'");
        assert_eq!(stored("\"abc\""), "\\042abc\"");
        assert_eq!(stored("'"), "\\047");
        // A digit after the escape is not read as part of it: octal
        // escapes are exactly three digits.
        assert_eq!(stored("'1234"), "\\0471234");
    }

    #[test]
    fn backslashes_are_doubled_because_freeradius_resolves_escapes_in_every_value() {
        assert_eq!(stored("back\\slash"), "back\\\\slash");
        assert_eq!(stored("a\\nb"), "a\\\\nb");
        assert_eq!(stored("ends with \\"), "ends with \\\\");
        assert_eq!(stored("'\\'"), "\\047\\\\'");
    }

    proptest! {
        #[test]
        fn what_is_stored_reads_back_as_the_value(value in "\\PC{0,40}") {
            let kept = stored(&value);
            prop_assert_eq!(literal(&kept), value.as_str());
        }

        #[test]
        fn a_stored_value_never_starts_with_a_quote_nor_ends_in_a_lone_backslash(
            value in "[`'\"a1%{}\\\\]{0,12}",
        ) {
            let kept = stored(&value);
            prop_assert!(!kept.starts_with(['\'', '"', '`']), "{}", kept);
            let trailing = kept.len() - kept.trim_end_matches('\\').len();
            prop_assert!(trailing.is_multiple_of(2), "{}", kept);
        }
    }
}
