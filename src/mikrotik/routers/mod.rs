//! The MikroTik routers ispd drives: their endpoint, credentials (write-only,
//! encrypted) and status. The rules are in [`service`]; [`html`] and [`api`]
//! are the two surfaces over them.

pub mod api;
pub mod html;
pub mod service;
