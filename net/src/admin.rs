//! `confab-server user ...`: account management on the data dir directly.

use std::io::{self, IsTerminal};

use confab_engine::{DeviceId, Name, Password, ProtocolError};

use crate::auth::HashParams;
use crate::cli::{PasswordArg, UserCommand};
use crate::store::Store;
use crate::Error;

/// Runs one account command, printing its result on stdout; the devices
/// it revoked (for the running server to close their sessions).
pub fn run(
    store: &mut dyn Store,
    params: &HashParams,
    command: UserCommand,
) -> Result<Vec<DeviceId>, Error> {
    let mut revoked = Vec::new();
    match command {
        UserCommand::Add { name, password } => {
            if store.account(&name)?.is_some() {
                return Err(Error::User(format!("the name {name} is taken")));
            }
            let hash = params.hash(&password_for(&name, password)?)?;
            if !store.create_account(&name, &hash)? {
                return Err(Error::User(format!("the name {name} is taken")));
            }
            println!("added user {name}");
        }
        UserCommand::Del { name } => {
            let canonical = existing(store, &name)?;
            store.delete_account(&canonical)?;
            println!("deleted user {canonical}");
        }
        UserCommand::Passwd {
            name,
            password,
            keep_devices,
        } => {
            let canonical = existing(store, &name)?;
            let hash = params.hash(&password_for(&canonical, password)?)?;
            if !store.set_password(&canonical, &hash)? {
                return Err(no_such_user(&name));
            }
            println!("changed the password of {canonical}");
            if !keep_devices {
                revoked = store.revoke_devices(&canonical)?;
                println!("revoked {} devices of {canonical}", revoked.len());
            }
        }
        UserCommand::Devices { name } => {
            let canonical = existing(store, &name)?;
            for d in store.devices(&canonical)? {
                let token = store
                    .device_by_name(&canonical, &d.name)?
                    .is_some_and(|s| s.token_hash.is_some());
                println!(
                    "{}\tcreated {}\tlast seen {}\t{}",
                    d.name,
                    utc(d.created_ms),
                    utc(d.last_seen_ms),
                    if token {
                        "token valid"
                    } else {
                        "no valid token"
                    }
                );
            }
        }
        UserCommand::Revoke { name, device } => {
            let canonical = existing(store, &name)?;
            let named = store
                .device_by_name(&canonical, &device)?
                .map_or(device, |d| d.record.name);
            match store.revoke_device(&canonical, &named)? {
                Some(id) => {
                    println!("revoked device {named} ({id}) of {canonical}");
                    revoked.push(id);
                }
                None => return Err(Error::User(format!("{canonical} has no device {device}"))),
            }
        }
        UserCommand::List => {
            for name in store.accounts()? {
                println!("{name}");
            }
        }
        // Roles are SQLite's alone (see `crate::ops`); `crate::run` sends
        // these there.
        UserCommand::Op { .. } | UserCommand::Deop { .. } => {
            return Err(Error::User(
                "operator roles are kept in the SQLite data dir only".into(),
            ))
        }
    }
    Ok(revoked)
}

/// `ms` since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm), for dates after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn no_such_user(name: &Name) -> Error {
    Error::User(format!("there is no user {name}"))
}

/// The registered spelling of `name`, or an error if there is no such account.
fn existing(store: &mut dyn Store, name: &Name) -> Result<Name, Error> {
    match store.account(name)? {
        Some(a) => Ok(a.name),
        None => Err(no_such_user(name)),
    }
}

/// The password from `--password`/`CONFAB_PASSWORD`, or asked for twice on
/// the terminal.
fn password_for(name: &Name, arg: PasswordArg) -> Result<String, Error> {
    let password = match arg.password {
        Some(p) => p,
        None if io::stdin().is_terminal() => {
            let first = rpassword::prompt_password(format!("password for {name}: "))
                .map_err(|e| Error::User(format!("cannot read the password: {e}")))?;
            let again = rpassword::prompt_password("again: ")
                .map_err(|e| Error::User(format!("cannot read the password: {e}")))?;
            if first != again {
                return Err(Error::User("the passwords differ".into()));
            }
            first
        }
        None => {
            return Err(Error::User(
                "no password given: use --password, set CONFAB_PASSWORD, or run on a terminal"
                    .into(),
            ))
        }
    };
    if Password::new(&password).is_none() {
        return Err(Error::User(ProtocolError::BadPassword.to_string()));
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn times_print_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14 22:13:20 UTC");
    }
}
