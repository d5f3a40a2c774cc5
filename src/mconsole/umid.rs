//! Where a guest's mconsole socket lives (spec §1.1 and §6.2).
//!
//! The kernel makes `<uml_dir><umid>/` (default `uml_dir` is `~/.uml/`)
//! holding `mconsole` (the socket) and `pid` (the host pid and a newline).
//! The original client finds a socket from a name by trying, in order,
//! `$HOME/.uml/<name>/mconsole`, `/tmp/uml/<name>/mconsole` and `<name>`
//! itself; paths are glued as text, as C's `snprintf` does, so an absolute
//! name never replaces the prefix.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The longest umid the kernel accepts (`UMID_LEN - 1`).
pub const MAX_UMID_LEN: usize = 63;
/// How many bytes of the name the original client shows in its prompt
/// (`char uml_name[11]`, copied with `strncpy`).
pub const PROMPT_NAME_LEN: usize = 11;
/// The prompt name before any socket was found.
pub const NO_NAME: &str = "[None]";

fn concat(parts: &[&OsStr]) -> PathBuf {
    let mut s = OsString::new();
    for p in parts {
        s.push(p);
    }
    PathBuf::from(s)
}

/// The socket paths the original client tries for `name`, in its order
/// (`switch_common`): `$HOME/.uml/<name>/mconsole` unless the name already
/// starts with `$HOME/.uml`, `/tmp/uml/<name>/mconsole` unless it starts
/// with `/tmp/uml/`, the name itself, and last (only when the first was
/// skipped) `$HOME/.uml/<name>/mconsole` after all.
pub fn candidates(name: &OsStr, home: Option<&OsStr>) -> Vec<PathBuf> {
    let mut out = Vec::with_capacity(4);
    let mut home_last = None;
    if let Some(home) = home {
        let dir = concat(&[home, OsStr::new("/.uml")]);
        let file = concat(&[
            dir.as_os_str(),
            OsStr::new("/"),
            name,
            OsStr::new("/mconsole"),
        ]);
        if name.as_bytes().starts_with(dir.as_os_str().as_bytes()) {
            home_last = Some(file);
        } else {
            out.push(file);
        }
    }
    if !name.as_bytes().starts_with(b"/tmp/uml/") {
        out.push(concat(&[
            OsStr::new("/tmp/uml/"),
            name,
            OsStr::new("/mconsole"),
        ]));
    }
    out.push(PathBuf::from(name));
    out.extend(home_last);
    out
}

/// The outcome of looking a name up.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The first candidate that exists (`stat` succeeds), if any.
    pub socket: Option<PathBuf>,
    /// Every candidate tried before it, with why it failed.
    pub tried: Vec<(PathBuf, String)>,
}

/// Tries [`candidates`] for `name` with `$HOME` from the environment,
/// stopping at the first path that exists, as the original client does.
pub fn resolve(name: &OsStr) -> Resolved {
    let home = std::env::var_os("HOME");
    resolve_with_home(name, home.as_deref())
}

/// [`resolve`] with an explicit `$HOME` (tests).
pub fn resolve_with_home(name: &OsStr, home: Option<&OsStr>) -> Resolved {
    let mut tried = Vec::new();
    for path in candidates(name, home) {
        match std::fs::metadata(&path) {
            Ok(_) => {
                return Resolved {
                    socket: Some(path),
                    tried,
                }
            }
            Err(e) => tried.push((path, super::io_message(&e))),
        }
    }
    Resolved {
        socket: None,
        tried,
    }
}

/// The name the prompt shows: the first 11 bytes of the name as given.
pub fn prompt_name(name: &OsStr) -> Vec<u8> {
    let bytes = name.as_bytes();
    bytes[..bytes.len().min(PROMPT_NAME_LEN)].to_vec()
}

/// The kernel's `uml_dir`: `value` (from `uml_dir=`) or `~/.uml/`, with a
/// leading `~` replaced by `home` and a trailing `/` added. `None` when
/// `~` is needed and there is no home, or the value is empty (the kernel
/// rejects an empty `uml_dir=`).
pub fn uml_dir(value: Option<&OsStr>, home: Option<&OsStr>) -> Option<PathBuf> {
    let value = value.unwrap_or(OsStr::new("~/.uml/"));
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() + 64);
    if let Some(rest) = bytes.strip_prefix(b"~") {
        out.extend_from_slice(home?.as_bytes());
        out.extend_from_slice(rest);
    } else {
        out.extend_from_slice(bytes);
    }
    if out.last() != Some(&b'/') {
        out.push(b'/');
    }
    Some(PathBuf::from(OsString::from_vec(out)))
}

/// True when the kernel accepts `umid` as an instance name (non-empty, at
/// most 63 bytes). The kernel does not check for `/`; neither do we.
pub fn valid_umid(umid: &OsStr) -> bool {
    !umid.is_empty() && umid.len() <= MAX_UMID_LEN
}

/// The instance directory `<uml_dir><umid>` (text concatenation, as the
/// kernel does; a `/` is put between them when `uml_dir` lacks it).
pub fn instance_dir(uml_dir: &Path, umid: &OsStr) -> PathBuf {
    let sep = if uml_dir.as_os_str().as_bytes().ends_with(b"/") {
        ""
    } else {
        "/"
    };
    concat(&[uml_dir.as_os_str(), OsStr::new(sep), umid])
}

/// What the `pid` file of an instance directory says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidState {
    /// There is no readable pid file.
    Missing,
    /// The file does not start with a decimal number.
    Unparsable,
    /// The pid exists (`kill(pid, 0)` does not fail with `ESRCH`).
    Alive(i32),
    /// No such process: the guest is gone.
    Dead(i32),
}

