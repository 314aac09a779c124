//! What storage records of an operator's moderation: the records behind
//! [`super::Effect::Moderate`], [`super::Effect::BanAddress`] and
//! [`super::Effect::Audit`], each also an audit line.

use crate::name::Name;

/// An operator's moderation, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModerationRecord {
    /// Who did it.
    pub actor: Name,
    /// What.
    pub action: crate::frame::ModAction,
    /// To whom.
    pub target: Name,
    /// How long a ban or mute lasts, in seconds; 0: until lifted.
    pub seconds: u32,
    /// Why.
    pub reason: String,
}

/// An operator's ban of an address block, or its lifting, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressBanRecord {
    /// Who did it.
    pub actor: Name,
    /// The block's canonical text (see [`crate::SourceNet::parse`]).
    pub block: String,
    /// Whether the ban is lifted rather than given.
    pub lift: bool,
    /// How long the ban lasts, in seconds; 0: until lifted.
    pub seconds: u32,
    /// Why.
    pub reason: String,
}

/// A line of the audit log that is not a [`ModerationRecord`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditLine {
    /// Who did it.
    pub actor: Name,
    /// What (`announce`, `delete`, ...).
    pub action: &'static str,
    /// To what (a message id, a group), or empty.
    pub target: String,
    /// The text or reason.
    pub reason: String,
}
