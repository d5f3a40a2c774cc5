//! `uml_cow`: see `man/uml_cow.1`; the work is done by `umlkit::cli::cow_tool`.

fn main() -> std::process::ExitCode {
    umlkit::cli::cow_tool::main()
}
