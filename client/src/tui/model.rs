//! The terminal client's state, pure: no terminal, no socket, no clock.
//!
//! [`Model`] holds what the screen shows: the conversations keyed by
//! [`ConvId`] (each message stored once, ordered by id), unread counts, the
//! roster, the groups, the current conversation, the connection state and
//! the text being typed. `update.rs` changes it in answer to a `Msg` (a key
//! or a network event) and decides which commands go to the network;
//! `view.rs` draws it. Time comes in as [`Now`]. Its parts live beside it:
//! [`Conversation`], [`LoginForm`], [`Editor`]; the sidebar's rows are
//! built in `sidebar.rs`, a second `impl Model`.
//!
//! The resume bookmark follows docs/PROTOCOL.md ("Conversations and
//! message ids"): messages arrive in id order across all conversations, so
//! the newest MESSAGE id received (or CAUGHT_UP's `last_id`) is a complete
//! bookmark. An ACK does not raise it: ACKs travel ahead of messages, so a
//! message with a smaller id may still be on its way. History pages do not
//! either. Resuming may repeat one of our own messages (known from its
//! ACK); storage by id drops the repeat.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use confab_engine::frame::{GroupInfo, Presence};
use confab_engine::name::NameKey;
use confab_engine::{MessageId, Name, Ref, Target};

use super::clock::{self, Now};
use super::conversation::{ConvId, Conversation, Entry, DELETED};
use super::editor::Editor;
use super::layout;
use super::login_form::{describe_problem, LoginForm, Problem};
use super::network::Command;
use super::wrap;
use tuirealm::ratatui::layout::Rect;

/// Which screen is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Screen {
    /// The login/register form.
    Login,
    /// Conversations.
    Main,
}

/// What receives the keys on the main screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Focus {
    /// The input line.
    Input,
    /// The groups list.
    Groups,
    /// The people list.
    People,
}

/// The connection, as the status bar shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// Not logged in.
    Offline,
    /// A login the user asked for is under way.
    Connecting,
    /// Logged in.
    Online,
    /// Lost (or told to go away); reconnecting at `retry_at`.
    Waiting {
        /// When the next attempt starts.
        retry_at: Instant,
        /// How many attempts failed so far.
        attempt: u32,
    },
    /// A reconnect attempt is under way.
    Reconnecting {
        /// Which one (1 = the first).
        attempt: u32,
    },
    /// Logging out.
    LoggingOut,
}

/// A group, as far as this client knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    /// Its name as created.
    pub(crate) name: Name,
    /// How many members it has, when known.
    pub(crate) members: Option<u32>,
    /// Whether this user is one of them.
    pub(crate) member: bool,
}

/// A modal dialog over the main screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dialog {
    /// The actions menu, an entry selected.
    Menu {
        /// The selected entry.
        selected: usize,
    },
    /// Asking for a group name.
    Prompt {
        /// What the name is for.
        action: GroupAction,
        /// The name being typed.
        text: Editor,
    },
    /// The keys.
    Help,
}

/// What a group-name prompt does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GroupAction {
    /// GROUP_CREATE.
    Create,
    /// GROUP_JOIN.
    Join,
    /// GROUP_LEAVE.
    Leave,
}

/// The line of news under the conversation: the latest outcome or error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Notice {
    /// What to say.
    pub(crate) text: String,
    /// Whether it is bad news.
    pub(crate) error: bool,
}

/// Who we are logged in as, where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Account {
    /// The account as registered.
    pub(crate) user: Name,
    /// `host:port`.
    pub(crate) addr: String,
    /// Whether the connection is encrypted.
    pub(crate) tls: bool,
    /// The longest body the server takes, in bytes.
    pub(crate) max_body: usize,
    /// The login to repeat when reconnecting.
    pub(crate) host: String,
    /// Its port.
    pub(crate) port: u16,
    /// Its password.
    pub(crate) password: String,
}

