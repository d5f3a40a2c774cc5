//! What `uml_mconsole` does with one command line (spec §6.4, §6.5): the
//! local commands of the original client (`quit`, `help`, `switch`, `log`,
//! `mconsole-version`, `int`), matched by prefix in its order, and every
//! other line sent to the guest, with `config ubd...` file names made
//! absolute first. Results go to an [`Output`], which prints them as the
//! original did or as JSON.

use super::texts::{CLIENT_VERSION, LOCAL_HELP, LOG_CHUNK, NO_PID};
use crate::mconsole::client::{Client, Reply};
use crate::mconsole::umid::{pid_state, prompt_name, resolve, PidState, NO_NAME};
use crate::mconsole::Error;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where the results of commands go.
pub trait Output {
    /// A reply from the guest to `command`.
    fn reply(&mut self, command: &[u8], reply: &Reply) -> io::Result<()>;
    /// Text a local command prints (bytes: names may not be UTF-8).
    fn local(&mut self, text: &[u8]) -> io::Result<()>;
    /// A failure of the client itself (the command goes on where the
    /// original did).
    fn error(&mut self, error: &Error) -> io::Result<()>;
    /// The end of one command line, with its exit status.
    fn end(&mut self, _line: &[u8], _status: u8) -> io::Result<()> {
        Ok(())
    }
}

/// How a command line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The exit status it gives in one-shot mode.
    pub code: u8,
    /// `quit`, or a failure after which the original client exits.
    pub exit: bool,
}

impl Status {
    fn code(code: u8) -> Status {
        Status { code, exit: false }
    }
}

/// The current guest and the client socket.
#[derive(Debug)]
pub struct Session {
    client: Client,
    name: Vec<u8>,
    target: Option<PathBuf>,
    unresolved: Option<Error>,
    last_failed: bool,
}

/// The C library's `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_space(b)).count();
    &s[n..]
}

impl Session {
    /// A session on the guest named `name` (a umid or a socket path),
    /// resolved as the original client does. A name that resolves to
    /// nothing is reported when a command needs the guest.
    pub fn new(client: Client, name: &OsStr) -> Session {
        let mut session = Session {
            client,
            name: NO_NAME.as_bytes().to_vec(),
            target: None,
            unresolved: None,
            last_failed: false,
        };
        if let Err(e) = session.switch(name) {
            session.unresolved = Some(e);
        }
        session
    }

    /// The prompt of interactive mode: `(<name>) `.
    pub fn prompt(&self) -> Vec<u8> {
        [b"(", self.name.as_slice(), b") "].concat()
    }

    /// The socket commands go to, if one was found.
    pub fn target(&self) -> Option<&Path> {
        self.target.as_deref()
    }

    fn switch(&mut self, name: &OsStr) -> Result<(), Error> {
        let found = resolve(name);
        match found.socket {
            Some(socket) => {
                self.target = Some(socket);
                self.name = prompt_name(name);
                self.unresolved = None;
                Ok(())
            }
            None => {
                let tried: Vec<String> = found
                    .tried
                    .iter()
                    .map(|(p, _)| p.display().to_string())
                    .collect();
                let why = found
                    .tried
                    .last()
                    .map(|(_, why)| why.as_str())
                    .unwrap_or("not found");
                // A pid file beside a missing socket says more.
                let pid_note = found
                    .tried
                    .iter()
                    .filter_map(|(p, _)| p.parent())
                    .find_map(|dir| match pid_state(dir) {
                        PidState::Dead(pid) => Some(format!(
                            "; {} names pid {pid}, which does not exist: the guest is gone",
                            dir.join("pid").display()
                        )),
                        PidState::Alive(pid) => Some(format!(
                            "; pid {pid} from {} runs but has no mconsole socket",
                            dir.join("pid").display()
                        )),
                        PidState::Missing | PidState::Unparsable => None,
                    })
                    .unwrap_or_default();
                Err(Error::UnknownUmid {
                    name: name.to_string_lossy().into_owned(),
                    tried: format!("{} ({why}){pid_note}", tried.join(", ")),
                })
            }
        }
    }

    /// Runs one command line (trailing blanks trimmed, local commands
    /// first, by prefix, in the original's order).
    pub fn execute(&mut self, line: &[u8], out: &mut dyn Output) -> io::Result<Status> {
        let end = line
            .iter()
            .rposition(|&b| !is_space(b))
            .map_or(0, |i| i + 1);
        let line = &line[..end];
        let status = if line.starts_with(b"quit") {
            Status {
                code: 0,
                exit: true,
            }
        } else if line.starts_with(b"help") {
            let status = self.send(line, out)?;
            out.local(LOCAL_HELP.as_bytes())?;
            Status::code(if status.code != 0 && self.last_failed {
                1
            } else {
                0
            })
        } else if line.starts_with(b"switch") {
            let name = OsStr::from_bytes(skip_spaces(&line[6..]));
            match self.switch(name) {
                Ok(()) => {
                    out.local(&[b"Switched to '", name.as_bytes(), b"'\n"].concat())?;
                    Status::code(0)
                }
                Err(e) => {
                    out.error(&e)?;
                    Status::code(1)
                }
            }
        } else if line.starts_with(b"log") {
            self.log(skip_spaces(&line[3..]), out)?
        } else if line.starts_with(b"mconsole-version") {
            out.local(CLIENT_VERSION.as_bytes())?;
            Status::code(0)
        } else if line.starts_with(b"int") {
            self.interrupt(out)?;
            Status::code(0)
        } else {
            let command = fix_filenames(line);
            self.send(&command, out)?
        };
        out.end(line, status.code)?;
        Ok(status)
    }

