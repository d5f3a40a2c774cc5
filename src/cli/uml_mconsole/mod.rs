//! `uml_mconsole`: the command line (spec §6). One-shot commands, the
//! interactive prompt, `--json` output, and `--listen` for notifications.
//! `src/bin/uml_mconsole.rs` calls [`main`].

pub mod session;
pub mod texts;

use crate::mconsole::client::{Client, Reply};
use crate::mconsole::listen::{deadline, json_line, text_line, Listener};
use crate::mconsole::Error;
use clap::Parser;
use session::{join_words, Output, Session};
use std::ffi::OsString;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The original client's usage line (printed, exit 1, without arguments).
pub const USAGE: &str = "Usage : uml_mconsole socket-name [command]";

/// The reply timeout when `--timeout` is not given.
pub const DEFAULT_TIMEOUT: f64 = 10.0;

/// Command-line arguments of `uml_mconsole`.
#[derive(Debug, Parser)]
#[command(
    name = "uml_mconsole",
    about = "Control a running User-Mode Linux guest through its management console",
    override_usage = "uml_mconsole [--json] [--timeout SECONDS] UMID|SOCKET [COMMAND...]\n       \
                      uml_mconsole [--json] [--timeout SECONDS] [--count N] --listen SOCKET"
)]
pub struct Args {
    /// Print one JSON object per command line (or notification) instead of
    /// OK/ERR lines; no prompt in interactive mode.
    ///
    /// The fields: command (the line), ok (true when the guest accepted it
    /// and the client did not fail), status (the exit status the line
    /// gives), err (the guest's error number: 0, 1 or a negative errno),
    /// reply (the text, including what a local command prints) and error
    /// (the client's own error message, or null). With --listen, one object
    /// per notification with the fields type, number and data.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for each reply datagram, 0 for ever [default: 10];
    /// with --listen, how long to wait for notifications (default: for ever).
    ///
    /// A reply that does not come in time fails with "no reply from ...
    /// within SECONDS s" (the original waited for ever). With --listen, no
    /// notification within SECONDS ends the program with status 1.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// Bind a notification socket at SOCKET (for guests booted with
    /// mconsole=notify:SOCKET) and print each notification as it arrives.
    ///
    /// Receives notifications instead of sending commands; see
    /// Notifications above.
    #[arg(long, value_name = "SOCKET", conflicts_with = "target")]
    pub listen: Option<PathBuf>,
    /// With --listen: exit 0 after N notifications.
    #[arg(long, value_name = "N", requires = "listen")]
    pub count: Option<u64>,
    /// The guest: a umid (found as ~/.uml/UMID/mconsole or
    /// /tmp/uml/UMID/mconsole) or the path of its mconsole socket.
    #[arg(value_name = "UMID|SOCKET")]
    pub target: Option<OsString>,
    /// A command for the guest (words joined by spaces); without one,
    /// commands are read from standard input.
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

/// Prints results as the original client: `OK <text>` / `ERR <text>`.
struct Text<W: Write> {
    out: W,
}

impl<W: Write> Output for Text<W> {
    fn reply(&mut self, _command: &[u8], reply: &Reply) -> io::Result<()> {
        // The original prints the last part's err (spec §6.5).
        let tag: &[u8] = if reply.final_err != 0 {
            b"ERR "
        } else {
            b"OK "
        };
        self.out.write_all(tag)?;
        self.out.write_all(&reply.text)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
    fn local(&mut self, text: &[u8]) -> io::Result<()> {
        self.out.write_all(text)?;
        self.out.flush()
    }
    fn error(&mut self, error: &Error) -> io::Result<()> {
        eprintln!("uml_mconsole: {error}");
        Ok(())
    }
}

/// Prints one JSON object per command line: the command, `ok`, the exit
/// status, the guest's `err`, the reply text, and the client's error.
struct Json<W: Write> {
    out: W,
    text: Vec<u8>,
    err: i32,
    error: Option<String>,
}

impl<W: Write> Output for Json<W> {
    fn reply(&mut self, _command: &[u8], reply: &Reply) -> io::Result<()> {
        if self.err == 0 {
            self.err = reply.errno();
        }
        self.text.extend_from_slice(&reply.text);
        Ok(())
    }
    fn local(&mut self, text: &[u8]) -> io::Result<()> {
        self.text.extend_from_slice(text);
        Ok(())
    }
    fn error(&mut self, error: &Error) -> io::Result<()> {
        self.error.get_or_insert_with(|| error.to_string());
        Ok(())
    }
    fn end(&mut self, line: &[u8], status: u8) -> io::Result<()> {
        let value = serde_json::json!({
            "command": String::from_utf8_lossy(line),
            "ok": self.err == 0 && self.error.is_none(),
            "status": status,
            "err": self.err,
            "reply": String::from_utf8_lossy(&self.text),
            "error": self.error.take(),
        });
        self.text.clear();
        self.err = 0;
        writeln!(self.out, "{value}")?;
        self.out.flush()
    }
}

/// Parses `--timeout`: a number of seconds, 0 up to a million.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1e6).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds from 0 to 1000000"
        )),
    }
}

