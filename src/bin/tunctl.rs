//! `tunctl`: see `man/tunctl.1`; the work is done by `umlkit::cli::tunctl`.

fn main() -> std::process::ExitCode {
    umlkit::cli::tunctl::main()
}
