//! `uml_net`: the setuid helper the UML kernel runs for `eth0=tuntap,,,GATEWAY`
//! (see man/uml_net.1).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.first().is_some_and(|a| a == "--help") {
        print!("{}", umlkit::tun::uml_net_help());
        return ExitCode::SUCCESS;
    }
    ExitCode::from(u8::try_from(umlkit::tun::uml_net::run(&args)).unwrap_or(1))
}