fn timeout(secs: Option<f64>, default: Option<f64>) -> Option<Duration> {
    secs.or(default)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// Runs `uml_mconsole` with the process's arguments.
pub fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => ExitCode::from(code),
        // Output cut short by a closed pipe is success (see `report`).
        Err(e) => crate::cli::report("uml_mconsole", &anyhow::Error::new(e), 1),
    }
}

/// Runs `uml_mconsole` and returns its exit status. Failures of single
/// commands are printed and give their status; an `Err` is a failure of
/// the whole run (writing the output, binding the listener).
pub fn run(args: Args) -> Result<u8, Error> {
    if let Some(path) = &args.listen {
        return listen(path, args.count, timeout(args.timeout, None), args.json);
    }
    let Some(target) = &args.target else {
        eprintln!("{USAGE}");
        return Ok(1);
    };
    let client = Client::new(timeout(args.timeout, Some(DEFAULT_TIMEOUT)))?;
    let mut session = Session::new(client, target);
    let stdout = io::stdout().lock();
    let mut output: Box<dyn Output> = if args.json {
        Box::new(Json {
            out: stdout,
            text: Vec::new(),
            err: 0,
            error: None,
        })
    } else {
        Box::new(Text { out: stdout })
    };
    let out = output.as_mut();
    let wrap = |e: io::Error| Error::io("cannot write", "standard output", e);
    if !args.command.is_empty() {
        let status = session
            .execute(&join_words(&args.command), out)
            .map_err(wrap)?;
        return Ok(status.code);
    }
    interactive(&mut session, out, !args.json).map_err(wrap)
}

/// The prompt loop: `(<name>) `, one command per line, until EOF (a
/// newline is printed) or `quit`. As the original's readline does when
/// standard input is not a terminal, the line read is echoed after the
/// prompt.
fn interactive(session: &mut Session, out: &mut dyn Output, prompt: bool) -> io::Result<u8> {
    let stdin = io::stdin();
    if prompt && stdin.is_terminal() && io::stdout().is_terminal() {
        return interactive_tty(session, out);
    }
    let echo = prompt && !stdin.is_terminal();
    let mut input = stdin.lock();
    let mut line = Vec::new();
    loop {
        if prompt {
            out.local(&session.prompt())?;
        }
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            if prompt {
                out.local(b"\n")?;
            }
            return Ok(0);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if echo {
            line.push(b'\n');
            out.local(&line)?;
            line.pop();
        }
        let status = session.execute(&line, out)?;
        if status.exit {
            return Ok(status.code);
        }
    }
}

/// The prompt loop on a terminal, through a line editor as the original's
/// readline: editing keys, and the commands typed so far on the up and
/// down arrows. Ctrl-C ends the program by SIGINT, as readline does.
fn interactive_tty(session: &mut Session, out: &mut dyn Output) -> io::Result<u8> {
    use rustyline::error::ReadlineError;
    let mut editor = rustyline::DefaultEditor::new().map_err(io::Error::other)?;
    loop {
        let prompt = String::from_utf8_lossy(&session.prompt()).into_owned();
        match editor.readline(&prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                let status = session.execute(line.as_bytes(), out)?;
                if status.exit {
                    return Ok(status.code);
                }
            }
            Err(ReadlineError::Eof) => {
                out.local(b"\n")?;
                return Ok(0);
            }
            Err(ReadlineError::Interrupted) => {
                let sig = nix::sys::signal::Signal::SIGINT;
                let _ = crate::sys::process::default_action(sig);
                let _ = nix::sys::signal::raise(sig);
                return Ok(130);
            }
            Err(e) => return Err(io::Error::other(e)),
        }
    }
}

/// `--listen`: prints each notification until `count` arrived or no
/// notification came within `timeout`.
fn listen(
    path: &std::path::Path,
    count: Option<u64>,
    timeout: Option<Duration>,
    json: bool,
) -> Result<u8, Error> {
    let listener = Listener::bind(path)?;
    let mut out = io::stdout().lock();
    let mut seen = 0u64;
    while count.is_none_or(|c| seen < c) {
        let Some(received) = listener.next(deadline(timeout))? else {
            let secs = timeout.map_or(0.0, |t| t.as_secs_f64());
            return Err(Error::NoNotification {
                path: path.to_path_buf(),
                secs,
            });
        };
        match received {
            Ok(n) => {
                let line = if json { json_line(&n) } else { text_line(&n) };
                out.write_all(line.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| Error::io("cannot write", "standard output", e))?;
                seen += 1;
            }
            Err(e) => eprintln!(
                "uml_mconsole: ignoring a malformed notification on {}: {e}",
                path.display()
            ),
        }
    }
    Ok(0)
}
