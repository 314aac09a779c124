//! Devices (protocol version 2): a session logged in as a device, the
//! device's bookmark on the server, its list and its revocation.
//!
//! A device's bookmark is the newest id it acknowledged with DELIVERED.
//! The hub keeps, per device with a session or a write in flight, what is
//! stored and what is wanted, and writes at most one bookmark at a time
//! per device: a client acknowledging every message costs one write per
//! storage round trip, not one per message. A LOGOUT of a device session
//! writes the bookmark and answers OK once it is stored, so "logged out"
//! means "its place is saved". The map holds only devices with a session
//! or a write in flight.

use std::collections::HashMap;

use crate::device::DeviceId;
use crate::effect::{DeviceRecord, Effect};
use crate::error::ProtocolError;
use crate::event::Event;
use crate::id::{ConnId, MessageId, Ref};
use crate::send_queue::Class;
use crate::session::CloseReason;
use crate::wire::frame::DeviceInfo;

use super::Hub;

/// What the hub keeps of one device (see the module docs).
#[derive(Debug, Default)]
pub(super) struct DeviceState {
    /// Its sessions on this node.
    conns: Vec<ConnId>,
    /// The bookmark storage has.
    saved: MessageId,
    /// The newest id its sessions acknowledged.
    wanted: MessageId,
    /// A bookmark write (not a LOGOUT's) is in flight.
    writing: bool,
}

/// Every device with a session on this node (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Devices {
    map: HashMap<DeviceId, DeviceState>,
}

impl Devices {
    /// `conn` logged in as `device`, whose stored bookmark is `bookmark`.
    pub(super) fn attach(&mut self, device: DeviceId, conn: ConnId, bookmark: MessageId) {
        let d = self.map.entry(device).or_default();
        d.conns.push(conn);
        d.saved = d.saved.max(bookmark);
        d.wanted = d.wanted.max(bookmark);
    }

    /// The sessions of `device`.
    pub(super) fn sessions(&self, device: DeviceId) -> Vec<ConnId> {
        self.map
            .get(&device)
            .map_or(Vec::new(), |d| d.conns.clone())
    }

    /// The next bookmark write for `device`, if one is due and none is in
    /// flight; marks it in flight.
    fn next_write(&mut self, device: DeviceId) -> Option<MessageId> {
        let d = self.map.get_mut(&device)?;
        if d.writing || d.wanted <= d.saved {
            return None;
        }
        d.writing = true;
        Some(d.wanted)
    }

    /// Forgets a device without sessions or writes.
    fn tidy(&mut self, device: DeviceId) {
        if self
            .map
            .get(&device)
            .is_some_and(|d| d.conns.is_empty() && !d.writing && d.wanted <= d.saved)
        {
            self.map.remove(&device);
        }
    }

    /// How many devices are held (for tests of the bound).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

impl Hub {
    /// The device `conn` is logged in as, or `NO_DEVICE` for `request`.
    fn device_of(&self, conn: ConnId, request: &'static str) -> Result<DeviceId, ProtocolError> {
        self.sessions
            .get(conn)
            .and_then(|s| s.logged_in())
            .and_then(|l| l.device)
            .ok_or(ProtocolError::NoDevice { request })
    }

    /// DELIVERED: the device has every message up to `id` (never more
    /// than was committed: a client cannot skip what it has not seen).
    pub(super) fn delivered(&mut self, conn: ConnId, id: MessageId) {
        let device = match self.device_of(conn, "DELIVERED") {
            Ok(d) => d,
            Err(e) => return self.refuse(conn, Ref(0), e),
        };
        let id = id.min(self.last_id);
        if let Some(d) = self.devices.map.get_mut(&device) {
            d.wanted = d.wanted.max(id);
        }
        self.write_bookmark(device);
    }

    /// A device that never acknowledged anything starts at this login:
    /// its bookmark becomes the newest id committed now (it is sent only
    /// what follows, as a fresh client is), so that a device that never
    /// sends DELIVERED (a bot that only sends) still resumes where it
    /// first came in rather than from nothing.
    pub(super) fn place_new_device(&mut self, device: DeviceId, bookmark: MessageId) {
        if bookmark != MessageId(0) {
            return;
        }
        let now = self.last_id;
        if let Some(d) = self.devices.map.get_mut(&device) {
            d.wanted = d.wanted.max(now);
        }
        self.write_bookmark(device);
    }

