//! The `cadenza` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    cadenza::cli::run(cadenza::cli::Cli::parse())
}
