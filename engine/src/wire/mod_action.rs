//! The `action` byte of MODERATE (docs/PROTOCOL.md, "Moderation").

/// What a MODERATE asks (its `action` byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ModAction {
    /// 0: close the account's sessions (ERROR KICKED).
    Kick,
    /// 1: close them and refuse logins (ERROR BANNED) for `seconds`.
    Ban,
    /// 2: lift a ban.
    Unban,
    /// 3: refuse the account's SENDs (ERROR MUTED) for `seconds`.
    Mute,
    /// 4: lift a mute.
    Unmute,
}

impl ModAction {
    /// The action's byte.
    pub fn to_u8(self) -> u8 {
        match self {
            ModAction::Kick => 0,
            ModAction::Ban => 1,
            ModAction::Unban => 2,
            ModAction::Mute => 3,
            ModAction::Unmute => 4,
        }
    }

    /// The action of a byte, if it names one.
    pub fn from_u8(b: u8) -> Option<ModAction> {
        Some(match b {
            0 => ModAction::Kick,
            1 => ModAction::Ban,
            2 => ModAction::Unban,
            3 => ModAction::Mute,
            4 => ModAction::Unmute,
            _ => return None,
        })
    }

    /// Its name in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            ModAction::Kick => "kick",
            ModAction::Ban => "ban",
            ModAction::Unban => "unban",
            ModAction::Mute => "mute",
            ModAction::Unmute => "unmute",
        }
    }
}
