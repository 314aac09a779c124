//! The login form: its fields in tab order, their editors, the register
//! toggle, and what went wrong, in words.

use super::clock::{hh_mm_ss, human_secs};
use super::editor::Editor;
use super::network::LoginProblem;

/// The fields of the login form, in tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// Server host.
    Host,
    /// Server port.
    Port,
    /// User name.
    User,
    /// Password.
    Password,
    /// The register toggle.
    Register,
}

impl Field {
    const ORDER: [Field; 5] = [
        Field::Host,
        Field::Port,
        Field::User,
        Field::Password,
        Field::Register,
    ];

    /// The next (or previous) field, wrapping around.
    pub(crate) fn step(self, forward: bool) -> Field {
        let i = Field::ORDER.iter().position(|f| *f == self).unwrap_or(0);
        let n = Field::ORDER.len();
        Field::ORDER[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }
}

/// The login form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoginForm {
    /// Server host.
    pub(crate) host: Editor,
    /// Server port.
    pub(crate) port: Editor,
    /// User name.
    pub(crate) user: Editor,
    /// Password (drawn masked).
    pub(crate) password: Editor,
    /// Register the account before logging in.
    pub(crate) register: bool,
    /// The focused field.
    pub(crate) field: Field,
    /// Why the last attempt failed, or what is wrong with the form.
    pub(crate) problem: Option<Problem>,
    /// A login is under way.
    pub(crate) busy: bool,
}

/// What the login form says went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The server or the connection said no.
    Login(LoginProblem),
    /// The form itself is wrong (an invalid name or port).
    Form(String),
}

impl LoginForm {
    /// A form prefilled from the command line, focused on the first empty
    /// field.
    pub(crate) fn new(host: &str, port: u16, user: &str, password: &str, register: bool) -> Self {
        let mut form = LoginForm {
            host: Editor::with(host),
            port: Editor::with(&port.to_string()),
            user: Editor::with(user),
            password: Editor::with(password),
            register,
            field: Field::Host,
            problem: None,
            busy: false,
        };
        form.field = if user.is_empty() {
            Field::User
        } else if password.is_empty() {
            Field::Password
        } else {
            Field::Host
        };
        form
    }

    /// The editor of the focused field (none for the toggle).
    pub(crate) fn editor_mut(&mut self) -> Option<&mut Editor> {
        match self.field {
            Field::Host => Some(&mut self.host),
            Field::Port => Some(&mut self.port),
            Field::User => Some(&mut self.user),
            Field::Password => Some(&mut self.password),
            Field::Register => None,
        }
    }
}

/// How the login screen words a problem; `now_ms` turns a lockout's end
/// into "in N s", `utc_offset_s` shows that end in local time.
pub(crate) fn describe_problem(p: &Problem, now_ms: u64, utc_offset_s: i32) -> String {
    match p {
        Problem::Form(s) => s.clone(),
        Problem::Login(p) => match p {
            LoginProblem::WrongPassword => "Wrong user name or password.".into(),
            LoginProblem::NameTaken => {
                "That name is taken: pick another, or untick Register to log in.".into()
            }
            LoginProblem::RegistrationClosed => {
                "This server does not take registrations: ask its operator for an account.".into()
            }
            LoginProblem::LockedOut { until_ms } => {
                let left = until_ms.saturating_sub(now_ms).div_ceil(1000);
                format!(
                    "Locked out after too many failed logins: try again in {} (at {}).",
                    human_secs(left),
                    hh_mm_ss(*until_ms, utc_offset_s)
                )
            }
            LoginProblem::Unreachable { addr, reason } => {
                format!("Cannot reach the server at {addr}: {reason}.")
            }
            LoginProblem::Timeout => "The server did not answer in time.".into(),
            LoginProblem::ShuttingDown {
                reason,
                retry_after_ms,
            } => format!(
                "The server is shutting down ({reason}): try again in {}.",
                human_secs(u64::from(*retry_after_ms).div_ceil(1000))
            ),
            LoginProblem::Busy { retry_after_ms } => format!(
                "The server is busy: try again in {}.",
                human_secs(u64::from(*retry_after_ms).div_ceil(1000))
            ),
            LoginProblem::CertificateChanged {
                addr,
                fingerprint,
                known_servers,
            } => format!(
                "The certificate of {addr} has changed ({fingerprint}): someone may be \
                 intercepting the connection; if this is expected, remove its line from \
                 {known_servers}. Not logging in."
            ),
            LoginProblem::CertificateInvalid { addr, reason } => {
                format!("The certificate of {addr} is not trusted: {reason}. Not logging in.")
            }
            LoginProblem::Other(s) => s.clone(),
        },
    }
}
