//! The SEND2s a device session has sent and the server has not yet
//! acknowledged, kept so that they can be sent again, with the same client
//! ids, after a reconnect (docs/PROTOCOL.md, "Exactly-once sends").

use std::collections::VecDeque;

use confab_engine::{ClientId, MessageId, Ref, Target};

/// The most unacknowledged sends kept; one more is refused
/// ([`crate::ApiMisuse::OutboxFull`]) rather than dropped silently.
pub const MAX_UNACKED: usize = 1024;

/// One SEND2 waiting for its ACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unacked {
    /// Its client id, the same in every resend.
    pub client_id: ClientId,
    /// Where to.
    pub target: Target,
    /// The text.
    pub body: String,
    /// The reference of its latest SEND2 in the current session (`None`
    /// while it waits to be resent).
    pub(crate) reference: Option<Ref>,
}

/// What a session hands over to the next one after a reconnect: the
/// unacknowledged sends, the client id counter and the newest message id
/// the application has seen (so that a replay shows nothing twice). Take
/// it with [`crate::Session::take_outbox`], give it to the new session
/// with [`crate::Session::adopt_outbox`]; the new session resends every
/// entry once it has caught up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbox {
    next: u64,
    unacked: VecDeque<Unacked>,
    pub(crate) seen: MessageId,
}

impl Unacked {
    /// The reference of its SEND2 on the current connection, once sent
    /// there (a resend goes out after CAUGHT_UP).
    pub fn reference(&self) -> Option<Ref> {
        self.reference
    }
}

impl Outbox {
    /// An empty outbox whose client ids start at `first` (0 counts as 1).
    /// Ids must be unique per device across runs: start from 64 random
    /// bits ([`Outbox::random`]) or from a counter the caller persists.
    pub fn starting_at(first: u64) -> Outbox {
        Outbox {
            next: first.max(1),
            unacked: VecDeque::new(),
            seen: MessageId(0),
        }
    }

    /// An empty outbox whose client ids start at 64 random bits (the top
    /// bit clear, so that counting up never wraps in practice).
    pub fn random() -> Outbox {
        let mut b = [0u8; 8];
        let rng = ring::rand::SystemRandom::new();
        // A failing system RNG leaves zeros; the clock still varies them.
        let _ = ring::rand::SecureRandom::fill(&rng, &mut b);
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Outbox::starting_at((u64::from_be_bytes(b) ^ clock) >> 1)
    }

    /// The sends still waiting for an ACK, oldest first.
    pub fn unacked(&self) -> impl Iterator<Item = &Unacked> {
        self.unacked.iter()
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.unacked.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.unacked.is_empty()
    }

    /// The client id the next send gets.
    pub fn next_client_id(&self) -> ClientId {
        ClientId(self.next)
    }

    pub(crate) fn is_full(&self) -> bool {
        self.unacked.len() >= MAX_UNACKED
    }

    /// Records a new send under `reference`; returns its client id.
    pub(crate) fn push(&mut self, target: Target, body: &str, reference: Ref) -> ClientId {
        let client_id = ClientId(self.next);
        self.next = self.next.checked_add(1).unwrap_or(1);
        self.unacked.push_back(Unacked {
            client_id,
            target,
            body: body.to_owned(),
            reference: Some(reference),
        });
        client_id
    }

    /// The entry answered by `reference` is done (acknowledged or refused).
    pub(crate) fn settle(&mut self, reference: Ref) -> Option<Unacked> {
        let i = self
            .unacked
            .iter()
            .position(|u| u.reference == Some(reference))?;
        self.unacked.remove(i)
    }

    /// Every entry is to be sent again (the references of the old
    /// connection mean nothing on the new one).
    pub(crate) fn forget_references(&mut self) {
        for u in &mut self.unacked {
            u.reference = None;
        }
    }

    /// The entries waiting to be resent, to be given references.
    pub(crate) fn waiting(&mut self) -> impl Iterator<Item = &mut Unacked> {
        self.unacked.iter_mut().filter(|u| u.reference.is_none())
    }
}

impl Default for Outbox {
    fn default() -> Outbox {
        Outbox::random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_count_up_and_settled_sends_leave_the_outbox() {
        let mut o = Outbox::starting_at(0);
        assert_eq!(o.push(Target::Room, "a", Ref(1)), ClientId(1));
        assert_eq!(o.push(Target::Room, "b", Ref(2)), ClientId(2));
        assert_eq!(o.settle(Ref(1)).map(|u| u.body), Some("a".into()));
        assert_eq!(o.settle(Ref(1)), None);
        o.forget_references();
        assert_eq!(o.waiting().count(), 1);
        assert_eq!(o.next_client_id(), ClientId(3));
    }

    #[test]
    fn two_random_outboxes_start_at_different_ids() {
        assert_ne!(
            Outbox::random().next_client_id(),
            Outbox::random().next_client_id()
        );
    }
}
