//! `uml_watchdog`: see `man/uml_watchdog.1`; the work is done by
//! `umlkit::cli::uml_watchdog`.

fn main() -> std::process::ExitCode {
    umlkit::cli::uml_watchdog::main()
}
