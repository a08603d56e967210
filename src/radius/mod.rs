//! RADIUS: the FreeRADIUS SQL tables on their own connection.

pub mod accounting;
pub mod api;
pub mod coa;
pub mod entities;
pub mod html;
pub mod nas;
pub mod resync;
pub mod service;
pub mod value;

/// The NAS pages and API, by the names the staff and API routers use.
pub use nas::{api as nas_api, html as nas_html};
