//! PPPoE secrets that ispd keeps on routers (`/ppp/secret`), one row per
//! secret in `mikrotik_pppoe_users`. The rules are in [`service`] (what the
//! caller gives is checked in `input`, the list is read in `listing`, both
//! re-exported by it); [`html`] and [`api`] are the two surfaces over them.

pub mod api;
pub mod html;
mod input;
mod listing;
pub mod service;
