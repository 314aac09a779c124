//! Version 2 requests on a [`Connection`]: device logins, the device list,
//! and settling the outbox (resent SEND2s) after a reconnect.

use std::time::{Duration, Instant};

use confab_engine::frame::DeviceInfo;
use confab_engine::{MessageId, Name, Target, Token};

use super::{Ack, Connection, ConnectionError};
use crate::session::{Event, Login2Options, Outbox, Phase, Request};

/// What LOGIN_OK2 said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceLogin {
    /// The account as registered.
    pub user: Name,
    /// The session's device.
    pub device: Option<Name>,
    /// The new token, if one was asked for: store it, it is shown once.
    pub token: Option<Token>,
    /// The device's bookmark on the server.
    pub bookmark: MessageId,
}

impl Connection {
    /// Logs in by password as `device`, asking for a token with
    /// `issue_token`; with the roster, waits for its snapshot too.
    pub fn login_device(
        &mut self,
        user: Name,
        password: &str,
        device: Name,
        issue_token: bool,
        options: Login2Options,
        timeout: Duration,
    ) -> Result<DeviceLogin, ConnectionError> {
        let r = self
            .session
            .login_device(user, password, device, issue_token, options)?;
        self.finish_login2(r, timeout)
    }

    /// Logs in by a device token (`options.resume` usually
    /// [`confab_engine::frame::Resume::Device`]: what the device missed).
    pub fn login_token(
        &mut self,
        user: Name,
        token: &Token,
        options: Login2Options,
        timeout: Duration,
    ) -> Result<DeviceLogin, ConnectionError> {
        let r = self.session.login_token(user, token, options)?;
        self.finish_login2(r, timeout)
    }

    fn finish_login2(
        &mut self,
        r: confab_engine::Ref,
        timeout: Duration,
    ) -> Result<DeviceLogin, ConnectionError> {
        let start = Instant::now();
        let user = match self.answer(r, "answer to LOGIN2", timeout)? {
            Event::LoginOk { user, .. } => user,
            _ => return Err(ConnectionError::Closed),
        };
        // The token also stays in the backlog as an event; take it out so
        // that nothing prints it by accident.
        self.backlog
            .retain(|e| !matches!(e, Event::TokenIssued { .. }));
        let rest = timeout.saturating_sub(start.elapsed());
        self.wait_until("roster snapshot", rest, |s| s.phase() != Phase::RosterSync)?;
        Ok(DeviceLogin {
            user,
            device: self.session.device(),
            token: self.session.issued_token(),
            bookmark: self.session.bookmark(),
        })
    }

    /// Lists the user's devices.
    pub fn device_list(&mut self, timeout: Duration) -> Result<Vec<DeviceInfo>, ConnectionError> {
        let r = self.session.device_list()?;
        match self.answer(r, "DEVICE_LIST", timeout)? {
            Event::DeviceList { devices, .. } => Ok(devices),
            _ => Err(ConnectionError::Closed),
        }
    }

    /// Revokes one of the user's devices.
    pub fn device_revoke(
        &mut self,
        device: Name,
        timeout: Duration,
    ) -> Result<(), ConnectionError> {
        let r = self.session.device_revoke(device)?;
        self.answer(r, "answer to DEVICE_REVOKE", timeout)
            .map(|_| ())
    }

    /// A server operator's MODERATE of `user`, waiting for its OK.
    pub fn moderate(
        &mut self,
        action: confab_engine::frame::ModAction,
        user: Name,
        seconds: u32,
        reason: &str,
        timeout: Duration,
    ) -> Result<(), ConnectionError> {
        let r = self.session.moderate(action, user, seconds, reason)?;
        self.answer(r, "answer to MODERATE", timeout).map(|_| ())
    }

    /// A server operator's DELETE of message `id`, waiting for its OK.
    pub fn delete(
        &mut self,
        id: MessageId,
        reason: &str,
        timeout: Duration,
    ) -> Result<(), ConnectionError> {
        let r = self.session.delete(id, reason)?;
        self.answer(r, "answer to DELETE", timeout).map(|_| ())
    }

    /// A group owner's or moderator's GROUP_MODERATE, waiting for its OK.
    pub fn group_moderate(
        &mut self,
        group: Name,
        action: confab_engine::frame::GroupAction,
        user: Name,
        seconds: u32,
        reason: &str,
        timeout: Duration,
    ) -> Result<(), ConnectionError> {
        let r = self
            .session
            .group_moderate(group, action, user, seconds, reason)?;
        self.answer(r, "answer to GROUP_MODERATE", timeout)
            .map(|_| ())
    }

    /// A server operator's BAN_ADDRESS (or its lifting), waiting for its OK.
    pub fn ban_address(
        &mut self,
        block: &str,
        lift: bool,
        seconds: u32,
        reason: &str,
        timeout: Duration,
    ) -> Result<(), ConnectionError> {
        let r = self.session.ban_address(block, lift, seconds, reason)?;
        self.answer(r, "answer to BAN_ADDRESS", timeout).map(|_| ())
    }

    /// A server operator's ANNOUNCE, waiting for its OK.
    pub fn announce(&mut self, text: &str, timeout: Duration) -> Result<(), ConnectionError> {
        let r = self.session.announce(text)?;
        self.answer(r, "answer to ANNOUNCE", timeout).map(|_| ())
    }

    /// Marks a conversation read up to `id`.
    pub fn mark_read(&mut self, target: Target, id: MessageId) -> Result<(), ConnectionError> {
        self.session.mark_read(target, id)?;
        self.flush()
    }

    /// The unacknowledged sends (and the client id counter) for the next
    /// connection: see [`crate::Session::take_outbox`].
    pub fn take_outbox(&mut self) -> Outbox {
        self.session.take_outbox()
    }

    /// Takes over an earlier connection's outbox: its sends go out again,
    /// with their client ids, once this session has caught up.
    pub fn adopt_outbox(&mut self, outbox: Outbox) -> Result<(), ConnectionError> {
        self.session.adopt_outbox(outbox);
        self.flush()
    }

    /// Waits until the server has answered every send in the outbox
    /// (after [`Connection::adopt_outbox`] and a login); returns their ACKs,
    /// taken from the events, or the first refusal.
    pub fn settle_outbox(&mut self, timeout: Duration) -> Result<Vec<Ack>, ConnectionError> {
        self.wait_until("ACK of every resent message", timeout, |s| {
            s.is_caught_up() && s.outbox().is_empty()
        })?;
        let mut acks = Vec::new();
        let mut refused = None;
        self.backlog.retain(|e| match e {
            Event::Ack {
                id, timestamp_ms, ..
            } => {
                acks.push(Ack {
                    id: *id,
                    timestamp_ms: *timestamp_ms,
                });
                false
            }
            Event::Error(err) if matches!(err.request, Some(Request::Send { .. })) => {
                refused.get_or_insert_with(|| err.clone());
                false
            }
            _ => true,
        });
        match refused {
            Some(e) => Err(ConnectionError::Refused(e)),
            None => Ok(acks),
        }
    }
}
