//! The sidebar: the groups list and the people list, as rows built from
//! the model (groups, roster, conversations), and the selection kept within
//! them.

use confab_engine::name::NameKey;
use confab_engine::Target;

use super::conversation::ConvId;
use super::model::Model;

/// A row of the groups list or the people list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    /// The conversation it opens.
    pub(crate) id: ConvId,
    /// Its target.
    pub(crate) target: Target,
    /// Unread messages.
    pub(crate) unread: u32,
    /// For a group: this user is a member. For a person: online.
    pub(crate) active: bool,
    /// It is the current conversation.
    pub(crate) current: bool,
}

impl Model {
    /// The groups list: the room, then the groups this user belongs to,
    /// then group conversations and groups not joined.
    pub(crate) fn group_rows(&self) -> Vec<Row> {
        let mut rows = vec![self.row(ConvId::Room, Target::Room, true)];
        let mut others = Vec::new();
        let mut keys: Vec<NameKey> = self.groups.keys().copied().collect();
        for id in self.conversations.keys() {
            if let ConvId::Group(k) = id {
                if !self.groups.contains_key(k) {
                    keys.push(*k);
                }
            }
        }
        keys.sort();
        for k in keys {
            let id = ConvId::Group(k);
            let (name, member) = match (self.groups.get(&k), self.conversations.get(&id)) {
                (Some(g), _) => (g.name, g.member),
                (None, Some(c)) => match c.target {
                    Target::Group(n) => (n, false),
                    _ => continue,
                },
                (None, None) => continue,
            };
            let row = self.row(id, Target::Group(name), member);
            if member {
                rows.push(row);
            } else {
                others.push(row);
            }
        }
        rows.extend(others);
        rows
    }

    /// The people list: everyone online (this user first), then those with
    /// a DM conversation who are offline.
    pub(crate) fn people_rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        if let Some(me) = self.me() {
            if self.roster.contains_key(&me.key()) {
                rows.push(self.row(ConvId::User(me.key()), Target::User(me), true));
            }
        }
        for (k, name) in &self.roster {
            if !self.is_me(name) {
                rows.push(self.row(ConvId::User(*k), Target::User(*name), true));
            }
        }
        for (id, c) in &self.conversations {
            if let ConvId::User(k) = id {
                if !self.roster.contains_key(k) {
                    rows.push(self.row(*id, c.target, false));
                }
            }
        }
        rows
    }

    fn row(&self, id: ConvId, target: Target, active: bool) -> Row {
        let c = self.conversations.get(&id);
        Row {
            id,
            target: c.map_or(target, |c| c.target),
            unread: c.map_or(0, |c| c.unread),
            active,
            current: self.current == id,
        }
    }

    /// Every conversation in list order (groups list, then people list),
    /// for stepping through them.
    pub(crate) fn all_rows(&self) -> Vec<Row> {
        let mut rows = self.group_rows();
        rows.extend(self.people_rows());
        rows
    }

    /// Keeps each list's selection on a row after the lists change.
    pub(super) fn clamp_selection(&mut self) {
        let g = self.group_rows().len();
        let p = self.people_rows().len();
        self.groups_selected = self.groups_selected.min(g.saturating_sub(1));
        self.people_selected = self.people_selected.min(p.saturating_sub(1));
    }
}
