//! Arbitrary bytes through the frame parser, as a reader would feed them:
//! never a panic, never an over-read, always progress or a stop.
#![no_main]
use confab_engine::{decode, DecodeError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (max, mut rest) = match data.split_first() {
        // The first byte picks the limit, so both pre- and post-auth sizes are hit.
        Some((m, r)) => (if m & 1 == 0 { 1024 } else { 65536 }, r),
        None => return,
    };
    loop {
        match decode(rest, max) {
            Ok(Some((_, n))) => {
                assert!(n > 0 && n <= rest.len());
                rest = &rest[n..];
            }
            Ok(None) => break,
            Err(DecodeError::UnknownType { frame_len, .. }) => {
                assert!(frame_len <= rest.len());
                rest = &rest[frame_len..];
            }
            Err(_) => break,
        }
    }
});
