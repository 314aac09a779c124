//! `confab-server`: see `confab-server --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = confab_net::cli::Cli::parse();
    match confab_net::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("confab-server: {e}");
            ExitCode::FAILURE
        }
    }
}
