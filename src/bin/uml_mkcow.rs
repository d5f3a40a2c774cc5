//! `uml_mkcow`: see `man/uml_mkcow.1`; the work is done by `umlkit::cli::mkcow`.

fn main() -> std::process::ExitCode {
    umlkit::cli::mkcow::main()
}
