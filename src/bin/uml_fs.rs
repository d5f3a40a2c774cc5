//! `uml_fs`: see `man/uml_fs.1`; the work is done by `umlkit::ext3::tool`.

fn main() -> std::process::ExitCode {
    umlkit::ext3::tool::main()
}
