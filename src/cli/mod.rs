//! Every front end: each tool's argument parsing, help
//! text, error reporting (one [`report()`] for all) and exit codes, and the
//! pieces they share (progress bars, clap's usage errors). This is the only
//! module that uses clap and anyhow; `src/bin/<tool>.rs` calls
//! `umlkit::cli::<tool>::main()` and nothing else.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

/// A progress bar on standard error when it is a terminal and the user did
/// not ask for quiet; hidden otherwise.
pub fn progress_bar(total: u64, quiet: bool, message: &str) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

pub mod cow_tool;
pub mod linux;
pub mod mkcow;
pub mod moo;
pub mod port_helper;
pub mod report;
pub mod tunctl;
pub mod uml_fs;
pub mod uml_lab;
pub mod uml_mconsole;
pub mod uml_net;
pub mod uml_switch;
pub mod uml_watchdog;

pub use report::report;

/// The argument tables of the tools that parse with clap (`uml_cow`,
/// `uml_fs`, `uml_mconsole`, `uml_mkcow`, `uml_moo`), from which
/// `examples/gen-docs.rs` writes the shell completions in `completions/`
/// and the NAME, SYNOPSIS and OPTIONS of their pages in `man/` (and
/// `tests/manpages.rs` checks they are current): the doc comments of the
/// flags are the pages' OPTIONS section. The tools that keep their original
/// getopt syntax (`tunctl`, `uml_switch`, `uml_net`, `linux`) have
/// hand-written pages instead.
pub fn clap_commands() -> Vec<clap::Command> {
    use clap::CommandFactory;
    vec![
        cow_tool::Args::command(),
        uml_fs::Args::command(),
        uml_mconsole::Args::command(),
        mkcow::Args::command(),
        moo::Args::command(),
        uml_lab::Args::command(),
    ]
}

/// Prints a clap error; help and version go to stdout with status 0, usage
/// errors to stderr with `code` (the original tools' status).
pub fn usage_error(error: clap::Error, code: u8) -> ExitCode {
    use clap::error::ErrorKind;
    let _ = error.print();
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => ExitCode::from(code),
    }
}

/// The name this program was run as (`argv[0]`, for usage texts), or
/// `default`, and the remaining arguments.
pub fn program_and_args(default: &str) -> (String, Vec<std::ffi::OsString>) {
    let mut argv = std::env::args_os();
    let prog = argv
        .next()
        .map_or_else(|| default.to_string(), |p| p.to_string_lossy().into_owned());
    (prog, argv.collect())
}
