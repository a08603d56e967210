//! MikroTik routers, driven over the RouterOS API.

pub mod api;
pub mod entities;
pub mod html;
pub mod pool;
pub mod routeros;
pub mod service;
pub mod sessions;
pub mod sessions_api;
pub mod sessions_html;