/// Parses a pid file's contents as the kernel does (`strtoul` of the
/// leading digits); `None` when there are no digits or the number is not a
/// valid positive pid.
pub fn parse_pid(contents: &[u8]) -> Option<i32> {
    let text = contents.strip_prefix(b" ").unwrap_or(contents);
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 10 {
        return None;
    }
    let n: i64 = std::str::from_utf8(&text[..digits]).ok()?.parse().ok()?;
    i32::try_from(n).ok().filter(|&p| p > 0)
}

/// Reads `<dir>/pid` and checks whether that process is alive.
pub fn pid_state(dir: &Path) -> PidState {
    let Ok(contents) = std::fs::read(dir.join("pid")) else {
        return PidState::Missing;
    };
    let Some(pid) = parse_pid(&contents) else {
        return PidState::Unparsable;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Err(nix::errno::Errno::ESRCH) => PidState::Dead(pid),
        _ => PidState::Alive(pid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(v: Vec<PathBuf>) -> Vec<String> {
        v.into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn candidates_follow_the_original_order_for_a_plain_name() {
        let c = candidates(OsStr::new("vm1"), Some(OsStr::new("/home/u")));
        assert_eq!(
            paths(c),
            ["/home/u/.uml/vm1/mconsole", "/tmp/uml/vm1/mconsole", "vm1"]
        );
    }

    #[test]
    fn candidates_glue_absolute_names_as_text() {
        let c = candidates(OsStr::new("/x/mconsole"), Some(OsStr::new("/h")));
        assert_eq!(
            paths(c),
            [
                "/h/.uml//x/mconsole/mconsole",
                "/tmp/uml//x/mconsole/mconsole",
                "/x/mconsole"
            ]
        );
    }

    #[test]
    fn candidates_try_the_home_path_last_for_names_under_it() {
        let c = candidates(OsStr::new("/h/.uml/vm/mconsole"), Some(OsStr::new("/h")));
        assert_eq!(
            paths(c),
            [
                "/tmp/uml//h/.uml/vm/mconsole/mconsole",
                "/h/.uml/vm/mconsole",
                "/h/.uml//h/.uml/vm/mconsole/mconsole"
            ]
        );
        let c = candidates(OsStr::new("/tmp/uml/vm/mconsole"), None);
        assert_eq!(paths(c), ["/tmp/uml/vm/mconsole"]);
    }

    #[test]
    fn resolve_stops_at_the_first_existing_path_and_lists_the_failures() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".uml/vm");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("mconsole"), b"").unwrap();
        let r = resolve_with_home(OsStr::new("vm"), Some(home.path().as_os_str()));
        assert_eq!(r.socket, Some(dir.join("mconsole")));
        assert!(r.tried.is_empty());
        let r = resolve_with_home(OsStr::new("no-such-vm-x"), Some(home.path().as_os_str()));
        assert_eq!(r.socket, None);
        assert_eq!(r.tried.len(), 3);
        assert!(r.tried[0].1.contains("No such file"), "{:?}", r.tried);
    }

    #[test]
    fn prompt_name_keeps_eleven_bytes() {
        assert_eq!(
            prompt_name(OsStr::new("/tmp/mx/probe/mconsole")),
            b"/tmp/mx/pro"
        );
        assert_eq!(prompt_name(OsStr::new("vm")), b"vm");
    }

    #[test]
    fn uml_dir_expands_tilde_and_adds_a_slash() {
        let home = Some(OsStr::new("/root"));
        assert_eq!(uml_dir(None, home), Some(PathBuf::from("/root/.uml/")));
        assert_eq!(
            uml_dir(Some(OsStr::new("~/vms")), home),
            Some(PathBuf::from("/root/vms/"))
        );
        assert_eq!(
            uml_dir(Some(OsStr::new("/tmp/g")), None),
            Some(PathBuf::from("/tmp/g/"))
        );
        assert_eq!(uml_dir(None, None), None);
        assert_eq!(uml_dir(Some(OsStr::new("")), home), None);
        let dir = uml_dir(Some(OsStr::new("/tmp/g")), None).unwrap();
        assert_eq!(
            instance_dir(&dir, OsStr::new("vm")),
            PathBuf::from("/tmp/g/vm")
        );
    }

    #[test]
    fn umids_longer_than_63_bytes_are_invalid() {
        assert!(valid_umid(OsStr::new(&"a".repeat(63))));
        assert!(!valid_umid(OsStr::new(&"a".repeat(64))));
        assert!(!valid_umid(OsStr::new("")));
    }

    #[test]
    fn pid_files_parse_leading_digits_only() {
        assert_eq!(parse_pid(b"3601\n"), Some(3601));
        assert_eq!(parse_pid(b"42"), Some(42));
        assert_eq!(parse_pid(b"x42"), None);
        assert_eq!(parse_pid(b""), None);
        assert_eq!(parse_pid(b"0\n"), None);
        assert_eq!(parse_pid(b"99999999999999\n"), None);
    }

    #[test]
    fn pid_state_tells_alive_from_dead_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(pid_state(dir.path()), PidState::Missing);
        std::fs::write(dir.path().join("pid"), format!("{}\n", std::process::id())).unwrap();
        assert!(matches!(pid_state(dir.path()), PidState::Alive(_)));
        std::fs::write(dir.path().join("pid"), "garbage").unwrap();
        assert_eq!(pid_state(dir.path()), PidState::Unparsable);
        // A pid above the kernel's pid_max (at most 2^22) cannot exist.
        std::fs::write(dir.path().join("pid"), "2000000000\n").unwrap();
        assert_eq!(pid_state(dir.path()), PidState::Dead(2_000_000_000));
    }
}
