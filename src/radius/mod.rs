//! RADIUS: the FreeRADIUS SQL tables on their own connection.

pub mod entities;
pub mod service;
