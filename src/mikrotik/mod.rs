//! MikroTik routers, driven over the RouterOS API.

pub mod api;
pub mod entities;
pub mod html;
pub mod link;
pub mod pool;
pub mod pppoe;
pub mod routeros;
pub mod routers;
pub mod service;
pub mod sessions;
pub mod user_secrets;

/// The live sessions' pages and API, under the names the staff and API
/// routers call them by.
pub use sessions::{api as sessions_api, html as sessions_html};
