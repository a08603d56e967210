//! IPAM staff pages: pools, subnets, allocations, the CSV export and the
//! address history. Every handler parses the form, calls one service
//! function and builds a view; the rules live in [`super::service`].
//!
//! Forms post normally (redirect with a flash message on success, the same
//! page with inline messages and 422/409 otherwise). On the subnet page the
//! allocate and release forms also carry `hx-post`: htmx then swaps the
//! allocations section (the `allocations` block of `ipam/subnet.html`).

use axum::routing::{get, post};
use axum::Router;

use super::service::Utilization;
use crate::app::AppState;
use crate::error::FieldErrors;
use crate::web::forms::{choices, optional_parsed, Choice};

pub use crate::ipam::allocation::html::*;
pub use crate::ipam::history::html::*;
pub use crate::ipam::pools::html::*;
pub use crate::ipam::subnets::html::*;

/// The IPAM pages; merged into the staff router (behind its auth, CSRF and
/// error layers) by `web::router`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ipam/pools", get(list_pools).post(create_pool))
        .route("/ipam/pools/{id}", get(show_pool).post(update_pool))
        .route("/ipam/pools/{id}/delete", post(delete_pool))
        .route("/ipam/pools/{id}/subnets", post(create_subnet))
        .route("/ipam/subnets", get(list_subnets))
        .route("/ipam/subnets/{id}", get(show_subnet).post(update_subnet))
        .route("/ipam/subnets/{id}/delete", post(delete_subnet))
        .route("/ipam/subnets/{id}/allocations", post(allocate_ip))
        .route("/ipam/allocations", get(list_allocations))
        .route("/ipam/allocations.csv", get(export_allocations))
        .route("/ipam/allocations/{id}/release", post(release_ip))
        .route("/ipam/history", get(address_history))
}

pub(crate) const ALLOCATION_STATUSES: [&str; 3] = ["active", "released", "expired"];
/// The 404 message of a bad id in the path.
pub(crate) const NOT_FOUND: &str = "There is no such IPAM record.";
/// Free addresses shown on the subnet page.
pub(crate) const AVAILABLE_SHOWN: usize = 16;
/// Holdings shown on the history page.
pub(crate) const TIMELINE_LIMIT: u64 = 200;

// ------------------------------------------------------------ view helpers

/// The status choices of a pool or subnet form, with the current one marked.
pub(crate) fn status_options(current: &str) -> Vec<Choice> {
    choices(&["active", "reserved", "deprecated"], current)
}

/// A utilization bar: an SVG drawing plus the same figure as text.
#[derive(Default)]
pub struct Bar {
    pub percent: f64,
    pub text: String,
}

impl Bar {
    pub(super) fn new(u: &Utilization) -> Self {
        Self {
            percent: u.percent,
            text: format!("{:.1}% used ({} of {})", u.percent, u.allocated, u.total),
        }
    }

    pub fn width(&self) -> String {
        format!("{:.2}", self.percent.clamp(0.0, 100.0))
    }

    pub fn color(&self) -> &'static str {
        match self.percent {
            p if p >= 90.0 => "#b91c1c",
            p if p >= 75.0 => "#d97706",
            _ => "#0369a1",
        }
    }
}

/// An optional VLAN id typed into a form: "" is `None`; text that is not a
/// whole number leaves a message under `field`.
pub(crate) fn optional_vlan(field: &str, text: &str, errors: &mut FieldErrors) -> Option<i64> {
    optional_parsed(field, text, errors, |text| {
        format!("\"{text}\" is not a VLAN id (1 to 4094)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::pools::html::POOL_FIELDS;
    use crate::ipam::subnets::html::allocation_filter;
    use crate::web::forms::Errors;

    #[test]
    fn formula_cells_are_defused_and_quoted_cells_escaped() {
        assert_eq!(crate::web::csv::cell("alice"), "alice");
        assert_eq!(
            crate::web::csv::cell("=HYPERLINK(\"x\")"),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(crate::web::csv::cell("+1"), "'+1");
        assert_eq!(crate::web::csv::cell("-1+2"), "'-1+2");
        assert_eq!(crate::web::csv::cell("@evil"), "'@evil");
        assert_eq!(crate::web::csv::cell("a,b"), "\"a,b\"");
        assert_eq!(crate::web::csv::cell("2001:db8::1"), "2001:db8::1");
        assert_eq!(crate::web::csv::cell(""), "");
    }

    #[test]
    fn datetime_local_values_are_read_as_utc() {
        use crate::web::forms::moment;
        let at = moment("2025-01-31T14:30").unwrap();
        assert_eq!(at.to_rfc3339(), "2025-01-31T14:30:00+00:00");
        assert!(moment("2025-01-31T14:30:15").is_ok());
        assert!(moment("2025-01-31T14:30:00+02:00").is_ok());
        assert!(moment("yesterday").unwrap_err().contains("not a date"));
    }

    #[test]
    fn search_text_picks_the_filter() {
        let f = allocation_filter("10.0.0.5", "active");
        assert!(f.ip.is_some() && f.status.as_deref() == Some("active"));
        let f = allocation_filter("AA-BB-CC-DD-EE-FF", "bogus");
        assert_eq!(f.mac_address.unwrap().as_str(), "aa:bb:cc:dd:ee:ff");
        assert!(f.status.is_none());
        let f = allocation_filter("alice", "");
        assert_eq!(f.username.as_deref(), Some("alice"));
    }

    #[test]
    fn dns_numbered_fields_fold_into_one_message() {
        let errors = Errors::from_indexed_fields(
            FieldErrors::from([
                ("dns_servers[0]".to_string(), "a".to_string()),
                ("dns_servers[2]".to_string(), "b".to_string()),
                ("pool_id".to_string(), "c".to_string()),
            ]),
            POOL_FIELDS,
        );
        assert_eq!(errors.get("dns_servers"), Some("a; b"));
        assert_eq!(errors.get("_form"), Some("c"));
    }
}
