//! CHATHISTORY TARGETS' answer: a `draft/chathistory-targets` batch.

use crate::effect::Latest;
use crate::frame::Target;

use super::labels::labeled;
use super::line::{server_time, Out};
use super::session::{Caps, IrcSession};
use super::{IrcConfig, Pending};

/// A TARGETS answer as a `draft/chathistory-targets` batch of
/// `CHATHISTORY TARGETS <target> <time>` lines, earliest first; `to`
/// names a conversation as the client sees it.
pub fn targets(
    s: &mut IrcSession,
    reference: crate::id::Ref,
    targets: &[Latest],
    to: impl Fn(&Target) -> String,
    config: &IrcConfig,
    out: &mut Vec<u8>,
) {
    let Some(Pending::History { label, .. }) = s.answered(reference) else {
        return;
    };
    let mut lines = Vec::new();
    let batch = s.caps.has(Caps::BATCH);
    let id = format!("T{}", reference.0);
    if batch {
        Out::new(&mut lines)
            .command(&config.server, "BATCH")
            .param(&format!("+{id}"))
            .param("draft/chathistory-targets")
            .end();
    }
    for t in targets {
        let mut o = Out::new(&mut lines);
        if batch {
            o = o.tag("batch", &id);
        }
        o.command(&config.server, "CHATHISTORY")
            .param("TARGETS")
            .param(&to(&t.target))
            .param(&server_time(t.timestamp_ms))
            .end();
    }
    if batch {
        Out::new(&mut lines)
            .command(&config.server, "BATCH")
            .param(&format!("-{id}"))
            .end();
    }
    out.extend(labeled(lines, label.as_deref(), s, config));
}
