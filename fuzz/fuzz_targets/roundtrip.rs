//! The encoding is canonical: any frame the parser accepts re-encodes to
//! exactly the bytes it was parsed from, and parses again to the same frame.
#![no_main]
use confab_engine::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((frame, n))) = decode(data, u32::MAX) {
        let bytes = frame.to_bytes();
        assert_eq!(bytes, &data[..n], "re-encoding differs for {frame:?}");
        let (again, m) = decode(&bytes, u32::MAX).expect("own encoding parses").expect("complete");
        assert_eq!(m, bytes.len());
        assert_eq!(again, frame);
    }
});
