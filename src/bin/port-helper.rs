//! `port-helper`: hands its terminal to a UML kernel for `port:` and
//! `xterm` consoles; see `man/port-helper.1`. The work is done by
//! `umlkit::cli::port_helper`.

fn main() -> std::process::ExitCode {
    umlkit::cli::port_helper::main()
}