/// The whole state (see the module docs).
#[derive(Debug)]
pub(crate) struct Model {
    /// Which screen.
    pub(crate) screen: Screen,
    /// The login form.
    pub(crate) login: LoginForm,
    /// Who we are, once logged in (kept while reconnecting).
    pub(crate) account: Option<Account>,
    /// The connection.
    pub(crate) link: Link,
    /// The latest round trip.
    pub(crate) rtt: Option<Duration>,
    /// Conversations by id.
    pub(crate) conversations: BTreeMap<ConvId, Conversation>,
    /// The one shown.
    pub(crate) current: ConvId,
    /// Who is online.
    pub(crate) roster: BTreeMap<NameKey, Name>,
    /// Groups by name.
    pub(crate) groups: BTreeMap<NameKey, Group>,
    /// The resume bookmark (see the module docs).
    pub(crate) bookmark: MessageId,
    /// The device to log in as (`--device`): reconnects then use its token,
    /// and the password is not kept.
    pub(crate) device: Option<Name>,
    /// Requests waiting for their answer, by reference (this connection's).
    pub(crate) requests: HashMap<Ref, Command>,
    /// The input line.
    pub(crate) input: Editor,
    /// Lines sent, newest last, for recalling with Up/Down.
    pub(crate) sent: Vec<String>,
    /// Which sent line is recalled, if any.
    pub(crate) recall: Option<usize>,
    /// Which part of the main screen takes keys.
    pub(crate) focus: Focus,
    /// The selected row of the groups list.
    pub(crate) groups_selected: usize,
    /// The selected row of the people list.
    pub(crate) people_selected: usize,
    /// An open dialog.
    pub(crate) dialog: Option<Dialog>,
    /// The latest news.
    pub(crate) notice: Option<Notice>,
    /// The terminal's size.
    pub(crate) size: (u16, u16),
    /// The clock as of the latest message.
    pub(crate) now: Option<Now>,
    /// Local time minus UTC, in seconds, for showing times.
    pub(crate) utc_offset_s: i32,
    /// Leave the main loop.
    pub(crate) quit: bool,
}

impl Model {
    /// A model showing the login form.
    pub(crate) fn new(login: LoginForm, size: (u16, u16), utc_offset_s: i32) -> Model {
        let mut conversations = BTreeMap::new();
        conversations.insert(ConvId::Room, Conversation::new(Target::Room));
        Model {
            screen: Screen::Login,
            login,
            account: None,
            link: Link::Offline,
            rtt: None,
            conversations,
            current: ConvId::Room,
            roster: BTreeMap::new(),
            groups: BTreeMap::new(),
            bookmark: MessageId(0),
            device: None,
            requests: HashMap::new(),
            input: Editor::default(),
            sent: Vec::new(),
            recall: None,
            focus: Focus::Input,
            groups_selected: 0,
            people_selected: 0,
            dialog: None,
            notice: None,
            size,
            now: None,
            utc_offset_s,
            quit: false,
        }
    }

    /// The logged-in user.
    pub(crate) fn me(&self) -> Option<Name> {
        self.account.as_ref().map(|a| a.user)
    }

    /// Whether `name` is the logged-in user.
    pub(crate) fn is_me(&self, name: &Name) -> bool {
        self.me().is_some_and(|me| me.key() == name.key())
    }

    /// The conversation shown.
    pub(crate) fn current(&self) -> &Conversation {
        // Invariant: `current` always names an existing conversation
        // (`open` creates it first; nothing removes conversations but
        // `forget_chat`, which resets `current` to the room it keeps).
        self.conversations
            .get(&self.current)
            .expect("the current conversation exists")
    }

    fn current_mut(&mut self) -> &mut Conversation {
        self.conversations
            .get_mut(&self.current)
            .expect("the current conversation exists")
    }

    /// A conversation, created if new.
    pub(crate) fn conversation_mut(&mut self, target: &Target) -> &mut Conversation {
        self.conversations
            .entry(ConvId::of(target))
            .or_insert_with(|| Conversation::new(*target))
    }

    /// Makes `target`'s conversation the current one and marks it read.
    pub(crate) fn open(&mut self, target: &Target) {
        self.conversation_mut(target).unread = 0;
        self.current = ConvId::of(target);
    }

