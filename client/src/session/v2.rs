//! Protocol version 2 on the client session: LOGIN2 by password (naming a
//! device, optionally issuing a token) or by token, SEND2 with client ids
//! and their resend after a reconnect, DELIVERED, read markers and the
//! device list (docs/PROTOCOL.md, "Version 2").

use std::time::{Duration, Instant};

use confab_engine::frame::{Credential, Frame, Resume, Text};
use confab_engine::{MessageId, Name, Ref, Target, Token};

use super::outbox::Outbox;
use super::{password_text, ApiMisuse, Event, LoggedIn, Request, Session, State};

/// A DELIVERED goes out at the latest after this many new messages...
pub const DELIVERED_EVERY: u32 = 100;
/// ... or once the messages have waited this long (see [`Session::tick`]).
pub const DELIVERED_DELAY: Duration = Duration::from_secs(1);

/// Options of LOGIN2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Login2Options {
    /// What to replay: after an id, or (the default) after the device's
    /// bookmark on the server.
    pub resume: Resume,
    /// Whether to subscribe to presence.
    pub roster: bool,
}

impl Default for Login2Options {
    fn default() -> Login2Options {
        Login2Options {
            resume: Resume::Device,
            roster: true,
        }
    }
}

/// The device side of a version 2 session.
#[derive(Debug, Default)]
pub(super) struct DeviceState {
    /// The session's device, from LOGIN_OK2.
    pub(super) device: Option<Name>,
    /// The device's bookmark, from LOGIN_OK2.
    pub(super) bookmark: MessageId,
    /// The token LOGIN_OK2 issued, if it issued one.
    pub(super) issued: Option<Token>,
    /// Whether CAUGHT_UP arrived.
    pub(super) caught_up: bool,
    /// The newest id sent in a DELIVERED.
    pub(super) delivered: MessageId,
    /// Messages received since that DELIVERED.
    pub(super) undelivered: u32,
    /// When [`Session::tick`] first saw them waiting.
    pub(super) waiting_since: Option<Instant>,
    /// Send a DELIVERED at the end of this input (CAUGHT_UP arrived).
    pub(super) deliver_now: bool,
}

impl Session {
    /// Logs in with a password as `device` (created at its first login),
    /// with `issue_token` asking for a new token, shown once in
    /// [`Event::TokenIssued`] (and [`Session::issued_token`]). Answered by
    /// [`Event::LoginOk`], then as [`Session::login`].
    pub fn login_device(
        &mut self,
        user: Name,
        password: &str,
        device: Name,
        issue_token: bool,
        options: Login2Options,
    ) -> Result<Ref, ApiMisuse> {
        self.check_auth()?;
        let password = password_text(password)?;
        let reference = self.login2_request(user, options.roster);
        self.queue(&Frame::Login2 {
            reference,
            user,
            credential: Credential::Password(password),
            device: Some(device),
            issue_token,
            resume: options.resume,
            roster: options.roster,
        });
        Ok(reference)
    }

    /// Logs in with a device token (the token names the device). A wrong,
    /// revoked or expired token is refused with `BAD_CREDENTIALS`.
    pub fn login_token(
        &mut self,
        user: Name,
        token: &Token,
        options: Login2Options,
    ) -> Result<Ref, ApiMisuse> {
        self.check_auth()?;
        let reference = self.login2_request(user, options.roster);
        self.queue(&Frame::Login2 {
            reference,
            user,
            credential: Credential::Token(&token.0),
            device: None,
            issue_token: false,
            resume: options.resume,
            roster: options.roster,
        });
        Ok(reference)
    }

    fn login2_request(&mut self, user: Name, roster: bool) -> Ref {
        self.request(Request::Login2 { user, roster })
    }

    /// The session's device, once logged in as one.
    pub fn device(&self) -> Option<Name> {
        self.v2.device
    }

    /// The device's bookmark on the server when this session logged in.
    pub fn bookmark(&self) -> MessageId {
        self.v2.bookmark
    }

    /// The token LOGIN_OK2 issued to this session, if it asked for one.
    pub fn issued_token(&self) -> Option<Token> {
        self.v2.issued
    }

    /// Whether CAUGHT_UP has arrived.
    pub fn is_caught_up(&self) -> bool {
        self.v2.caught_up
    }

    /// Marks a conversation read up to `id`; the user's other sessions get
    /// [`Event::ReadMarker`]. No answer unless refused.
    pub fn mark_read(&mut self, target: Target, id: MessageId) -> Result<(), ApiMisuse> {
        self.check_messaging()?;
        self.queue(&Frame::MarkRead { target, id });
        Ok(())
    }

    /// Lists the user's devices. Answered by [`Event::DeviceList`].
    pub fn device_list(&mut self) -> Result<Ref, ApiMisuse> {
        self.check_messaging()?;
        let reference = self.request(Request::DeviceList);
        self.queue(&Frame::DeviceListRequest { reference });
        Ok(reference)
    }

