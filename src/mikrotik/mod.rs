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
pub mod sessions_api;
pub mod sessions_html;
pub mod user_secrets;
