//! The data dir's record of which store its node runs on (the file
//! `store`, written at each start), so that a command run on the data
//! dir without `--store` acts on the store the node uses: an operator's
//! `ban` on a node that runs on PostgreSQL must not land in an SQLite
//! file that no node reads.
//!
//! No secret is ever written: a URL with a password is recorded without
//! it, marked so, and a command then refuses to guess (the password may
//! be the only way in) and asks for `--store`. A data dir without the
//! file (no server started on it yet, or one older than the record)
//! means SQLite, as before.

use std::io;
use std::path::Path;

use crate::Error;

/// The file, in the data dir.
pub(crate) const FILE: &str = "store";

const HEADER: &str =
    "# The store the confab-server on this data dir runs on, written at its start;\n\
# commands without --store follow it. Never holds a password.\n";

/// What a data dir's record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// SQLite in the data dir.
    Sqlite,
    /// PostgreSQL at this URL, complete (it has no password).
    Postgres(String),
    /// PostgreSQL at this URL, whose password was left out.
    PostgresWithoutPassword(String),
}

impl Recorded {
    /// The record of `store` (`--store`; `None` for SQLite).
    pub(crate) fn of(store: Option<&str>) -> Recorded {
        match store {
            None => Recorded::Sqlite,
            Some(url) => match without_password(url) {
                (url, false) => Recorded::Postgres(url),
                (url, true) => Recorded::PostgresWithoutPassword(url),
            },
        }
    }

    fn line(&self) -> String {
        match self {
            Recorded::Sqlite => "sqlite".to_owned(),
            Recorded::Postgres(url) => format!("postgres {url}"),
            Recorded::PostgresWithoutPassword(url) => format!("postgres-password-withheld {url}"),
        }
    }

    fn parse(text: &str) -> Option<Recorded> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))?;
        match line.split_once(' ') {
            None if line == "sqlite" => Some(Recorded::Sqlite),
            Some(("postgres", url)) => Some(Recorded::Postgres(url.trim().to_owned())),
            Some(("postgres-password-withheld", url)) => {
                Some(Recorded::PostgresWithoutPassword(url.trim().to_owned()))
            }
            _ => None,
        }
    }
}

/// Records `store` in `dir` (replacing the file whole, so a command never
/// reads half of one).
pub(crate) fn write(dir: &Path, store: Option<&str>) -> io::Result<()> {
    let tmp = dir.join(format!(".{FILE}.{}", std::process::id()));
    std::fs::write(&tmp, format!("{HEADER}{}\n", Recorded::of(store).line()))?;
    std::fs::rename(&tmp, dir.join(FILE))
}

/// The store a command without `--store` acts on: the recorded
/// PostgreSQL URL, or `None` for SQLite; refused where the record
/// withheld a password or cannot be read.
pub(crate) fn follow(dir: &Path) -> Result<Option<String>, Error> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::User(format!(
                "cannot read {} (which store the node on this data dir uses): {e}; pass --store",
                path.display()
            )))
        }
    };
    match Recorded::parse(&text) {
        Some(Recorded::Sqlite) => Ok(None),
        Some(Recorded::Postgres(url)) => Ok(Some(url)),
        Some(Recorded::PostgresWithoutPassword(url)) => Err(Error::User(format!(
            "the server on the data dir {} runs on PostgreSQL ({url}) with a password, which is not \
             recorded: pass --store with its full URL (or set CONFAB_STORE)",
            dir.display()
        ))),
        None => Err(Error::User(format!(
            "{} does not say which store the node on this data dir uses: pass --store",
            path.display()
        ))),
    }
}

/// `url` without its password (in the user info or a `password=`
/// parameter), and whether it had one.
fn without_password(url: &str) -> (String, bool) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), false);
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(authority_end);
    let mut had = false;
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => {
                had = true;
                format!("{user}@{host}")
            }
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let query = query.map(|q| {
        let kept: Vec<&str> = q
            .split('&')
            .filter(|p| {
                // password=, sslpassword=, and any other *password.
                let secret = p
                    .split('=')
                    .next()
                    .is_some_and(|k| k.to_ascii_lowercase().ends_with("password"));
                had |= secret;
                !secret
            })
            .collect();
        kept.join("&")
    });
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(&q);
    }
    (out, had)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_a_password_is_recorded_whole_and_followed() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let url = "postgres://confab@db:5432/confab?sslmode=disable";
        write(dir.path(), Some(url)).expect("written");
        assert_eq!(follow(dir.path()).expect("followed").as_deref(), Some(url));
    }

    #[test]
    fn a_password_is_never_written_and_a_command_is_told_to_pass_the_store() {
        for url in [
            "postgres://confab:s3cret@db/confab",
            "postgresql://db/confab?user=confab&password=s3cret",
            "postgres://db/confab?sslmode=require&sslpassword=s3cret",
        ] {
            let dir = tempfile::tempdir().expect("a temp dir");
            write(dir.path(), Some(url)).expect("written");
            let text = std::fs::read_to_string(dir.path().join(FILE)).expect("read");
            assert!(!text.contains("s3cret"), "{text}");
            let refused = follow(dir.path()).expect_err("refused").to_string();
            assert!(refused.contains("pass --store"), "{refused}");
            assert!(refused.contains("db/confab"), "names the store: {refused}");
            assert!(!refused.contains("s3cret"), "{refused}");
        }
    }

    #[test]
    fn sqlite_or_no_record_means_the_data_dirs_sqlite_and_a_garbled_one_is_refused() {
        let dir = tempfile::tempdir().expect("a temp dir");
        assert_eq!(follow(dir.path()).expect("no record"), None);
        write(dir.path(), None).expect("written");
        assert_eq!(follow(dir.path()).expect("sqlite"), None);
        std::fs::write(dir.path().join(FILE), "mysql://x\n").expect("written");
        assert!(follow(dir.path()).is_err());
    }
}
