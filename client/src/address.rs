//! How people write where a message goes: `all`, `@user`, `#group`.
//!
//! The command line, the JSON output and the terminal UI share this one
//! spelling, so a target printed by `confab listen` can be pasted into
//! `confab send --to`.

use confab_engine::{Name, Target};

/// Why a target string is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Neither `all`, `@user` nor `#group`.
    #[error("a target is `all`, `@user` or `#group`, not {0:?}")]
    Form(String),
    /// The name after `@` or `#` is not a valid name.
    #[error("{text:?}: {error}")]
    Name {
        /// The whole target as given.
        text: String,
        /// What is wrong with the name.
        error: confab_engine::NameError,
    },
}

/// Parses `all`, `@user` or `#group`.
pub fn parse_target(s: &str) -> Result<Target, AddressError> {
    let name = |rest: &str| {
        Name::new(rest).map_err(|error| AddressError::Name {
            text: s.to_owned(),
            error,
        })
    };
    if s.eq_ignore_ascii_case("all") {
        Ok(Target::Room)
    } else if let Some(rest) = s.strip_prefix('@') {
        Ok(Target::User(name(rest)?))
    } else if let Some(rest) = s.strip_prefix('#') {
        Ok(Target::Group(name(rest)?))
    } else {
        Err(AddressError::Form(s.to_owned()))
    }
}

/// The inverse of [`parse_target`]: `all`, `@user` or `#group`.
pub fn format_target(t: &Target) -> String {
    match t {
        Target::Room => "all".to_owned(),
        Target::User(u) => format!("@{u}"),
        Target::Group(g) => format!("#{g}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(s: &str, want: Result<&str, ()>) {
        let got = parse_target(s).map(|t| format_target(&t)).map_err(|_| ());
        assert_eq!(got.as_deref().map_err(|_| ()), want, "{s:?}");
    }

    #[test]
    fn targets_parse_and_print_back_the_same() {
        check("all", Ok("all"));
        check("ALL", Ok("all"));
        check("@bob", Ok("@bob"));
        check("#dev.ops", Ok("#dev.ops"));
        check("bob", Err(()));
        check("@", Err(()));
        check("#_x", Err(()));
        check("@a b", Err(()));
    }
}
