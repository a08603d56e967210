//! PPPoE secrets that ispd keeps on routers (`/ppp/secret`), one row per
//! secret in `mikrotik_pppoe_users`. The rules are in [`service`]; [`html`]
//! and [`api`] are the two surfaces over them.

pub mod api;
pub mod html;
pub mod service;
