//! MikroTik routers, driven over the RouterOS API.

pub mod entities;
pub mod routeros;