    /// Sends one command to the guest and reports the reply: the exit
    /// status is the reply's, or 1 when the client failed.
    fn send(&mut self, command: &[u8], out: &mut dyn Output) -> io::Result<Status> {
        self.last_failed = false;
        let result = match (&self.target, &self.unresolved) {
            (Some(target), _) => self.client.command(target, command),
            (None, Some(Error::UnknownUmid { name, tried })) => Err(Error::UnknownUmid {
                name: name.clone(),
                tried: tried.clone(),
            }),
            (None, _) => Err(Error::UnknownUmid {
                name: String::from_utf8_lossy(&self.name).into_owned(),
                tried: String::new(),
            }),
        };
        match result {
            Ok(reply) => {
                out.reply(command, &reply)?;
                Ok(Status::code(reply.exit_status()))
            }
            Err(e) => {
                self.last_failed = true;
                out.error(&e)?;
                Ok(Status::code(1))
            }
        }
    }

    /// `log <text>` in chunks, or `log -f <file>`; a final `log \n` when
    /// the text does not end a line (spec §6.4).
    fn log(&mut self, arg: &[u8], out: &mut dyn Output) -> io::Result<Status> {
        // Unlike the original, stop at the first piece the client fails to
        // send: the others would fail the same way.
        let mut newline = false;
        if let Some(rest) = arg.strip_prefix(b"-f") {
            let path = PathBuf::from(OsStr::from_bytes(skip_spaces(rest)));
            let mut file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) => {
                    out.error(&Error::io("cannot open", &path, e))?;
                    return Ok(Status {
                        code: 1,
                        exit: true,
                    });
                }
            };
            let mut buf = vec![0u8; LOG_CHUNK];
            loop {
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        out.error(&Error::io("cannot read", &path, e))?;
                        return Ok(Status {
                            code: 1,
                            exit: true,
                        });
                    }
                };
                if self.log_piece(&buf[..n], out)? {
                    return Ok(Status::code(1));
                }
                newline = buf[n - 1] == b'\n';
            }
        } else {
            for chunk in arg.chunks(LOG_CHUNK) {
                if self.log_piece(chunk, out)? {
                    return Ok(Status::code(1));
                }
                newline = chunk.last() == Some(&b'\n');
            }
        }
        if !newline && self.log_piece(b"\n", out)? {
            return Ok(Status::code(1));
        }
        Ok(Status::code(0))
    }

    /// Sends `log <piece>`; true when the client failed to.
    fn log_piece(&mut self, piece: &[u8], out: &mut dyn Output) -> io::Result<bool> {
        // The original builds a C string: a NUL ends the piece.
        let piece = piece.split(|&b| b == 0).next().unwrap_or(&[]);
        self.send(&[b"log ", piece].concat(), out)?;
        Ok(self.last_failed)
    }

    /// `int`: SIGINT to the pid in the pid file beside the socket.
    fn interrupt(&mut self, out: &mut dyn Output) -> io::Result<()> {
        let pid = self
            .target
            .as_deref()
            .and_then(Path::parent)
            .and_then(|dir| std::fs::read(dir.join("pid")).ok())
            .and_then(|c| crate::mconsole::umid::parse_pid(&c));
        match pid {
            Some(pid) => {
                let pid = nix::unistd::Pid::from_raw(pid);
                if let Err(e) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT) {
                    out.error(&Error::io(
                        "cannot interrupt",
                        format!("pid {pid}"),
                        e.into(),
                    ))?;
                }
                Ok(())
            }
            None => out.local(NO_PID.as_bytes()),
        }
    }
}

/// Makes the file names of `config ubd<N>...=<file>[,<file>]` absolute
/// against the current directory (the guest kernel has another one), the
/// way the original client's `fix_filenames` does: the text up to the
/// first comma is one file, the rest the other. Lines that are not such
/// a config are returned unchanged.
pub fn fix_filenames(line: &[u8]) -> Vec<u8> {
    let Some(rest) = line.strip_prefix(b"config") else {
        return line.to_vec();
    };
    let rest = skip_spaces(rest);
    if !rest.starts_with(b"ubd") {
        return line.to_vec();
    }
    let Some(eq) = line.iter().position(|&b| b == b'=') else {
        return line.to_vec();
    };
    let value = &line[eq + 1..];
    let mut out = line[..=eq].to_vec();
    match value.iter().position(|&b| b == b',') {
        None => out.extend_from_slice(&absolutize(value)),
        Some(comma) => {
            out.extend_from_slice(&absolutize(&value[..comma]));
            out.push(b',');
            out.extend_from_slice(&absolutize(&value[comma + 1..]));
        }
    }
    out
}

/// The absolute form of a file name as `chdir` to its directory then
/// `getcwd` gives it (symbolic links of the directory resolved); the name
/// unchanged when that directory cannot be entered.
fn absolutize(name: &[u8]) -> Vec<u8> {
    let joined = |dir: &Path, tail: &[u8]| {
        let mut v = dir.as_os_str().as_bytes().to_vec();
        v.extend_from_slice(tail);
        v
    };
    match name.iter().rposition(|&b| b == b'/') {
        Some(slash) => match std::fs::canonicalize(OsStr::from_bytes(&name[..slash])) {
            Ok(dir) => joined(&dir, &name[slash..]),
            Err(_) => name.to_vec(),
        },
        None => match std::env::current_dir() {
            Ok(cwd) => {
                let mut tail = b"/".to_vec();
                tail.extend_from_slice(name);
                joined(&cwd, &tail)
            }
            Err(_) => name.to_vec(),
        },
    }
}

/// The command words of one-shot mode joined by single spaces.
pub fn join_words(words: &[OsString]) -> Vec<u8> {
    let mut line = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            line.push(b' ');
        }
        line.extend_from_slice(w.as_bytes());
    }
    line
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
