//! labeled-response: a labeled command's reply lines as one labeled line,
//! a `labeled-response` batch, or an ACK; a JOIN's gathered into one.

use super::line::Out;
use super::session::{Caps, IrcSession};
use super::IrcConfig;

/// `lines` answering a labeled request: one line carries the label, more
/// go in a `labeled-response` batch, none becomes an ACK. Unlabeled (or
/// the cap not negotiated), they are as they are.
pub fn labeled(lines: Vec<u8>, label: Option<&str>, s: &IrcSession, config: &IrcConfig) -> Vec<u8> {
    let Some(label) = label.filter(|_| s.caps.has(Caps::LABELED)) else {
        return lines;
    };
    let count = lines
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    let mut out = Vec::with_capacity(lines.len() + 64);
    match count {
        0 => Out::new(&mut out)
            .tag("label", label)
            .command(&config.server, "ACK")
            .end(),
        1 => out.extend(with_tag(&lines, &format!("label={label}"))),
        _ => {
            let id = format!("L{}", s.next_ref);
            Out::new(&mut out)
                .tag("label", label)
                .command(&config.server, "BATCH")
                .param(&format!("+{id}"))
                .param("labeled-response")
                .end();
            // Lines already in an inner batch (a chathistory page) stay
            // in it: only the inner batch's own BATCH lines are tagged.
            for l in lines.split_inclusive(|&b| b == b'\n') {
                if in_batch(l) {
                    out.extend_from_slice(l);
                } else {
                    out.extend(with_tag(l, &format!("batch={id}")));
                }
            }
            Out::new(&mut out)
                .command(&config.server, "BATCH")
                .param(&format!("-{id}"))
                .end();
        }
    }
    out
}

/// The lines answering one channel of a JOIN: gathered if its label's
/// JOIN named several (see `commands::join`), all of them labeled once the
/// last is in; else labeled as they are.
pub fn gathered(
    s: &mut IrcSession,
    label: Option<String>,
    lines: Vec<u8>,
    config: &IrcConfig,
) -> Vec<u8> {
    let at = label
        .as_ref()
        .and_then(|l| s.gathers.iter().position(|g| &g.label == l));
    let Some(at) = at else {
        return labeled(lines, label.as_deref(), s, config);
    };
    let g = &mut s.gathers[at];
    g.lines.extend(lines);
    g.left = g.left.saturating_sub(1);
    if g.left > 0 {
        return Vec::new();
    }
    let g = s.gathers.remove(at);
    labeled(g.lines, Some(&g.label), s, config)
}

/// Whether `line` carries a `batch` tag.
fn in_batch(line: &[u8]) -> bool {
    let Some(tags) = line.strip_prefix(b"@") else {
        return false;
    };
    let end = tags.iter().position(|&b| b == b' ').unwrap_or(tags.len());
    tags[..end]
        .split(|&b| b == b';')
        .any(|t| t == b"batch" || t.starts_with(b"batch="))
}

/// `line` with `tag` (`key=value`) added first.
fn with_tag(line: &[u8], tag: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + tag.len() + 2);
    match line.strip_prefix(b"@") {
        Some(rest) => {
            out.push(b'@');
            out.extend_from_slice(tag.as_bytes());
            out.push(b';');
            out.extend_from_slice(rest);
        }
        None => {
            out.push(b'@');
            out.extend_from_slice(tag.as_bytes());
            out.push(b' ');
            out.extend_from_slice(line);
        }
    }
    out
}