    /// The conversation a message belongs to: its target, except a DM,
    /// which belongs to the other party (the recipient when we sent it).
    pub(crate) fn conversation_of(&self, sender: &Name, target: &Target) -> Target {
        match target {
            Target::User(_) if !self.is_me(sender) => Target::User(*sender),
            t => *t,
        }
    }

    /// Stores a message (once: a known id is ignored). A new message from
    /// someone else counts as unread unless its conversation is shown.
    /// Returns whether it was new.
    pub(crate) fn store(&mut self, conv: &Target, entry: Entry, count_unread: bool) -> bool {
        let id = ConvId::of(conv);
        let mine = self.is_me(&entry.sender);
        let current = self.current == id;
        let lines = self.entry_lines(&entry);
        let c = self.conversation_mut(conv);
        if c.messages.contains_key(&entry.id) {
            return false;
        }
        let newest = c.messages.keys().next_back().is_none_or(|&n| entry.id > n);
        // Read on another device already (its READ_MARKER came first, as
        // at login before the replay): not unread here either.
        let read = entry.id <= c.read_up_to;
        c.messages.insert(entry.id, entry);
        if count_unread && !mine && !current && !read {
            c.unread += 1;
        }
        // Scrolled up: a message appended below keeps the view where it is.
        if c.scroll > 0 && newest {
            c.scroll += lines;
        }
        true
    }

    /// The current conversation's newest message, if the server has not
    /// been told yet that it is read: the MARK_READ to send. Notes it sent.
    pub(crate) fn mark_current_read(&mut self) -> Option<(Target, MessageId)> {
        let c = self.conversations.get_mut(&self.current)?;
        let newest = *c.messages.keys().next_back()?;
        if newest <= c.read_up_to {
            return None;
        }
        c.read_up_to = newest;
        Some((c.target, newest))
    }

    /// READ_MARKER: another session read `target` up to `id`. Its unread
    /// count becomes the messages from others it holds above the marker,
    /// so every device of the user shows the same count.
    pub(crate) fn read_marker(&mut self, target: &Target, id: MessageId) {
        let me = self.me();
        let c = self.conversation_mut(target);
        c.read_up_to = c.read_up_to.max(id);
        let above = c
            .messages
            .range(MessageId(c.read_up_to.0.saturating_add(1))..)
            .filter(|(_, e)| me.is_none_or(|me| e.sender.key() != me.key()))
            .count();
        c.unread = u32::try_from(above).unwrap_or(u32::MAX);
    }

    /// A MESSAGE with this id arrived: raise the bookmark.
    pub(crate) fn saw(&mut self, id: MessageId) {
        self.bookmark = self.bookmark.max(id);
    }

    /// CAUGHT_UP: everything up to `last_id` has been delivered.
    pub(crate) fn saw_caught_up(&mut self, last_id: MessageId) {
        self.bookmark = self.bookmark.max(last_id);
    }

    /// Replaces the roster.
    pub(crate) fn roster_snapshot(&mut self, users: &[Name]) {
        self.roster = users.iter().map(|u| (u.key(), *u)).collect();
        self.clamp_selection();
    }

    /// Applies a roster change.
    pub(crate) fn roster_delta(&mut self, presence: Presence, user: Name) {
        match presence {
            Presence::Online => {
                self.roster.insert(user.key(), user);
            }
            Presence::Offline => {
                self.roster.remove(&user.key());
            }
        }
        self.clamp_selection();
    }

    /// Replaces the groups with a GROUP_LIST.
    pub(crate) fn group_list(&mut self, list: &[GroupInfo]) {
        self.groups = list
            .iter()
            .map(|g| {
                let group = Group {
                    name: g.name,
                    members: Some(g.members),
                    member: g.is_member,
                };
                (g.name.key(), group)
            })
            .collect();
        self.clamp_selection();
    }

