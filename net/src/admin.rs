//! `confab-server user ...`: account management on the data dir directly.

use std::io::{self, IsTerminal};

use confab_engine::{Name, Password, ProtocolError};

use crate::auth::HashParams;
use crate::cli::{PasswordArg, UserCommand};
use crate::store::Store;
use crate::Error;

/// Runs one account command, printing its result on stdout.
pub fn run(store: &mut dyn Store, params: &HashParams, command: UserCommand) -> Result<(), Error> {
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
        UserCommand::Passwd { name, password } => {
            let canonical = existing(store, &name)?;
            let hash = params.hash(&password_for(&canonical, password)?)?;
            if !store.set_password(&canonical, &hash)? {
                return Err(no_such_user(&name));
            }
            println!("changed the password of {canonical}");
        }
        UserCommand::List => {
            for name in store.accounts()? {
                println!("{name}");
            }
        }
    }
    Ok(())
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
