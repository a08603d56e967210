//! The RouterOS API, written here because no maintained crate is
//! permissively licensed: the wire codec, an async client, and a mock
//! router that speaks the same protocol for tests and demos.
//!
//! The protocol in short: length-prefixed words, sentences ended by an
//! empty word, replies `!re`/`!done`/`!trap`/`!fatal`/`!empty`, and `.tag`
//! to run several commands at once on one connection.

pub mod client;
pub mod codec;
pub mod mock;

pub use client::{Client, ConnectOptions, Error, Fingerprint, Response};
pub use codec::{Command, Reply, ReplyKind, Row};
pub use mock::{Fault, MockOptions, MockRouter};
