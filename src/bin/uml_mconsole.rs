//! `uml_mconsole`: see `man/uml_mconsole.1`; the work is done by
//! `umlkit::cli::uml_mconsole`.

fn main() -> std::process::ExitCode {
    umlkit::cli::uml_mconsole::main()
}
