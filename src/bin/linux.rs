//! `linux`: the UML guest kernel as a user-mode machine monitor; see
//! `man/linux.1`. The work is done by `umlkit::cli::linux`.

fn main() -> std::process::ExitCode {
    umlkit::cli::linux::main()
}
