//! Bodies of `PATCH` requests: JSON merge patch (RFC 7396).
//!
//! In a merge patch a member left out keeps its value, `null` clears it and
//! any other value sets it. serde reads both a missing member and `null`
//! into `None` for an `Option<T>`, so a patch field is an
//! `Option<Option<T>>` read by [`present`]: `None` when the member is
//! missing, `Some(None)` for `null`, `Some(Some(value))` for a value.
//!
//! ```ignore
//! #[serde(default, deserialize_with = "merge_patch::present")]
//! pub expires_at: Option<Option<DateTime<Utc>>>,
//! ```
//!
//! `default` is what makes a missing member `None`: serde calls
//! `deserialize_with` only for members that are there.

use serde::{Deserialize, Deserializer};

/// A member that is in the patch: `Some(None)` for `null`, `Some(Some(v))`
/// for a value. Use with `#[serde(default)]` (see the module doc).
pub fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Patch {
        #[serde(default, deserialize_with = "super::present")]
        note: Option<Option<String>>,
    }

    fn read(json: &str) -> Option<Option<String>> {
        serde_json::from_str::<Patch>(json).unwrap().note
    }

    #[test]
    fn a_missing_member_a_null_and_a_value_are_three_different_things() {
        assert_eq!(read("{}"), None);
        assert_eq!(read(r#"{"note": null}"#), Some(None));
        assert_eq!(read(r#"{"note": "hi"}"#), Some(Some("hi".into())));
    }

    #[test]
    fn a_value_of_the_wrong_type_is_still_refused() {
        assert!(serde_json::from_str::<Patch>(r#"{"note": 5}"#).is_err());
    }
}
