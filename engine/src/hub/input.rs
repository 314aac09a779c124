//! A session's input: bytes read by its protocol's codec, or requests a
//! front end parsed itself, paid for and then dispatched by the state table.

use std::time::Instant;

use crate::effect::DeviceAsk;
use crate::error::ProtocolError;
use crate::event::Event;
use crate::id::{ConnId, Ref};
use crate::protocol::{Codec, Decoded};
use crate::request::Request;
use crate::send_queue::Class;
use crate::session::state::PendingAuth;

use super::Hub;

/// What [`Hub::take_one`] did.
enum Step {
    /// Took a request this many bytes long.
    Took(usize),
    /// Took nothing: the request is incomplete, or reading is paused.
    Wait,
    /// The session is closed (or gone): the input is all consumed.
    Closed,
}

impl Hub {
    /// Bytes that arrived from the peer, read by the connection's codec.
    /// Returns how many were consumed: the rest (an incomplete request, or
    /// requests held back by the rate limit or the per-turn budget) must be
    /// passed again, with anything newer appended, when
    /// [`Hub::read_ready`] allows.
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnId, input: &[u8]) -> usize {
        if self.is_irc(conn) {
            return self.irc_bytes(now, conn, input);
        }
        let Some(s) = self.sessions.get_mut(conn) else {
            return input.len();
        };
        if s.state.is_closed() {
            return input.len();
        }
        let codec = self.codecs[s.protocol.index()].clone();
        // The PONG to our own PING is the server's doing, paid for by its
        // ping schedule: it does not touch the budgets, so an idle session
        // that answers pings holds no rate state (see `Marks`).
        let mut solicited_pong = false;
        if !input.is_empty() {
            s.last_heard = now;
            if s.marks().ping_sent.is_some() {
                s.set_marks(|m| m.ping_sent = None);
                solicited_pong = true;
            }
        }
        let mut off = 0;
        for _ in 0..self.config.frames_per_turn {
            match self.take_one(now, conn, &*codec, &input[off..], &mut solicited_pong) {
                Step::Took(len) => off += len,
                Step::Wait => break,
                Step::Closed => return input.len(),
            }
            self.finish();
        }
        let rest = &input[off..];
        let incomplete =
            !rest.is_empty() && matches!(codec.decode(rest, u32::MAX), Decoded::Incomplete);
        if let Some(s) = self.sessions.get_mut(conn) {
            // The deadline is the incomplete request's own: if requests were
            // taken in this call, the one left over is newer than any that
            // was incomplete before, and its clock starts now.
            match (incomplete, off) {
                (false, _) => s.set_marks(|m| m.frame_started = None),
                (true, 0) => s.set_marks(|m| {
                    m.frame_started.get_or_insert(now);
                }),
                (true, _) => s.set_marks(|m| m.frame_started = Some(now)),
            }
        }
        off
    }

    /// `len` bytes of the front end's own framing were read with nothing
    /// in them for the hub (a WebSocket ping, pong or empty message). They
    /// show the client is there, as any bytes do (the idle timeout, an
    /// outstanding PING), and they are paid for like an exempt request of
    /// that length (before login, one request of the pre-auth budget), so
    /// a flood of them pauses reading, or closes the session before login,
    /// as a flood of PINGs would. Check [`Hub::read_ready`] after.
    pub fn handle_transport_bytes(&mut self, now: Instant, conn: ConnId, len: usize) {
        let Some(s) = self.sessions.get_mut(conn) else {
            return;
        };
        if s.state.is_closed() {
            return;
        }
        s.last_heard = now;
        if s.marks().ping_sent.is_some() {
            s.set_marks(|m| m.ping_sent = None);
        }
        let _paid = self.pay(now, conn, true, len);
        self.finish();
    }

    /// Reads, pays for and acts on the request at the front of `input`.
    fn take_one(
        &mut self,
        now: Instant,
        conn: ConnId,
        codec: &dyn Codec,
        input: &[u8],
        solicited_pong: &mut bool,
    ) -> Step {
        let Some(s) = self.sessions.get(conn) else {
            return Step::Closed;
        };
        if s.state.is_closed() {
            return Step::Closed;
        }
        if s.marks().paused_until.is_some_and(|t| t > now) {
            return Step::Wait;
        }
        let max = if s.state.before_login() {
            self.config.max_frame_pre_auth
        } else {
            self.config.max_frame
        };
        match codec.decode(input, max) {
            Decoded::Incomplete => Step::Wait,
            Decoded::Request(r, len) => {
                let free = *solicited_pong && matches!(r, Request::Pong { .. });
                *solicited_pong &= !free;
                if !free && !self.pay(now, conn, r.is_exempt(), len) {
                    return Step::Wait;
                }
                self.dispatch(now, conn, r);
                Step::Took(len)
            }
            Decoded::Skipped(len, error) => {
                if !self.pay(now, conn, false, len) {
                    return Step::Wait;
                }
                self.refuse(conn, Ref(0), error);
                Step::Took(len)
            }
            Decoded::NotARequest(len, request) => {
                if !self.pay(now, conn, false, len) {
                    return Step::Wait;
                }
                self.out_of_place(conn, Ref(0), request);
                Step::Took(len)
            }
            Decoded::Fatal(error) => {
                self.fatal(conn, Ref(0), error);
                self.finish();
                Step::Closed
            }
        }
    }

    /// Whether `input` (what [`Hub::handle_bytes`] left unconsumed) holds
    /// a whole request or more, so the reader should feed it again without
    /// waiting for the socket.
    pub fn holds_request(&self, conn: ConnId, input: &[u8]) -> bool {
        let Some(s) = self.sessions.get(conn) else {
            return false;
        };
        !input.is_empty()
            && !matches!(
                self.codecs[s.protocol.index()].decode(input, u32::MAX),
                Decoded::Incomplete
            )
    }

    /// A request from a front end that parsed it itself (one whose framing
    /// the hub's codecs do not read, such as WebSocket messages). It pays
    /// `min_frame_charge` bytes; false if it was not taken (the session is
    /// paused: offer it again when [`Hub::read_ready`] allows).
    pub fn handle_request(&mut self, now: Instant, conn: ConnId, request: Request<'_>) -> bool {
        let Some(s) = self.sessions.get_mut(conn) else {
            return true;
        };
        if s.state.is_closed() {
            return true;
        }
        if s.marks().paused_until.is_some_and(|t| t > now) {
            return false;
        }
        s.last_heard = now;
        if !self.pay(now, conn, request.is_exempt(), 0) {
            self.finish();
            return false;
        }
        self.dispatch(now, conn, request);
        self.finish();
        true
    }

    /// Acts on a paid request, if the session's state accepts it.
    pub(super) fn dispatch(&mut self, now: Instant, conn: ConnId, request: Request<'_>) {
        let Some(s) = self.sessions.get(conn) else {
            return;
        };
        if request.since_version() > s.version {
            let (request, version) = (request.name(), s.version);
            let error = ProtocolError::NotInVersion { request, version };
            return self.refuse(conn, Ref(0), error);
        }
        if !s.state.accepts(&request) {
            self.out_of_place(conn, request.reference(), request.name());
            return;
        }
        match request {
            Request::Ping { token } => self.push(conn, Event::Pong { token }, Class::Control),
            Request::Pong { .. } => {}
            Request::Hello { version } => self.hello(conn, version),
            Request::Register {
                reference,
                user,
                password,
            } => self.register(now, conn, reference, user, password),
            Request::Login {
                reference,
                user,
                password,
                resume_after,
                roster,
            } => {
                let pending = PendingAuth::Login {
                    reference,
                    user,
                    resume_after,
                    roster,
                };
                self.login(now, conn, user, password, pending)
            }
            Request::Logout { reference } => self.logout(conn, reference),
            Request::RosterAck { version } => self.roster_ack(conn, version),
            Request::Group {
                reference,
                op,
                group,
            } => self.group_request(conn, reference, op, group),
            Request::GroupList { reference } => self.group_list(conn, reference),
            Request::Send {
                reference,
                target,
                body,
                kind,
                tags,
            } => self.send(now, conn, reference, target, (body, kind, tags), None),
            Request::History {
                reference,
                target,
                window,
                limit,
            } => self.history(conn, reference, target, window, limit),
            Request::HistoryTargets {
                reference,
                between,
                limit,
            } => self.history_targets(conn, reference, between, limit),
            v2 => self.dispatch_v2(now, conn, v2),
        }
    }

    /// Acts on an accepted request of protocol version 2.
    fn dispatch_v2(&mut self, now: Instant, conn: ConnId, request: Request<'_>) {
        match request {
            Request::Login2 {
                reference,
                user,
                credential,
                device,
                issue_token,
                resume,
                roster,
            } => {
                let pending = PendingAuth::Login2 {
                    reference,
                    user,
                    resume,
                    roster,
                };
                let device = device.map(|name| DeviceAsk { name, issue_token });
                self.login2(now, conn, user, credential, device, pending)
            }
            Request::Send2 {
                reference,
                client_id,
                target,
                body,
            } => self.send2(now, conn, reference, client_id, target, body),
            Request::Delivered { id } => self.delivered(conn, id),
            Request::MarkRead { target, id } => self.mark_read(conn, target, id),
            Request::Devices { reference } => self.list_devices(conn, reference),
            Request::RevokeDevice { reference, device } => {
                self.revoke_device(conn, reference, device)
            }
            Request::Moderate { reference, ask } => self.moderate(now, conn, reference, ask),
            Request::Delete {
                reference,
                id,
                reason,
            } => self.delete(conn, reference, id, reason),
            Request::Announce { reference, text } => self.announce_request(conn, reference, text),
            Request::BanAddress { reference, ask } => {
                self.ban_address_asked(now, conn, reference, ask)
            }
            Request::GroupModerate {
                reference,
                group,
                ask,
            } => self.group_moderate(conn, reference, group, ask),
            other => unreachable!(
                "dispatch passes only version 2 requests, not {}",
                other.name()
            ),
        }
    }

    /// Refuses a request the session's state does not take.
    fn out_of_place(&mut self, conn: ConnId, reference: Ref, request: &'static str) {
        let Some(phase) = self.sessions.get(conn).map(|s| s.phase().name()) else {
            return;
        };
        self.refuse(
            conn,
            reference,
            ProtocolError::WrongState { request, phase },
        );
    }
}
