//! Engine tests: the protocol document's examples, codec properties, and the
//! hub driven through a deterministic world (fake clock, in-memory store).

mod abuse;
mod cluster;
mod cluster_guard;
mod codec;
mod delivery;
mod devices;
mod examples;
mod flow;
mod group_roles;
mod irc;
mod irc_refusals;
mod lines;
mod moderation;
mod notices;
mod room;
mod routing;
mod seam;
mod session;
pub(crate) mod util;
