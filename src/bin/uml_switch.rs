//! `uml_switch`: see `man/uml_switch.1`; the work is done by
//! `umlkit::cli::uml_switch`.

fn main() -> std::process::ExitCode {
    umlkit::cli::uml_switch::main()
}