    /// Notes that `user` joined or left `group`.
    pub(crate) fn group_member(&mut self, group: Name, user: &Name, joined: bool) {
        let me = self.is_me(user);
        let g = self.groups.entry(group.key()).or_insert(Group {
            name: group,
            members: None,
            member: false,
        });
        if me {
            g.member = joined;
        }
        g.members = g.members.map(|n| {
            if joined {
                n.saturating_add(1)
            } else {
                n.saturating_sub(1)
            }
        });
        self.clamp_selection();
    }

    /// The conversation pane's text area for the current terminal size.
    pub(crate) fn pane(&self) -> Rect {
        let area = Rect::new(0, 0, self.size.0, self.size.1);
        layout::Main::of(area).conversation_text()
    }

    /// How many screen lines a message takes in the pane.
    pub(crate) fn entry_lines(&self, e: &Entry) -> usize {
        let prefix = wrap::prefix_width(e.sender.as_str());
        wrap::body_lines(prefix, &e.body, usize::from(self.pane().width)).len()
    }

    /// How many screen lines the current conversation takes, pending
    /// messages included.
    pub(crate) fn current_height(&self) -> usize {
        let me = self.me();
        let held: usize = self
            .current()
            .messages
            .values()
            .map(|e| self.entry_lines(e))
            .sum();
        let pending: usize = self
            .pending_in_current()
            .iter()
            .map(|body| match me {
                Some(me) => self.entry_lines(&Entry {
                    id: MessageId(0),
                    ts_ms: 0,
                    sender: me,
                    body: body.clone(),
                }),
                None => 1,
            })
            .sum();
        held + pending
    }

    /// Bodies sent to the current conversation and not yet acknowledged,
    /// oldest first.
    pub(crate) fn pending_in_current(&self) -> Vec<String> {
        let mut pending: Vec<(&Ref, &String)> = self
            .requests
            .iter()
            .filter_map(|(r, c)| match c {
                Command::Send { target, body } if ConvId::of(target) == self.current => {
                    Some((r, body))
                }
                _ => None,
            })
            .collect();
        pending.sort();
        pending.into_iter().map(|(_, b)| b.clone()).collect()
    }

    /// Scrolls the current conversation up by `lines`; returns whether the
    /// top is reached.
    pub(crate) fn scroll_up(&mut self, lines: usize) -> bool {
        let max = self
            .current_height()
            .saturating_sub(usize::from(self.pane().height));
        let c = self.current_mut();
        c.scroll = (c.scroll + lines).min(max);
        c.scroll >= max
    }

    /// Scrolls the current conversation down by `lines`.
    pub(crate) fn scroll_down(&mut self, lines: usize) {
        let c = self.current_mut();
        c.scroll = c.scroll.saturating_sub(lines);
    }

    /// Forgets everything learned while logged in (after a logout).
    pub(crate) fn forget_chat(&mut self) {
        let fresh = Model::new(self.login.clone(), self.size, self.utc_offset_s);
        let sent = std::mem::take(&mut self.sent);
        *self = Model { sent, ..fresh };
    }

    /// Marks message `id` deleted (by `by`, when known) wherever it is
    /// held; whether it was.
    pub(crate) fn tombstone(&mut self, id: MessageId, by: Option<&Name>) -> bool {
        let text = match by {
            Some(by) => format!("{DELETED} by {by}"),
            None => DELETED.to_owned(),
        };
        let mut found = false;
        for c in self.conversations.values_mut() {
            if let Some(e) = c.messages.get_mut(&id) {
                e.body.clone_from(&text);
                found = true;
            }
        }
        found
    }

    /// Sets the news line.
    pub(crate) fn say(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: false,
        });
    }

    /// Sets the news line to bad news.
    pub(crate) fn complain(&mut self, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            error: true,
        });
    }

    /// `HH:MM` of a timestamp, local time.
    pub(crate) fn clock(&self, ts_ms: u64) -> String {
        clock::hh_mm(ts_ms, self.utc_offset_s)
    }

    /// How the login screen words a problem, as of the latest message's
    /// clock (see [`describe_problem`]).
    pub(crate) fn describe(&self, p: &Problem) -> String {
        describe_problem(p, self.now.map_or(0, |n| n.wall_ms), self.utc_offset_s)
    }
}
