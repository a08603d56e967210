//! RADIUS: the FreeRADIUS SQL tables on their own connection.

pub mod accounting;
pub mod api;
pub mod coa;
pub mod entities;
pub mod html;
pub mod nas;
pub mod nas_api;
pub mod nas_html;
pub mod resync;
pub mod service;
pub mod value;
