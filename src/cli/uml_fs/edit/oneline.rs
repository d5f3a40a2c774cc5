//! Error lines that name each cause once. The library's errors print their
//! source in their own message and also return it as `source()` (so the
//! cause is not lost to callers that only walk the chain); `{:#}` would
//! print it twice. These helpers flatten a chain into one line.

use crate::cow::CowError;
use std::error::Error;
use std::io;

/// Why a disk could not be opened: `PATH: cannot open[ for writing]: REASON`.
pub fn open_error(error: CowError, writing: bool) -> anyhow::Error {
    let purpose = if writing { " for writing" } else { "" };
    match error {
        CowError::Io { path, op, source } => {
            anyhow::anyhow!("{}: {op}{purpose}: {}", path.display(), reason(&source))
        }
        e => anyhow::anyhow!("{}", one_line(&e)),
    }
}

/// The C library's description of an I/O error (as `chmod` and `rm`
/// print it), without `(os error N)`.
pub fn reason(error: &io::Error) -> String {
    without_os_error(&error.to_string())
}

/// `error` and its causes as one line, leaving out a cause whose text is
/// already in the line.
pub fn one_line(error: &(dyn Error + 'static)) -> String {
    let mut line = String::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = match e.downcast_ref::<io::Error>() {
            Some(io) => reason(io),
            None => without_os_error(&e.to_string()),
        };
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        next = e.source();
    }
    line
}

/// Drops the ` (os error N)` that `io::Error` adds to a message.
fn without_os_error(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(" (os error ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + " (os error ".len()..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && tail.as_bytes().get(digits) == Some(&b')') {
            rest = &tail[digits + 1..];
        } else {
            out.push_str(" (os error ");
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn missing() -> io::Error {
        io::Error::from_raw_os_error(2)
    }

    #[test]
    fn an_open_failure_names_the_file_and_the_reason_once() {
        let e = CowError::io(Path::new("755"), "cannot open", missing());
        assert_eq!(
            format!("{:#}", open_error(e, true)),
            "755: cannot open for writing: No such file or directory"
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let e = CowError::io(Path::new("a.cow"), "cannot read header", missing());
        let e = anyhow::Error::new(e).context("a.cow,root_fs");
        assert_eq!(
            one_line(e.as_ref()),
            "a.cow,root_fs: a.cow: cannot read header: No such file or directory"
        );
        assert_eq!(without_os_error("x (os error 5): y"), "x: y");
        assert_eq!(without_os_error("x (os error ?)"), "x (os error ?)");
    }
}