    fn write_bookmark(&mut self, device: DeviceId) {
        if let Some(upto) = self.devices.next_write(device) {
            self.outbox.effect(Effect::SaveBookmark {
                device,
                upto,
                logout: None,
            });
        }
    }

    /// LOGOUT: a device session's OK waits for its bookmark to be stored.
    pub(super) fn logout(&mut self, conn: ConnId, reference: Ref) {
        let device = self.device_of(conn, "LOGOUT").ok();
        let wanted = device
            .and_then(|d| self.devices.map.get(&d))
            .map(|d| d.wanted);
        match (device, wanted) {
            (Some(device), Some(upto)) if self.begin_request(conn, reference) => {
                self.outbox.effect(Effect::SaveBookmark {
                    device,
                    upto,
                    logout: Some((conn, reference)),
                });
            }
            (Some(_), Some(_)) => {}
            _ => {
                self.push(conn, Event::Ok { reference }, Class::Control);
                self.close(conn, CloseReason::Logout);
            }
        }
    }

    pub(super) fn bookmark_saved(
        &mut self,
        device: DeviceId,
        upto: MessageId,
        logout: Option<(ConnId, Ref)>,
        saved: bool,
    ) {
        if let Some(d) = self.devices.map.get_mut(&device) {
            if saved {
                d.saved = d.saved.max(upto);
            }
            if logout.is_none() {
                d.writing = false;
            }
        }
        if let Some((conn, reference)) = logout {
            self.end_request(conn);
            self.push(conn, Event::Ok { reference }, Class::Control);
            self.close(conn, CloseReason::Logout);
        }
        // A failed write is not retried at once (storage is failing);
        // the next DELIVERED or the session's end tries again.
        if saved {
            self.write_bookmark(device);
        }
        self.devices.tidy(device);
    }

    /// A device session left: its last acknowledgement is written, and the
    /// device forgotten once it has no session and nothing in flight.
    pub(super) fn device_left(&mut self, conn: ConnId, device: DeviceId) {
        if let Some(d) = self.devices.map.get_mut(&device) {
            d.conns.retain(|c| *c != conn);
        }
        self.write_bookmark(device);
        self.devices.tidy(device);
    }

    pub(super) fn list_devices(&mut self, conn: ConnId, reference: Ref) {
        let Some(user) = self.user(conn) else { return };
        if self.begin_request(conn, reference) {
            self.outbox.effect(Effect::ListDevices {
                conn,
                reference,
                user,
            });
        }
    }

    pub(super) fn devices_loaded(
        &mut self,
        conn: ConnId,
        reference: Ref,
        result: Result<Vec<DeviceRecord>, ProtocolError>,
    ) {
        self.end_request(conn);
        let current = self.device_of(conn, "DEVICE_LIST_REQUEST").ok();
        match result {
            Ok(records) => {
                let devices = records
                    .iter()
                    .map(|r| DeviceInfo {
                        name: r.name,
                        created_ms: r.created_ms,
                        last_seen_ms: r.last_seen_ms,
                        current: Some(r.id) == current,
                    })
                    .collect();
                let list = Event::DeviceList { reference, devices };
                self.push(conn, list, Class::Bulk);
            }
            Err(e) => self.refuse(conn, reference, e),
        }
    }

    pub(super) fn revoke_device(&mut self, conn: ConnId, reference: Ref, device: crate::Name) {
        let Some(user) = self.user(conn) else { return };
        if self.begin_request(conn, reference) {
            self.outbox.effect(Effect::RevokeDevice {
                conn,
                reference,
                user,
                device,
            });
        }
    }

    pub(super) fn device_revoked(
        &mut self,
        conn: ConnId,
        reference: Ref,
        result: Result<DeviceId, ProtocolError>,
    ) {
        self.end_request(conn);
        match result {
            Ok(device) => {
                self.push(conn, Event::Ok { reference }, Class::Control);
                self.handle_device_revoked(device);
                self.tell_nodes(crate::remote::Remote::DeviceRevoked(device));
            }
            Err(e) => self.refuse(conn, reference, e),
        }
    }

    /// A device was revoked (by its owner here, or by the operator or
    /// another node): its sessions on this node are closed with
    /// `DEVICE_REVOKED`, and its bookmark is not written again. Returns
    /// how many sessions were closed.
    pub fn handle_device_revoked(&mut self, device: DeviceId) -> usize {
        let conns = self.devices.sessions(device);
        self.devices.map.remove(&device);
        for &c in &conns {
            self.fatal(c, Ref(0), ProtocolError::DeviceRevoked);
        }
        self.finish();
        conns.len()
    }
}