    /// Revokes one of the user's devices. Answered by [`Event::Ok`]; every
    /// session of that device is closed with `DEVICE_REVOKED`.
    pub fn device_revoke(&mut self, device: Name) -> Result<Ref, ApiMisuse> {
        self.check_messaging()?;
        let reference = self.request(Request::DeviceRevoke { device });
        self.queue(&Frame::DeviceRevoke { reference, device });
        Ok(reference)
    }

    /// A server operator's MODERATE of `user` (see PROTOCOL.md,
    /// "Moderation"). Answered by [`Event::Ok`], or an error
    /// (`NOT_OPERATOR` for anyone else).
    pub fn moderate(
        &mut self,
        action: confab_engine::frame::ModAction,
        user: Name,
        seconds: u32,
        reason: &str,
    ) -> Result<Ref, ApiMisuse> {
        self.check_messaging()?;
        let reason = Text::new(reason).map_err(|e| ApiMisuse::BodyTooLong {
            len: e.0,
            max: Text::MAX_LEN,
        })?;
        let reference = self.request(Request::Moderate { action, user });
        self.queue(&Frame::Moderate {
            reference,
            action,
            user,
            seconds,
            reason,
        });
        Ok(reference)
    }

    /// A server operator's DELETE of message `id`, answered by
    /// [`Event::Ok`] (and, to everyone who saw it, [`Event::Deleted`]).
    pub fn delete(&mut self, id: MessageId, reason: &str) -> Result<Ref, ApiMisuse> {
        self.check_messaging()?;
        let reason = Text::new(reason).map_err(|e| ApiMisuse::BodyTooLong {
            len: e.0,
            max: Text::MAX_LEN,
        })?;
        let reference = self.request(Request::Delete { id });
        self.queue(&Frame::Delete {
            reference,
            id,
            reason,
        });
        Ok(reference)
    }

    /// A group owner's or moderator's GROUP_MODERATE (see PROTOCOL.md,
    /// "Group roles"), answered by [`Event::Ok`] or an error.
    pub fn group_moderate(
        &mut self,
        group: Name,
        action: confab_engine::frame::GroupAction,
        user: Name,
        seconds: u32,
        reason: &str,
    ) -> Result<Ref, ApiMisuse> {
        self.check_messaging()?;
        let reason = Text::new(reason).map_err(|e| ApiMisuse::BodyTooLong {
            len: e.0,
            max: Text::MAX_LEN,
        })?;
        let reference = self.request(Request::GroupModerate { group, user });
        self.queue(&Frame::GroupModerate {
            reference,
            group,
            action,
            user,
            seconds,
            reason,
        });
        Ok(reference)
    }

    /// A server operator's BAN_ADDRESS of `block` (an address or CIDR
    /// block, which the server parses), or its lifting; answered by
    /// [`Event::Ok`] or an error (BAD_ADDRESS, NOT_OPERATOR).
    pub fn ban_address(
        &mut self,
        block: &str,
        lift: bool,
        seconds: u32,
        reason: &str,
    ) -> Result<Ref, ApiMisuse> {
        self.check_messaging()?;
        let too_long = |e: confab_engine::frame::TextTooLong| ApiMisuse::BodyTooLong {
            len: e.0,
            max: Text::MAX_LEN,
        };
        let block = Text::new(block).map_err(too_long)?;
        let reason = Text::new(reason).map_err(too_long)?;
        let reference = self.request(Request::BanAddress);
        self.queue(&Frame::BanAddress {
            reference,
            lift,
            block,
            seconds,
            reason,
        });
        Ok(reference)
    }

    /// A server operator's ANNOUNCE: every session gets [`Event::Notice`].
    pub fn announce(&mut self, text: &str) -> Result<Ref, ApiMisuse> {
        self.check_messaging()?;
        let text = Text::new(text).map_err(|e| ApiMisuse::BodyTooLong {
            len: e.0,
            max: Text::MAX_LEN,
        })?;
        let reference = self.request(Request::Announce);
        self.queue(&Frame::Announce { reference, text });
        Ok(reference)
    }

    /// The unacknowledged sends, the client id counter and the newest id
    /// seen, for the session that replaces this one after a reconnect.
    /// This session keeps an empty outbox with the same counter.
    pub fn take_outbox(&mut self) -> Outbox {
        let mut o = std::mem::replace(&mut self.outbox, Outbox::starting_at(0));
        self.outbox = Outbox::starting_at(o.next_client_id().0);
        o.seen = o.seen.max(self.last_id);
        o.forget_references();
        o
    }

    /// Takes over an earlier session's outbox: its sends go out again, with
    /// their client ids, once this session has caught up (at once if it
    /// has), and messages up to the newest id it had seen are not shown
    /// again. Call before or after logging in.
    pub fn adopt_outbox(&mut self, mut outbox: Outbox) {
        outbox.forget_references();
        self.last_id = self.last_id.max(outbox.seen);
        self.outbox = outbox;
        self.after_input();
    }

