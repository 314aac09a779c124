//! History pages: a HISTORY_REQUEST checked and handed to storage, and the
//! page fitted into one frame of the asker's protocol; and IRC's
//! CHATHISTORY TARGETS, the conversations whose latest message is in a
//! window, asked of storage the same way.

use crate::effect::{Effect, EffectResult, HistoryLoaded, Latest};
use crate::error::ProtocolError;
use crate::event::Event;
use crate::id::{ConnId, MessageId, Ref};
use crate::name::Name;
use crate::send_queue::Class;
use crate::window::Window;
use crate::wire::frame::Target;

use super::Hub;

impl Hub {
    /// A history page or a TARGETS list, loaded.
    pub(super) fn read_loaded(&mut self, result: EffectResult) {
        match result {
            EffectResult::History {
                conn,
                reference,
                target,
                result,
            } => self.history_loaded(conn, reference, target, result),
            EffectResult::Targets {
                conn,
                reference,
                result,
            } => self.targets_loaded(conn, reference, result),
            // `handle_result` hands over only the two above.
            _ => {}
        }
    }

    pub(super) fn history(
        &mut self,
        conn: ConnId,
        reference: Ref,
        target: Target,
        window: Window,
        limit: u16,
    ) {
        let Some(user) = self.user(conn) else { return };
        if let Target::Group(g) = &target {
            if let Err(e) = self.groups.of_member(&user, g) {
                return self.refuse(conn, reference, e);
            }
        }
        let limit = self.page_limit(limit);
        if !self.begin_request(conn, reference) {
            return;
        }
        self.outbox.effect(Effect::LoadHistory {
            conn,
            reference,
            user,
            target,
            window,
            limit,
        });
    }

    /// The loaded page, cut to what one frame of the session's protocol
    /// holds within `max_frame`: what does not fit is "more".
    fn history_loaded(
        &mut self,
        conn: ConnId,
        reference: Ref,
        target: Target,
        result: Result<HistoryLoaded, ProtocolError>,
    ) {
        self.end_request(conn);
        let loaded = match result {
            Ok(l) => l,
            Err(e) => return self.refuse(conn, reference, e),
        };
        let Some(s) = self.sessions.get(conn) else {
            return;
        };
        let codec = &*self.codecs[s.protocol.index()];
        let budget = self.config.max_frame as usize;
        let mut page = Event::HistoryPage {
            reference,
            target,
            more: loaded.more,
            entries: Vec::new(),
        };
        // Sized for the longest target, so the page fits whichever it is.
        let mut size = codec.encoded_len(&Event::HistoryPage {
            reference,
            target: Target::User(Name::longest()),
            more: false,
            entries: Vec::new(),
        });
        let Event::HistoryPage { entries, more, .. } = &mut page else {
            unreachable!("built as a page just above")
        };
        let mut messages = loaded.messages.into_iter();
        for m in messages.by_ref() {
            let n = codec.history_entry_len(&m);
            if size + n > budget || entries.len() == u16::MAX as usize {
                *more = true;
                break;
            }
            size += n;
            entries.push(m);
        }
        // Who deleted the page's tombstones, right after it (for the
        // sessions whose protocol has a word for it).
        // The page may be oldest first (an IRC window): its least id.
        let oldest = entries
            .iter()
            .map(|m| m.id)
            .min()
            .unwrap_or(MessageId(u64::MAX));
        let version = s.version;
        let told: Vec<Event> = loaded
            .deleted
            .into_iter()
            .filter(|(id, _)| *id >= oldest)
            .map(|(id, by)| Event::Deleted { id, by })
            .filter(|e| codec.tells(e, version))
            .collect();
        self.push(conn, page, Class::Bulk);
        for e in told {
            self.push(conn, e, Class::Bulk);
        }
    }

    /// A page's limit as asked, bounded by `history_page_max` (0: the max).
    fn page_limit(&self, limit: u16) -> u16 {
        let max = self.config.history_page_max;
        if limit == 0 || limit > max {
            max
        } else {
            limit
        }
    }

    /// CHATHISTORY TARGETS: asked of storage with the user's groups now,
    /// the limit bounded as a page's is.
    pub(super) fn history_targets(
        &mut self,
        conn: ConnId,
        reference: Ref,
        between: (u64, u64),
        limit: u16,
    ) {
        let Some(user) = self.user(conn) else { return };
        let limit = self.page_limit(limit);
        if !self.begin_request(conn, reference) {
            return;
        }
        let groups = self.groups.of(&user);
        self.outbox.effect(Effect::LoadTargets {
            conn,
            reference,
            user,
            groups,
            between,
            limit,
        });
    }

    /// The loaded conversations, to the asker (an IRC session: only its
    /// gateway asks).
    fn targets_loaded(
        &mut self,
        conn: ConnId,
        reference: Ref,
        result: Result<Vec<Latest>, ProtocolError>,
    ) {
        self.end_request(conn);
        match result {
            Ok(targets) => {
                let event = Event::HistoryTargets { reference, targets };
                self.push(conn, event, Class::Bulk);
            }
            Err(e) => self.refuse(conn, reference, e),
        }
    }
}
