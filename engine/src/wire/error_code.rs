//! The error codes of the ERROR frame (docs/PROTOCOL.md, "Error codes").

/// Error codes of the ERROR frame. The numeric values are part of the wire
/// protocol; docs/PROTOCOL.md has the table with which ones close the
/// connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame could not be parsed. Fatal.
    MalformedFrame,
    /// The length field exceeds the limit. Fatal.
    FrameTooLarge,
    /// The client speaks a protocol version the server does not. Fatal.
    UnsupportedVersion,
    /// The frame is not accepted in the session's current state.
    WrongState,
    /// The frame type is unknown. The frame is skipped.
    UnknownFrameType,
    /// The user name or password is wrong.
    BadCredentials,
    /// The name is already registered (ignoring case).
    NameTaken,
    /// Registration is closed on this server.
    RegistrationClosed,
    /// Too many failed logins; retry after the given delay.
    LockedOut,
    /// The request needs a session logged in with a device (v2).
    NoDevice,
    /// The account has as many devices as allowed (v2).
    TooManyDevices,
    /// No such user.
    NoSuchUser,
    /// No such group.
    NoSuchGroup,
    /// A group of that name already exists.
    GroupExists,
    /// The user is not a member of the group.
    NotAMember,
    /// The user is already a member of the group.
    AlreadyMember,
    /// The user belongs to as many groups as allowed.
    TooManyGroups,
    /// The group has as many members as allowed.
    GroupFull,
    /// The body is empty or longer than the announced limit.
    BadBody,
    /// No device of that name (v2).
    NoSuchDevice,
    /// The server has as many groups as it allows (`max_groups`); a
    /// GROUP_CREATE cannot succeed however long the client waits.
    ServerGroupsFull,
    /// The session sends faster than allowed; slow down and retry after the delay.
    RateLimited,
    /// The server cannot take the request now; retry after the delay.
    Busy,
    /// The server (or this source address) has as many connections as allowed. Fatal.
    TooManyConnections,
    /// Not logged in within the auth timeout. Fatal.
    AuthTimeout,
    /// No answer to the server's ping. Fatal.
    IdleTimeout,
    /// A frame was started but not finished in time. Fatal.
    FrameTimeout,
    /// The session did not read its traffic and its queue overflowed. Fatal.
    SlowConsumer,
    /// The session kept sending faster than allowed after being told. Fatal.
    Flooding,
    /// The session's device was revoked (v2). Fatal.
    DeviceRevoked,
    /// The server failed to store or load data.
    StorageError,
    /// An operator closed the session; the text is their reason. Fatal.
    Kicked,
    /// The account is banned; the text says why, `retry_after_ms` how
    /// long (0: for good). Fatal.
    Banned,
    /// The sender is muted; SENDs are refused until `retry_after_ms`
    /// passes (0: until an operator lifts it).
    Muted,
    /// A MODERATE from a session that is not a server operator's (v2).
    NotOperator,
    /// A DELETE names a message that is not stored (v2).
    NoSuchMessage,
    /// A GROUP_MODERATE without the group role it takes (v2).
    NotGroupModerator,
    /// A BAN_ADDRESS block that is not an address or a CIDR block (v2).
    BadAddress,
    /// A code this implementation does not know (kept for forward compatibility).
    Other(u16),
}

impl ErrorCode {
    /// The code's number on the wire.
    pub fn to_u16(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedFrame => 1,
            FrameTooLarge => 2,
            UnsupportedVersion => 3,
            WrongState => 4,
            UnknownFrameType => 5,
            BadCredentials => 10,
            NameTaken => 11,
            RegistrationClosed => 12,
            LockedOut => 13,
            NoDevice => 14,
            TooManyDevices => 15,
            NoSuchUser => 20,
            NoSuchGroup => 21,
            GroupExists => 22,
            NotAMember => 23,
            AlreadyMember => 24,
            TooManyGroups => 25,
            GroupFull => 26,
            BadBody => 27,
            NoSuchDevice => 29,
            ServerGroupsFull => 28,
            RateLimited => 30,
            Busy => 31,
            TooManyConnections => 32,
            AuthTimeout => 33,
            IdleTimeout => 34,
            FrameTimeout => 35,
            SlowConsumer => 36,
            Flooding => 37,
            DeviceRevoked => 38,
            StorageError => 40,
            Kicked => 41,
            Banned => 42,
            Muted => 43,
            NotOperator => 44,
            NoSuchMessage => 45,
            NotGroupModerator => 46,
            BadAddress => 47,
            Other(n) => n,
        }
    }

    /// The code for a number on the wire.
    pub fn from_u16(n: u16) -> ErrorCode {
        use ErrorCode::*;
        match n {
            1 => MalformedFrame,
            2 => FrameTooLarge,
            3 => UnsupportedVersion,
            4 => WrongState,
            5 => UnknownFrameType,
            10 => BadCredentials,
            11 => NameTaken,
            12 => RegistrationClosed,
            13 => LockedOut,
            14 => NoDevice,
            15 => TooManyDevices,
            20 => NoSuchUser,
            21 => NoSuchGroup,
            22 => GroupExists,
            23 => NotAMember,
            24 => AlreadyMember,
            25 => TooManyGroups,
            26 => GroupFull,
            27 => BadBody,
            29 => NoSuchDevice,
            28 => ServerGroupsFull,
            30 => RateLimited,
            31 => Busy,
            32 => TooManyConnections,
            33 => AuthTimeout,
            34 => IdleTimeout,
            35 => FrameTimeout,
            36 => SlowConsumer,
            37 => Flooding,
            38 => DeviceRevoked,
            40 => StorageError,
            41 => Kicked,
            42 => Banned,
            43 => Muted,
            44 => NotOperator,
            45 => NoSuchMessage,
            46 => NotGroupModerator,
            47 => BadAddress,
            n => Other(n),
        }
    }

    /// Whether the server closes the connection after sending this error.
    pub fn is_fatal(self) -> bool {
        use ErrorCode::*;
        matches!(
            self,
            MalformedFrame
                | FrameTooLarge
                | UnsupportedVersion
                | TooManyConnections
                | AuthTimeout
                | IdleTimeout
                | FrameTimeout
                | SlowConsumer
                | Flooding
                | DeviceRevoked
                | Kicked
                | Banned
        )
    }
}
