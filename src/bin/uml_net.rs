//! `uml_net`: the setuid helper the UML kernel runs for
//! `eth0=tuntap,,,GATEWAY`; see `man/uml_net.1`. The work is done by
//! `umlkit::cli::uml_net`.

fn main() -> std::process::ExitCode {
    umlkit::cli::uml_net::main()
}
