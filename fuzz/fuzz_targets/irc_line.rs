//! Arbitrary bytes as an IRC client's input: through the line parser
//! (never a panic, always progress or a stop), then through a hub's IRC
//! session over the in-memory store with an account `alice` (password
//! `pw`), every effect answered and the queue drained, so the commands
//! and the replies rendered at drain see hostile input too.
#![no_main]
use std::time::Instant;

use confab_engine::irc::line::{parse, LineError, Parsed, MAX_LINE};
use confab_engine::irc::IrcConfig;
use confab_engine::store::Store;
use confab_engine::testing::MemoryStore;
use confab_engine::{Config, Hub, MessageId, Name, Output, Source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        match parse(rest) {
            Ok(Parsed::Incomplete) => {
                assert!(rest.len() <= MAX_LINE);
                break;
            }
            Ok(Parsed::Empty(n) | Parsed::Line(_, n)) | Err(LineError::NotUtf8 { len: n }) => {
                assert!(n > 0 && n <= rest.len());
                rest = &rest[n..];
            }
            Err(LineError::TooLong { len, .. }) => {
                assert!(len > 0 && len <= rest.len());
                rest = &rest[len..];
            }
        }
    }
    session(data);
});

fn session(data: &[u8]) {
    let mut hub = Hub::new(Config::default(), [], MessageId(0));
    let Some(irc) = hub.add_irc(IrcConfig::default()) else {
        return;
    };
    let mut store = MemoryStore::default();
    if let Ok(alice) = Name::new("alice") {
        let _ = store.create_account(&alice, "pw");
    }
    let now = Instant::now();
    let conn = hub.connect(now, Source(1), irc.plain);
    let mut input = data.to_vec();
    for _ in 0..64 {
        let used = hub.handle_bytes(now, conn, &input);
        assert!(used <= input.len());
        input.drain(..used);
        while let Some(out) = hub.poll_output() {
            if let Output::Effect(e) = out {
                for i in store.run(e) {
                    hub.handle_input(now, i);
                }
            }
        }
        let mut out = Vec::new();
        while hub.drain(conn, &mut out, 64 * 1024).bytes > 0 {}
        if used == 0 {
            break;
        }
    }
}
