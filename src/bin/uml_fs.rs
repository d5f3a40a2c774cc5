//! `uml_fs`: see `man/uml_fs.1`; the work is done by `umlkit::cli::uml_fs`.

fn main() -> std::process::ExitCode {
    umlkit::cli::uml_fs::main()
}
