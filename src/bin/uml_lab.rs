//! `uml_lab`: see `man/uml_lab.1`; the work is done by
//! `umlkit::cli::uml_lab` and `umlkit::lab`.

fn main() -> std::process::ExitCode {
    umlkit::cli::uml_lab::main()
}
