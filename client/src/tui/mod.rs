//! The terminal client (`confab` without a subcommand), built the tui-realm
//! way, as termscp is:
//!
//! - [`model`]: the state, pure (events in, state out), unit tested without
//!   a terminal; its parts each in their own module: [`conversation`],
//!   [`login_form`], [`editor`], the [`sidebar`]'s rows, the [`clock`];
//! - [`update`]: `Msg` → model changes and network [`Command`]s; every
//!   decision lives here;
//! - [`view`]: model → each component's data, layout, focus;
//! - [`components`]: tui-realm components whose `on` only maps keys to
//!   `Msg`, drawing what the view hands them;
//! - [`network`]: the blocking [`confab::Connection`] on its own thread,
//!   reaching the UI through a sync port ([`network::NetPort`], `try_recv`
//!   on a channel); commands go the other way over another channel.
//!
//! The run loop: `app.tick` collects keys, ticks and network events as
//! `Msg`s; each goes through `update` (with the clock read once, as
//! [`clock::Now`]) and its commands to the network thread; then, if
//! anything happened, the view pushes the model into the components and
//! draws.
//!
//! [`Command`]: network::Command

mod clock;
mod components;
mod conversation;
mod editor;
mod layout;
mod login_form;
mod model;
mod network;
mod sidebar;
mod update;
mod view;
mod wrap;

#[cfg(test)]
mod tests;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::builder::FalseyValueParser;
use clap::{ArgAction, Args};
use tuirealm::application::{Application, PollStrategy};
use tuirealm::listener::EventListenerCfg;
use tuirealm::subscription::{EventClause, Sub, SubClause};
use tuirealm::terminal::{CrosstermTerminalAdapter, TerminalAdapter};

use clock::Now;
use components::conversation::ConversationPane;
use components::dialog::Dialog;
use components::events::Events;
use components::input::InputLine;
use components::lists::{GroupsList, PeopleList};
use components::login::LoginForm;
use components::status::{KeyHints, StatusBar};
use editor::Edit;
use model::Model;
use network::{NetEvent, Network};

/// The terminal UI's command line: where to connect and who to be, all
/// optional (the login screen asks for what is missing).
#[derive(Args, Debug)]
pub(crate) struct Options {
    /// Server host.
    #[arg(long, env = "CONFAB_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, env = "CONFAB_PORT", default_value_t = 7878)]
    port: u16,
    /// Account name; with a password too, the client logs in at once.
    #[arg(long, env = "CONFAB_USER")]
    user: Option<String>,
    /// Password (prefer the environment variable, or type it on the login screen).
    #[arg(long, env = "CONFAB_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Tick "register a new account" on the login screen.
    #[arg(long, env = "CONFAB_REGISTER", action = ArgAction::SetTrue,
          value_parser = FalseyValueParser::new())]
    register: bool,
    /// Log in as this device: reconnects use its token (kept in memory)
    /// instead of the password, resend unacknowledged messages exactly
    /// once, and unread counts follow the read markers of every device.
    #[arg(long, env = "CONFAB_DEVICE", value_parser = crate::parse_name)]
    device: Option<confab_engine::Name>,
    #[command(flatten)]
    tls: crate::TlsArgs,
}

/// A message for `update`: a key mapped by a component, or an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Msg {
    /// Edit the text field that has the keys.
    Edit(Edit),
    /// Enter.
    Submit,
    /// Tab: the next field or pane.
    Next,
    /// Shift-Tab.
    Prev,
    /// Up arrow.
    Up,
    /// Down arrow.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Show the next conversation.
    NextConversation,
    /// Show the previous conversation.
    PrevConversation,
    /// Esc.
    Cancel,
    /// An action of the menu (function keys).
    Action(Action),
    /// The terminal was resized.
    Resize(u16, u16),
    /// Time passed (timers, the clock).
    Tick,
    /// The network thread reported something.
    Net(NetEvent),
}

/// The actions menu's entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// F1.
    Help,
    /// F2: log in on the login screen, log out on the main screen.
    Account,
    /// F3: the register toggle.
    Register,
    /// F5.
    CreateGroup,
    /// F6.
    JoinGroup,
    /// F7.
    LeaveGroup,
    /// F9.
    Menu,
    /// F10.
    Quit,
}

