//! The confab binary protocol: its frames, their byte codec, and the front
//! end that maps them to the hub's requests and events.
//!
//! Nothing outside this module knows the frame layout; the hub reaches it
//! only through the [`Codec`](crate::protocol::Codec) trait, as it would
//! any other protocol's front end.

pub mod codec;
mod confab;
pub mod frame;

pub use confab::Confab;
