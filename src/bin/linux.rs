//! `linux`: the UML guest kernel as a user-mode machine monitor; see
//! `man/linux.1`. The work is done by `umlkit::kernel`.

use umlkit::kernel::{cmdline, help_text, monitor, RELEASE, SHOWCONFIG};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = match cmdline::parse_os(&args) {
        Ok(cmdline::Invocation::Help) => {
            print!("{}", help_text());
            0
        }
        Ok(cmdline::Invocation::Version) => {
            println!("{RELEASE}");
            0
        }
        Ok(cmdline::Invocation::ShowConfig) => {
            println!("{SHOWCONFIG}");
            0
        }
        Ok(cmdline::Invocation::Boot(cmd)) => match monitor::run(&cmd) {
            Ok(status) => status,
            Err(e) => {
                eprintln!("linux: {e:#}");
                1
            }
        },
        Err(e) => {
            eprintln!("linux: {e}");
            1
        }
    };
    std::process::exit(code);
}