    /// The sends waiting for an ACK.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Lets the session send a DELIVERED for messages that have waited
    /// [`DELIVERED_DELAY`]: call now and then (after input, or at
    /// [`Session::next_tick`]), passing the current time.
    pub fn tick(&mut self, now: Instant) {
        if !self.wants_delivered() {
            self.v2.waiting_since = None;
            return;
        }
        match self.v2.waiting_since {
            None => self.v2.waiting_since = Some(now),
            Some(t) if now.saturating_duration_since(t) >= DELIVERED_DELAY => {
                self.queue_delivered();
            }
            Some(_) => {}
        }
    }

    /// When [`Session::tick`] has something to do, if anything waits.
    pub fn next_tick(&self) -> Option<Instant> {
        if !self.wants_delivered() {
            return None;
        }
        self.v2.waiting_since.map(|t| t + DELIVERED_DELAY)
    }

    fn wants_delivered(&self) -> bool {
        let logged_in = matches!(self.state, State::RosterSync(_) | State::Messaging(_));
        logged_in
            && self.v2.device.is_some()
            && self.v2.caught_up
            && self.last_id > self.v2.delivered
    }

    /// Sends DELIVERED for everything received, if anything is new.
    pub fn deliver_now(&mut self) {
        if self.wants_delivered() {
            self.queue_delivered();
        }
    }

    fn queue_delivered(&mut self) {
        let id = self.last_id;
        self.queue(&Frame::Delivered { id });
        self.v2.delivered = id;
        self.v2.undelivered = 0;
        self.v2.waiting_since = None;
    }

    /// A SEND2 of a new message, kept until its ACK.
    pub(super) fn send2(&mut self, target: Target, body: Text<'_>) -> Result<Ref, ApiMisuse> {
        if self.outbox.is_full() {
            return Err(ApiMisuse::OutboxFull);
        }
        let reference = self.request(Request::Send { target });
        let client_id = self.outbox.push(target, body.as_str(), reference);
        self.queue(&Frame::Send2 {
            reference,
            client_id,
            target,
            body,
        });
        Ok(reference)
    }

    /// What is due at the end of every input: resends once caught up, and
    /// a DELIVERED after CAUGHT_UP or a full batch.
    pub(super) fn after_input(&mut self) {
        if !(matches!(self.state, State::Messaging(_)) && self.v2.caught_up) {
            return;
        }
        let mut resends = Vec::new();
        for u in self.outbox.waiting() {
            resends.push((u.client_id, u.target, u.body.clone()));
        }
        for (client_id, target, body) in resends {
            let Ok(text) = Text::new(&body) else { continue };
            let reference = self.request(Request::Send { target });
            if let Some(u) = self.outbox.waiting().find(|u| u.client_id == client_id) {
                u.reference = Some(reference);
            }
            self.queue(&Frame::Send2 {
                reference,
                client_id,
                target,
                body: text,
            });
        }
        let due = self.v2.deliver_now || self.v2.undelivered >= DELIVERED_EVERY;
        if due && self.wants_delivered() {
            self.queue_delivered();
        }
        self.v2.deliver_now = false;
    }

    /// Handles a version 2 frame; hands any other frame back.
    pub(super) fn handle_v2_frame<'a>(&mut self, frame: Frame<'a>) -> Option<Frame<'a>> {
        match frame {
            Frame::LoginOk2 {
                reference,
                user,
                device,
                token,
                bookmark,
            } => self.login_ok2(reference, user, device, token, bookmark),
            Frame::ReadMarker { target, id } => self.push(Event::ReadMarker { target, id }),
            Frame::DeviceList { reference, devices } => {
                self.pending.remove(&reference);
                self.push(Event::DeviceList { reference, devices });
            }
            Frame::Deleted { id, by } => self.push(Event::Deleted { id, by }),
            Frame::Notice { text } => self.push(Event::Notice {
                text: text.as_str().to_owned(),
            }),
            other => return Some(other),
        }
        None
    }

    fn login_ok2(
        &mut self,
        reference: Ref,
        user: Name,
        device: Option<Name>,
        token: Option<Token>,
        bookmark: MessageId,
    ) {
        let roster = matches!(
            self.pending.remove(&reference),
            Some(Request::Login2 { roster: true, .. })
        );
        let l = LoggedIn { user };
        self.state = if roster {
            State::RosterSync(l)
        } else {
            State::Messaging(l)
        };
        self.v2.device = device;
        self.v2.bookmark = bookmark;
        self.v2.issued = token;
        self.push(Event::LoginOk { reference, user });
        if let (Some(device), Some(token)) = (device, token) {
            self.push(Event::TokenIssued { device, token });
        }
    }

    /// A MESSAGE arrived: whether to show it (its id is new).
    pub(super) fn message_is_new(&mut self, id: MessageId) -> bool {
        if id <= self.last_id {
            return false;
        }
        self.v2.undelivered = self.v2.undelivered.saturating_add(1);
        true
    }

    /// CAUGHT_UP arrived.
    pub(super) fn caught_up(&mut self) {
        self.v2.caught_up = true;
        self.v2.deliver_now = true;
    }
}
