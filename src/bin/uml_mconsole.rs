//! `uml_mconsole`: send commands to a running UML guest's management
//! console, or listen for its notifications. See `man/uml_mconsole.1`.

use clap::Parser;
use std::process::ExitCode;
use umlkit::mconsole::{cli, Error};

fn main() -> ExitCode {
    match cli::run(cli::Args::parse()) {
        Ok(code) => ExitCode::from(code),
        // Output cut short by a closed pipe is not a failure.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => umlkit::cli::report("uml_mconsole", &anyhow::Error::new(e), 1),
    }
}
