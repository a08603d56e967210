//! Service packages: rates, burst, limits, RADIUS group and MikroTik
//! profile. The rules are in [`service`]; [`html`] and [`api`] are the two
//! surfaces over them.

pub mod api;
pub mod html;
pub mod service;
