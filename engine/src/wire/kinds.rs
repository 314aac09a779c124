//! The frame type bytes, and each one's name as docs/PROTOCOL.md spells
//! it, for errors and logs (`UNKNOWN` for a byte no frame has).

/// The frame type byte of each frame.
pub mod kind {
    #![allow(missing_docs)]
    pub const PING: u8 = 0x01;
    pub const PONG: u8 = 0x02;
    pub const HELLO: u8 = 0x10;
    pub const REGISTER: u8 = 0x11;
    pub const LOGIN: u8 = 0x12;
    pub const LOGOUT: u8 = 0x13;
    pub const ROSTER_ACK: u8 = 0x14;
    pub const GROUP_CREATE: u8 = 0x15;
    pub const GROUP_JOIN: u8 = 0x16;
    pub const GROUP_LEAVE: u8 = 0x17;
    pub const GROUP_LIST_REQUEST: u8 = 0x18;
    pub const SEND: u8 = 0x19;
    pub const HISTORY_REQUEST: u8 = 0x1A;
    pub const LOGIN2: u8 = 0x1B;
    pub const SEND2: u8 = 0x1C;
    pub const DELIVERED: u8 = 0x1D;
    pub const MARK_READ: u8 = 0x1E;
    pub const DEVICE_LIST_REQUEST: u8 = 0x1F;
    pub const DEVICE_REVOKE: u8 = 0x20;
    pub const MODERATE: u8 = 0x21;
    pub const DELETE: u8 = 0x22;
    pub const ANNOUNCE: u8 = 0x23;
    pub const GROUP_MODERATE: u8 = 0x24;
    pub const BAN_ADDRESS: u8 = 0x25;
    pub const SERVER_HELLO: u8 = 0x40;
    pub const OK: u8 = 0x41;
    pub const LOGIN_OK: u8 = 0x42;
    pub const ROSTER_SNAPSHOT: u8 = 0x43;
    pub const ROSTER_DELTA: u8 = 0x44;
    pub const ACK: u8 = 0x45;
    pub const MESSAGE: u8 = 0x46;
    pub const GROUP_EVENT: u8 = 0x47;
    pub const GROUP_LIST: u8 = 0x48;
    pub const HISTORY_PAGE: u8 = 0x49;
    pub const CAUGHT_UP: u8 = 0x4A;
    pub const MISSED: u8 = 0x4B;
    pub const ERROR: u8 = 0x4C;
    pub const SHUTDOWN: u8 = 0x4D;
    pub const LOGIN_OK2: u8 = 0x4E;
    pub const READ_MARKER: u8 = 0x4F;
    pub const DEVICE_LIST: u8 = 0x50;
    pub const DELETED: u8 = 0x51;
    pub const NOTICE: u8 = 0x52;
}

/// The protocol name of a frame type byte.
pub fn kind_name(k: u8) -> &'static str {
    use kind::*;
    match k {
        PING => "PING",
        PONG => "PONG",
        HELLO => "HELLO",
        REGISTER => "REGISTER",
        LOGIN => "LOGIN",
        LOGOUT => "LOGOUT",
        ROSTER_ACK => "ROSTER_ACK",
        GROUP_CREATE => "GROUP_CREATE",
        GROUP_JOIN => "GROUP_JOIN",
        GROUP_LEAVE => "GROUP_LEAVE",
        GROUP_LIST_REQUEST => "GROUP_LIST_REQUEST",
        SEND => "SEND",
        HISTORY_REQUEST => "HISTORY_REQUEST",
        SERVER_HELLO => "SERVER_HELLO",
        OK => "OK",
        LOGIN_OK => "LOGIN_OK",
        ROSTER_SNAPSHOT => "ROSTER_SNAPSHOT",
        ROSTER_DELTA => "ROSTER_DELTA",
        ACK => "ACK",
        MESSAGE => "MESSAGE",
        GROUP_EVENT => "GROUP_EVENT",
        GROUP_LIST => "GROUP_LIST",
        HISTORY_PAGE => "HISTORY_PAGE",
        CAUGHT_UP => "CAUGHT_UP",
        MISSED => "MISSED",
        ERROR => "ERROR",
        SHUTDOWN => "SHUTDOWN",
        LOGIN2 => "LOGIN2",
        SEND2 => "SEND2",
        DELIVERED => "DELIVERED",
        MARK_READ => "MARK_READ",
        DEVICE_LIST_REQUEST => "DEVICE_LIST_REQUEST",
        DEVICE_REVOKE => "DEVICE_REVOKE",
        MODERATE => "MODERATE",
        LOGIN_OK2 => "LOGIN_OK2",
        READ_MARKER => "READ_MARKER",
        DEVICE_LIST => "DEVICE_LIST",
        DELETE => "DELETE",
        ANNOUNCE => "ANNOUNCE",
        GROUP_MODERATE => "GROUP_MODERATE",
        BAN_ADDRESS => "BAN_ADDRESS",
        DELETED => "DELETED",
        NOTICE => "NOTICE",
        _ => "UNKNOWN",
    }
}
