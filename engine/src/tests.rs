//! Engine tests: the protocol document's examples, codec properties, and the
//! hub driven through a deterministic world (fake clock, in-memory store).

mod codec;
mod examples;
mod hub;
mod lines;
mod routing;
mod seam;
pub(crate) mod util;
