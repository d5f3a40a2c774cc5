//! `tunctl`: create and delete persistent TAP interfaces (see man/tunctl.1).

use std::process::ExitCode;
use umlkit::tun::{tunctl, tunctl_args};

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let prog = argv
        .next()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tunctl".into());
    let rest: Vec<_> = argv.collect();
    let args = match tunctl_args::parse(&rest) {
        Ok(a) => a,
        Err(tunctl_args::ArgsError::Help) => {
            print!("{}", tunctl_args::help(&prog));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            match e {
                tunctl_args::ArgsError::Getopt(m) => eprintln!("{prog}: {m}"),
                tunctl_args::ArgsError::Message(m) => eprintln!("{m}"),
                _ => {}
            }
            eprint!("{}", tunctl_args::usage(&prog));
            return ExitCode::from(1);
        }
    };
    match tunctl::run(&args, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tunctl: {:#}", anyhow::Error::new(e));
            ExitCode::from(1)
        }
    }
}
