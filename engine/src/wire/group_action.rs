//! The `action` byte of GROUP_MODERATE (docs/PROTOCOL.md, "Group roles").

/// What a GROUP_MODERATE asks (its `action` byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum GroupAction {
    /// 0: take the user out of the group (the owner, a moderator or a
    /// server operator).
    Remove,
    /// 1: refuse the user's messages to the group for `seconds`.
    Mute,
    /// 2: lift that.
    Unmute,
    /// 3: make a member a moderator of the group (the owner or a server
    /// operator).
    Appoint,
    /// 4: take that back.
    Dismiss,
}

impl GroupAction {
    /// The action's byte.
    pub fn to_u8(self) -> u8 {
        match self {
            GroupAction::Remove => 0,
            GroupAction::Mute => 1,
            GroupAction::Unmute => 2,
            GroupAction::Appoint => 3,
            GroupAction::Dismiss => 4,
        }
    }

    /// The action of a byte, if it names one.
    pub fn from_u8(b: u8) -> Option<GroupAction> {
        Some(match b {
            0 => GroupAction::Remove,
            1 => GroupAction::Mute,
            2 => GroupAction::Unmute,
            3 => GroupAction::Appoint,
            4 => GroupAction::Dismiss,
            _ => return None,
        })
    }

    /// Its name in the audit log and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupAction::Remove => "group-remove",
            GroupAction::Mute => "group-mute",
            GroupAction::Unmute => "group-unmute",
            GroupAction::Appoint => "group-appoint",
            GroupAction::Dismiss => "group-dismiss",
        }
    }
}
