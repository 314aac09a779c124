//! The bench's message bodies: a header of send time, sender and sequence
//! number in hex (so every protocol carries it as text), padded to the
//! body size; and the SEND frame that carries one, written by hand so the
//! hot path allocates nothing.

use confab_engine::Target;

/// Length of the header every bench body starts with: 16 hex digits of
/// send time (ns since the bench started), 8 of sender, 8 of sequence.
pub(crate) const BODY_HEADER: usize = 32;

/// Sender ids at or above this are not counted as deliveries (flooders).
pub(crate) const FOREIGN_SENDER: u32 = 0xF000_0000;

const HEX: &[u8; 16] = b"0123456789abcdef";

fn put_hex(out: &mut [u8], mut v: u64) {
    for b in out.iter_mut().rev() {
        *b = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
}

fn get_hex(b: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for &c in b {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

/// A parsed bench body header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) sent_ns: u64,
    pub(crate) sender: u32,
    pub(crate) seq: u32,
}

impl Stamp {
    /// Reads the header at the start of a body.
    pub(crate) fn parse(body: &str) -> Option<Stamp> {
        let b = body.as_bytes().get(..BODY_HEADER)?;
        Some(Stamp {
            sent_ns: get_hex(&b[..16])?,
            sender: u32::try_from(get_hex(&b[16..24])?).ok()?,
            seq: u32::try_from(get_hex(&b[24..32])?).ok()?,
        })
    }
}

/// Appends a SEND frame of a `size`-byte body (at least [`BODY_HEADER`])
/// carrying `stamp`, without allocating.
/// With `client_id`, a SEND2 (protocol version 2: stored at most once
/// per client id of the session's device).
pub(crate) fn encode_send(
    out: &mut Vec<u8>,
    reference: u32,
    client_id: Option<u64>,
    target: &Target,
    size: usize,
    stamp: Stamp,
) {
    let size = size.max(BODY_HEADER);
    // Frame::encode needs a &str body; write the frame by hand instead,
    // byte for byte what it would produce (checked in the tests).
    let target_len = match target {
        Target::Room => 2,
        Target::Group(n) | Target::User(n) => 2 + n.as_str().len(),
    };
    let id_len = if client_id.is_some() { 8 } else { 0 };
    let len = 1 + 4 + id_len + target_len + 2 + size;
    out.extend_from_slice(&(len as u32).to_be_bytes());
    match client_id {
        Some(_) => out.push(confab_engine::frame::kind::SEND2),
        None => out.push(confab_engine::frame::kind::SEND),
    }
    out.extend_from_slice(&reference.to_be_bytes());
    if let Some(id) = client_id {
        out.extend_from_slice(&id.to_be_bytes());
    }
    match target {
        Target::Room => out.extend_from_slice(&[0, 0]),
        Target::Group(n) | Target::User(n) => {
            out.push(if matches!(target, Target::Group(_)) {
                1
            } else {
                2
            });
            out.push(n.as_str().len() as u8);
            out.extend_from_slice(n.as_str().as_bytes());
        }
    }
    out.extend_from_slice(&(size as u16).to_be_bytes());
    put_body(out, size, stamp);
}

/// Appends a `size`-byte body (at least [`BODY_HEADER`]) carrying `stamp`.
pub(crate) fn put_body(out: &mut Vec<u8>, size: usize, stamp: Stamp) {
    let at = out.len();
    out.resize(at + size.max(BODY_HEADER), b'.');
    let h = &mut out[at..at + BODY_HEADER];
    put_hex(&mut h[..16], stamp.sent_ns);
    put_hex(&mut h[16..24], u64::from(stamp.sender));
    put_hex(&mut h[24..32], u64::from(stamp.seq));
}

#[cfg(test)]
mod tests {
    use confab_engine::{decode, Frame, Name, Ref};

    use super::*;

    #[test]
    fn hand_encoded_send_matches_the_codec() {
        let targets = [
            Target::Room,
            Target::User(Name::new("b1-2").expect("valid")),
            Target::Group(Name::new("g").expect("valid")),
        ];
        for target in targets {
            for size in [32, 100, 4096] {
                let stamp = Stamp {
                    sent_ns: 0x0123_4567_89ab_cdef,
                    sender: 7,
                    seq: 0xffff_fffe,
                };
                let mut mine = Vec::new();
                encode_send(&mut mine, 42, None, &target, size, stamp);
                let (frame, used) = decode(&mine, u32::MAX)
                    .expect("decodes")
                    .expect("a whole frame");
                assert_eq!(used, mine.len());
                let Frame::Send {
                    reference,
                    target: t,
                    body,
                } = frame
                else {
                    panic!("not a SEND: {frame:?}");
                };
                assert_eq!((reference, t), (Ref(42), target));
                assert_eq!(body.as_str().len(), size);
                assert_eq!(Stamp::parse(body.as_str()), Some(stamp));
                let mut theirs = Vec::new();
                Frame::Send {
                    reference: Ref(42),
                    target,
                    body,
                }
                .encode(&mut theirs);
                assert_eq!(mine, theirs);
                let mut mine2 = Vec::new();
                encode_send(&mut mine2, 42, Some(9), &target, size, stamp);
                let mut theirs2 = Vec::new();
                Frame::Send2 {
                    reference: Ref(42),
                    client_id: confab_engine::ClientId(9),
                    target,
                    body,
                }
                .encode(&mut theirs2);
                assert_eq!(mine2, theirs2, "the hand-encoded SEND2");
            }
        }
    }

    #[test]
    fn foreign_bodies_do_not_parse() {
        assert_eq!(Stamp::parse("hi"), None);
        assert_eq!(Stamp::parse(&"z".repeat(40)), None);
    }
}
