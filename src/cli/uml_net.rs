//! `uml_net`'s front end: `--help`, and the exit status of
//! [`crate::net::uml_net::run`]. The rest of its argv is the protocol the
//! UML kernel speaks (parsed by `crate::net::request`).

use std::process::ExitCode;

/// The only option: `--help` (new); everything else on the command line is
/// the kernel's request. `tests/manpages.rs` checks uml_net.1 documents it.
pub const OPTIONS: &[&str] = &["--help"];

/// `uml_net --help`: the sub-commands the kernel sends.
pub fn help() -> String {
    "Usage: uml_net 4 tuntap up GATEWAY       (fd 1: a datagram socket; the TAP fd comes back on it)\n\
     \x20      uml_net 4 add DEV ADDR NETMASK     (host route and proxy ARP for a guest address)\n\
     \x20      uml_net 4 del DEV ADDR NETMASK     (undo add)\n\
     \x20      uml_net 4 tuntap add|del DEV ADDR NETMASK\n\
     \x20      uml_net --help\n\n\
     Options:\n\
     \x20 --help   print this help and exit\n\n\
     uml_net is run by the UML kernel (eth0=tuntap,,,GATEWAY) and installed setuid root;\n\
     DEV must be a TAP device owned by the calling user.\n"
        .to_string()
}

/// Runs `uml_net` with the process's arguments (see man/uml_net.1).
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.first().is_some_and(|a| OPTIONS.contains(&a.as_str())) {
        print!("{}", help());
        return ExitCode::SUCCESS;
    }
    ExitCode::from(u8::try_from(crate::net::uml_net::run(&args)).unwrap_or(1))
}
