//! `--config FILE`: a TOML file of settings, one per command-line option,
//! named as the option without its dashes (`max-body = 2048`, also
//! `max_body`): the command line and the environment win over the file,
//! the file over the defaults. Flags take `true` or `false`.
//!
//! Every error is reported with its line (`FILE:LINE: what`), all of
//! them at once, by `confab-server check-config FILE`, at start, and by a
//! reload, which then keeps the settings in force.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches};
use toml::Spanned;

use crate::cli::Cli;

/// Settings a running server cannot change: a reload reports them as
/// needing a restart.
pub const NEEDS_RESTART: &[&str] = &[
    "listen",
    "data-dir",
    "store",
    "bus",
    "metrics-listen",
    "web-listen",
    "web-allowed-origin",
    "threads",
    "auth-threads",
    "auth-queue",
    "auth-queue-per-source",
    "write-queue",
    "sync",
    "hash-memory-kib",
    "hash-passes",
    "retention-count",
    "retention-days",
    "tls-self-signed",
    "insecure-plaintext",
    "room-log-ids",
    "roster-log",
    "lockout-after",
    "lockout-account-after",
    "lockout-secs",
    "register-source-burst",
    "register-source-every",
    "register-server-burst",
    "register-server-every",
    "shutdown-timeout",
];

/// One setting of the file, as command-line arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The option's long name.
    pub key: String,
    /// `--key value`, `--key`, or nothing (a flag set to false).
    pub args: Vec<String>,
}

/// The settings of `path`, or every error in it as `FILE:LINE: what`.
pub fn read(path: &Path) -> Result<Vec<Setting>, Vec<String>> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("{shown}: cannot read the config file: {e}")])?;
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let table: BTreeMap<Spanned<String>, Spanned<toml::Value>> =
        toml::from_str(&text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(s.start));
            let message = e.message().trim().to_owned();
            vec![format!("{shown}:{line}: {message}")]
        })?;
    let command = Cli::command();
    let mut settings = Vec::new();
    let mut errors = Vec::new();
    for (key, value) in &table {
        let line = line_of(key.span().start);
        let name = key.get_ref().replace('_', "-");
        match setting(&command, &name, value.get_ref()) {
            Ok(s) => settings.push(s),
            Err(e) => errors.push(format!("{shown}:{line}: {}: {e}", key.get_ref())),
        }
    }
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(errors)
    }
}

fn setting(command: &clap::Command, name: &str, value: &toml::Value) -> Result<Setting, String> {
    if matches!(name, "config" | "help" | "version") {
        return Err("cannot be set in the config file".to_owned());
    }
    let arg = command
        .get_arguments()
        .find(|a| a.get_long() == Some(name))
        .ok_or_else(|| "no such setting (see confab-server --help)".to_owned())?;
    let flag = matches!(arg.get_action(), ArgAction::SetTrue);
    let option = format!("--{name}");
    let args = match (value, flag) {
        (toml::Value::Boolean(true), true) => vec![option],
        (toml::Value::Boolean(false), true) => Vec::new(),
        (_, true) => return Err("takes true or false".to_owned()),
        (toml::Value::String(s), false) => vec![option, s.clone()],
        (toml::Value::Integer(n), false) => vec![option, n.to_string()],
        (toml::Value::Float(x), false) => vec![option, x.to_string()],
        (toml::Value::Boolean(b), false) => vec![option, b.to_string()],
        (other, false) => return Err(format!("takes a single value, not a {}", other.type_str())),
    };
    // The value alone, checked as the command line checks it.
    let mut argv = vec!["confab-server".to_owned()];
    argv.extend(args.iter().cloned());
    if let Err(e) = Cli::command().try_get_matches_from(&argv) {
        use clap::error::ErrorKind::*;
        if !matches!(e.kind(), MissingRequiredArgument | ArgumentConflict) {
            return Err(clap_message(&e));
        }
    }
    Ok(Setting {
        key: name.to_owned(),
        args,
    })
}

/// The first line of a clap error, without `error: `.
pub fn clap_message(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid");
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// The command line `args` (the program name first) with `--config
/// FILE`'s settings under it: the command line and the environment win.
/// Errors: the file's, one per line, or the merged command line's.
pub fn cli(args: &[OsString]) -> Result<Cli, Vec<String>> {
    let matches = Cli::command()
        .try_get_matches_from(args)
        .unwrap_or_else(|e| e.exit());
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let Some(file) = cli.serve.config.clone() else {
        return Ok(cli);
    };
    let settings = read(&file)?;
    let command = Cli::command();
    let mut merged: Vec<OsString> = args.iter().take(1).cloned().collect();
    for s in settings {
        let given = command
            .get_arguments()
            .find(|a| a.get_long() == Some(s.key.as_str()))
            .and_then(|a| matches.value_source(a.get_id().as_str()));
        if matches!(
            given,
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        merged.extend(s.args.into_iter().map(OsString::from));
    }
    merged.extend(args.iter().skip(1).cloned());
    let matches = Cli::command()
        .try_get_matches_from(&merged)
        .map_err(|e| vec![format!("{}: {}", file.display(), clap_message(&e))])?;
    let cli = Cli::from_arg_matches(&matches)
        .map_err(|e| vec![format!("{}: {}", file.display(), clap_message(&e))])?;
    cli.serve
        .check()
        .map_err(|e| vec![format!("{}: {}", file.display(), clap_message(&e))])?;
    Ok(cli)
}

/// `confab-server check-config FILE`: every error in the file, or none.
pub fn check(file: &Path) -> Vec<String> {
    let args: Vec<OsString> = vec!["confab-server".into(), "--config".into(), file.into()];
    match cli(&args) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    }
}

#[cfg(test)]
mod tests;
