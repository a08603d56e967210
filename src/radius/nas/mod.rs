//! RADIUS clients (NAS): the rules and the `nas` table are in [`service`]
//! (re-exported here, so `radius::nas::create_nas` names the service);
//! [`html`] and [`api`] are the two surfaces over them, with the session
//! action "Disconnect" that needs a registered NAS.

pub mod api;
pub mod html;
pub mod service;

pub use service::*;
