//! The one place the binaries turn an error into what the user sees: one
//! line `tool: what: why` on standard error and the documented exit code.
//! A broken pipe (the reader of standard output went away, as with
//! `uml_cow info X | head -1`) is not a failure: the tool stops quietly
//! with status 0, as `ripgrep` does. Rust ignores `SIGPIPE`, so output is
//! written with `writeln!` on a locked standard output and its errors are
//! returned to here rather than printed with `println!`, which panics.

use std::process::ExitCode;

/// True when an [`std::io::ErrorKind::BrokenPipe`] appears anywhere in the
/// chain of `error`'s causes.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `error` as one line: its message and its causes joined by `": "`, a
/// cause left out when the line already ends with it (library errors that
/// quote their source in their own message).
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line.replace('\n', " ")
}

/// Prints `error` as one line prefixed by the program name and returns the
/// exit code `code`; a broken pipe anywhere in the chain is success.
pub fn report(program: &str, error: &anyhow::Error, code: u8) -> ExitCode {
    if is_broken_pipe(error) {
        return ExitCode::SUCCESS;
    }
    eprintln!("{program}: {}", one_line(error));
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use std::io;

    #[test]
    fn a_broken_pipe_deep_in_the_chain_is_recognised() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("writing the listing")
            .context("uml_cow info");
        assert!(is_broken_pipe(&e));
        let wrapped = crate::cow::CowError::io(
            std::path::Path::new("x"),
            "cannot write",
            io::Error::from(io::ErrorKind::BrokenPipe),
        );
        assert!(is_broken_pipe(&anyhow::Error::new(wrapped)));
        let mconsole = crate::mconsole::Error::io(
            "writing",
            "stdout",
            io::Error::from(io::ErrorKind::BrokenPipe),
        );
        assert!(is_broken_pipe(&anyhow::Error::new(mconsole)));
        let other = anyhow::Error::new(io::Error::from(io::ErrorKind::NotFound)).context("x");
        assert!(!is_broken_pipe(&other));
    }

    #[test]
    fn the_line_joins_causes_once_each() {
        let e = anyhow::Error::new(crate::cow::CowError::io(
            std::path::Path::new("a.cow"),
            "cannot open",
            io::Error::from_raw_os_error(2),
        ));
        let line = one_line(&e);
        assert_eq!(line.matches("No such file").count(), 1, "{line}");
        assert!(line.starts_with("a.cow: cannot open"), "{line}");
        let r: anyhow::Result<()> =
            Err(io::Error::from_raw_os_error(13)).context("cannot create x");
        let line = one_line(&r.unwrap_err());
        assert!(
            line.starts_with("cannot create x: Permission denied"),
            "{line}"
        );
    }
}
