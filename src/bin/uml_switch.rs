//! `uml_switch`: the virtual Ethernet switch for UML guests (see man/uml_switch.1).

use std::process::ExitCode;
use umlkit::switch::{args, daemon};

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let prog = argv
        .next()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "uml_switch".into());
    let rest: Vec<_> = argv.collect();
    let args = match args::parse(&prog, &rest) {
        Ok(a) => a,
        Err(args::ArgsError::Help) => {
            print!("{}", args::help(&prog));
            return ExitCode::SUCCESS;
        }
        Err(args::ArgsError::Usage) => {
            eprint!("{}", args::usage(&prog));
            return ExitCode::from(1);
        }
    };
    let result = daemon::Daemon::start(&args, &prog).and_then(|mut d| d.run());
    match result {
        Ok(daemon::Exit::Eof) => ExitCode::SUCCESS,
        Ok(daemon::Exit::Signal(sig)) => {
            daemon::die_by(sig);
            ExitCode::from(128 + sig as u8)
        }
        Err(e) => {
            eprintln!("uml_switch: {:#}", anyhow::Error::new(e));
            ExitCode::from(1)
        }
    }
}
