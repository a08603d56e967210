use chrono::TimeZone;
use chrono::Utc;

use super::model::expiration_value;
use super::rows::AttrRow;
use super::*;

#[test]
fn expiration_is_in_freeradius_form() {
    let at = Utc.with_ymd_and_hms(2027, 1, 5, 13, 4, 9).unwrap();
    assert_eq!(expiration_value(at), "Jan 05 2027 13:04:09");
}

#[test]
fn password_rows_do_not_print_their_value() {
    let row = AttrRow::set(CLEARTEXT_PASSWORD, "hunter2");
    let printed = format!("{row:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("[redacted]"));
    let other = AttrRow::set("Framed-IP-Address", "10.0.0.1");
    assert!(format!("{other:?}").contains("10.0.0.1"));
}
