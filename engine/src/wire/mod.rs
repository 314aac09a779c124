//! The confab binary protocol's syntax: its frames and their byte codec.
//!
//! This is the bottom layer: it knows bytes and frames, nothing of
//! sessions, requests or events. [`crate::confab`] maps its frames to the
//! hub's requests and events; the hub reaches it only through that front
//! end's [`Codec`](crate::protocol::Codec), as it would any other
//! protocol's.

pub mod codec;
mod error_code;
pub mod frame;
mod group_action;
mod kinds;
mod mod_action;
