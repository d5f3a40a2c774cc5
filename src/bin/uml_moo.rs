//! `uml_moo`: see `man/uml_moo.1`; the work is done by `umlkit::cli::moo`.

fn main() -> std::process::ExitCode {
    umlkit::cli::moo::main()
}
