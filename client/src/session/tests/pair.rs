//! Client sessions talking to a real engine [`Hub`] whose effects a
//! [`MemoryStore`] answers, with no sockets and no clock but `now`.

use std::time::Instant;

use confab_engine::store::Store;
use confab_engine::testing::MemoryStore;
use confab_engine::{ConnId, Hub, Outgoing, Output, Protocol, Source};

use super::*;

pub(super) struct Pair {
    pub(super) hub: Hub,
    pub(super) now: Instant,
    pub(super) store: MemoryStore,
    pub(super) clients: Vec<(ConnId, Session)>,
}

impl Pair {
    /// A hub whose store has these accounts, each with the password `pw`.
    pub(super) fn with_accounts(users: &[&str]) -> Pair {
        let mut store = MemoryStore::default();
        for u in users {
            // The memory store keeps a password as its "hash".
            store.create_account(&n(u), "pw").expect("memory store");
        }
        Pair {
            hub: Hub::new(Config::default(), [], MessageId(0)),
            now: Instant::now(),
            store,
            clients: Vec::new(),
        }
    }

    pub(super) fn connect(&mut self) -> usize {
        let source = Source(self.clients.len() as u128 + 1);
        let conn = self.hub.connect(self.now, source, Protocol::CONFAB);
        self.clients.push((conn, Session::new("pair")));
        self.clients.len() - 1
    }

    /// The connection of client `i` drops (the server sees it close).
    pub(super) fn drop_connection(&mut self, i: usize) {
        let conn = self.clients[i].0;
        self.hub.disconnect(self.now, conn);
        self.clients[i].1.handle_eof();
        self.step();
    }

    pub(super) fn session(&mut self, i: usize) -> &mut Session {
        &mut self.clients[i].1
    }

    /// Moves bytes both ways and runs effects until nothing moves.
    pub(super) fn step(&mut self) {
        loop {
            let mut moved = false;
            for (conn, s) in &mut self.clients {
                let mut out = Vec::new();
                if s.poll_transmit(&mut out) > 0 {
                    moved = true;
                    let used = self.hub.handle_bytes(self.now, *conn, &out);
                    assert_eq!(used, out.len());
                }
            }
            while let Some(o) = self.hub.poll_output() {
                moved = true;
                match o {
                    Output::Effect(e) => {
                        for input in self.store.run(e) {
                            self.hub.handle_input(self.now, input);
                        }
                    }
                    Output::Wake(c) => self.deliver(c),
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn deliver(&mut self, c: ConnId) {
        let mut frames: Vec<Outgoing> = Vec::new();
        let _ = self.hub.drain(c, &mut frames, usize::MAX);
        let Some((_, s)) = self.clients.iter_mut().find(|(k, _)| *k == c) else {
            return;
        };
        for f in frames {
            if s.phase() != Phase::Closed || s.error().is_none() {
                s.handle_input(&f).expect("the engine speaks our protocol");
            }
        }
    }

    pub(super) fn events(&mut self, i: usize) -> Vec<Event> {
        events(&mut self.clients[i].1)
    }
}
