//! The `cadenza` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    match cadenza::cli::Cli::try_parse() {
        Ok(cli) => cadenza::cli::run(cli),
        Err(error) => cadenza::cli::refuse(&error),
    }
}