/// The components.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Id {
    /// The invisible sink for ticks, network events and resizes.
    Events,
    /// The status bar.
    Status,
    /// The key hints.
    Hints,
    /// The login form.
    Login,
    /// The conversation pane.
    Conversation,
    /// The groups list.
    Groups,
    /// The people list.
    People,
    /// The input line.
    Input,
    /// The dialog.
    Dialog,
}

/// Runs the terminal UI until the user quits.
pub(crate) fn run(opts: Options) -> Result<(), String> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(
            "the terminal UI needs a terminal; for scripts use a subcommand \
                    (`confab --help`)"
                .into(),
        );
    }
    // Before any thread exists: reading the local offset is only sound then.
    let utc_offset_s = time::UtcOffset::current_local_offset().map_or(0, |o| o.whole_seconds());

    let mut terminal = CrosstermTerminalAdapter::new().map_err(|e| e.to_string())?;
    let size = terminal.raw().size().map_err(|e| e.to_string())?;
    let user = opts.user.clone().unwrap_or_default();
    let password = opts.password.clone().unwrap_or_default();
    let form = login_form::LoginForm::new(&opts.host, opts.port, &user, &password, opts.register);
    let mut model = Model::new(form, (size.width, size.height), utc_offset_s);
    model.device = opts.device;

    let security = opts.tls.security()?;
    let (network, port) = Network::start(security);
    let mut app = application(port).map_err(|e| e.to_string())?;
    terminal.enable_raw_mode().map_err(|e| e.to_string())?;
    terminal
        .enter_alternate_screen()
        .map_err(|e| e.to_string())?;

    if !user.is_empty() && !password.is_empty() {
        for c in update::update(&mut model, Msg::Action(Action::Account), now()) {
            network.send(c);
        }
    }
    let result = main_loop(&mut app, &mut model, &mut terminal, &network);
    let _ = terminal.restore();
    network.shut_down(Duration::from_secs(1));
    result
}

fn application(port: network::NetPort) -> Result<Application<Id, Msg, NetEvent>, String> {
    let listener = EventListenerCfg::default()
        .crossterm_input_listener(Duration::from_millis(20), 32)
        .add_port(Box::new(port), Duration::from_millis(10), 256)
        .tick_interval(Duration::from_millis(250));
    let mut app = Application::init(listener);
    let e = |e: tuirealm::application::ApplicationError| e.to_string();
    app.mount(
        Id::Events,
        Box::new(Events::default()),
        vec![Sub::new(EventClause::Any, SubClause::Always)],
    )
    .map_err(e)?;
    app.mount(Id::Status, Box::new(StatusBar::default()), vec![])
        .map_err(e)?;
    app.mount(Id::Hints, Box::new(KeyHints::default()), vec![])
        .map_err(e)?;
    app.mount(Id::Login, Box::new(LoginForm::default()), vec![])
        .map_err(e)?;
    app.mount(
        Id::Conversation,
        Box::new(ConversationPane::default()),
        vec![],
    )
    .map_err(e)?;
    app.mount(Id::Groups, Box::new(GroupsList::default()), vec![])
        .map_err(e)?;
    app.mount(Id::People, Box::new(PeopleList::default()), vec![])
        .map_err(e)?;
    app.mount(Id::Input, Box::new(InputLine::default()), vec![])
        .map_err(e)?;
    app.mount(Id::Dialog, Box::new(Dialog::default()), vec![])
        .map_err(e)?;
    app.active(&Id::Login).map_err(e)?;
    Ok(app)
}

fn main_loop(
    app: &mut Application<Id, Msg, NetEvent>,
    model: &mut Model,
    terminal: &mut CrosstermTerminalAdapter,
    network: &Network,
) -> Result<(), String> {
    let mut redraw = true;
    while !model.quit {
        if redraw {
            view::push(app, model);
            terminal
                .draw(|f| view::draw(app, model, f))
                .map_err(|e| e.to_string())?;
            redraw = false;
        }
        let msgs = app
            .tick(PollStrategy::UpTo(64, Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        for msg in msgs {
            for c in update::update(model, msg, now()) {
                network.send(c);
            }
            redraw = true;
        }
    }
    Ok(())
}

/// The clock, now.
fn now() -> Now {
    Now {
        mono: Instant::now(),
        wall_ms: network::now_ms(),
    }
}
