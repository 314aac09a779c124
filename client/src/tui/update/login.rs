//! The login screen's keys: editing the form, moving between its fields,
//! and submitting it (checked here, before anything is sent).

use confab_engine::{MessageId, Name, Password};

use crate::tui::editor::Edit;
use crate::tui::login_form::{Field, Problem};
use crate::tui::model::{Link, Model};
use crate::tui::network::{Command, Login};
use crate::tui::Msg;

/// A key on the login screen.
pub(super) fn login_key(m: &mut Model, key: Msg, out: &mut Vec<Command>) {
    let f = &mut m.login;
    match key {
        Msg::Edit(Edit::Insert(' ')) if f.field == Field::Register => f.register = !f.register,
        Msg::Edit(e) => {
            if let Some(ed) = f.editor_mut() {
                ed.apply(&e);
            }
        }
        Msg::Next | Msg::Down => f.field = f.field.step(true),
        Msg::Prev | Msg::Up => f.field = f.field.step(false),
        Msg::Submit => submit_login(m, out),
        Msg::Cancel => f.problem = None,
        _ => {}
    }
}

/// Logs in with the form, or says which field is wrong.
pub(super) fn submit_login(m: &mut Model, out: &mut Vec<Command>) {
    m.dialog = None;
    let f = &mut m.login;
    if f.busy {
        return;
    }
    let host = f.host.text().trim().to_owned();
    let port = f.port.text().trim().parse::<u16>().ok().filter(|&p| p > 0);
    let user = Name::new(f.user.text().trim());
    let password = f.password.text().to_owned();
    let problem = if host.is_empty() {
        Some((Field::Host, "Which server? Type its host name.".to_owned()))
    } else if port.is_none() {
        Some((
            Field::Port,
            "The port is a number from 1 to 65535.".to_owned(),
        ))
    } else if let Err(e) = &user {
        Some((Field::User, format!("Not a user name: {e}.")))
    } else if Password::new(&password).is_none() {
        Some((
            Field::Password,
            format!(
                "A password is {} to {} bytes.",
                Password::MIN_LEN,
                Password::MAX_LEN
            ),
        ))
    } else {
        None
    };
    if let Some((field, text)) = problem {
        f.field = field;
        f.problem = Some(Problem::Form(text));
        return;
    }
    let (Some(port), Ok(user)) = (port, user) else {
        return;
    };
    f.busy = true;
    f.problem = None;
    let register = f.register;
    m.link = Link::Connecting;
    out.push(Command::Connect(Login {
        host,
        port,
        user,
        password,
        register,
        resume_after: MessageId(0),
        device: m.device,
    }));
}
