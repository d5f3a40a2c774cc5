//! Tab completion of paths inside the disk, through clap's dynamic
//! completion (`COMPLETE=bash uml_fs`, see the man page): the shell runs
//! `uml_fs -- uml_fs SUBCOMMAND ARGS...`, and a PATH argument's candidates
//! are the entries of the directory typed so far, read from the DEVICE on
//! that command line (read-only, journal replayed in memory). Anything
//! that fails yields no candidates.

use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use std::ffi::{OsStr, OsString};

/// The completer for PATH arguments.
pub(super) fn image_paths() -> ArgValueCompleter {
    ArgValueCompleter::new(complete_path)
}

fn complete_path(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(device) = device_of(std::env::args_os()) else {
        return Vec::new();
    };
    candidates(&device, current.as_encoded_bytes()).unwrap_or_default()
}

/// Options of the subcommands that take a value (their value is not the
/// DEVICE).
const WITH_VALUE: &[&str] = &["-o", "--name", "-name", "--type", "-type", "--mode"];

/// The DEVICE of the command line being completed: the first word after
/// the subcommand that is not an option or an option's value.
pub(super) fn device_of(args: impl Iterator<Item = OsString>) -> Option<String> {
    let args: Vec<OsString> = args.collect();
    let words = &args[args.iter().position(|a| a == "--")? + 1..];
    let mut positional = Vec::new();
    let mut skip = false;
    for w in words.iter().skip(1) {
        let w = w.to_string_lossy();
        if skip {
            skip = false;
        } else if WITH_VALUE.contains(&w.as_ref()) {
            skip = true;
        } else if !w.starts_with('-') {
            positional.push(w.into_owned());
        }
    }
    // positional[0] is the subcommand.
    positional.into_iter().nth(1)
}

/// Entries of the directory part of `typed` (up to its last `/`; the root
/// when there is none) whose names start with the rest, as `typed` would
/// continue; directories end in `/`.
pub(super) fn candidates(device: &str, typed: &[u8]) -> anyhow::Result<Vec<CompletionCandidate>> {
    let (dir, prefix) = match typed.iter().rposition(|&b| b == b'/') {
        Some(i) => typed.split_at(i + 1),
        None => (&typed[..0], typed),
    };
    let fs = super::open_fs(super::open_device(device)?, device, false)?;
    let lookup = if dir.is_empty() { &b"/"[..] } else { dir };
    let ino = fs.resolve(lookup, true)?;
    let mut out = Vec::new();
    for e in fs.read_dir(ino)? {
        if e.name == b"." || e.name == b".." || !e.name.starts_with(prefix) {
            continue;
        }
        let mut word = dir.to_vec();
        word.extend_from_slice(&e.name);
        let is_dir = match e.file_type {
            Some(t) => t == crate::ext3::inode::FileType::Directory,
            None => fs
                .resolve(&word, true)
                .is_ok_and(|i| fs.read_dir(i).is_ok()),
        };
        if is_dir {
            word.push(b'/');
        }
        out.push(CompletionCandidate::new(OsString::from(
            String::from_utf8_lossy(&word).into_owned(),
        )));
    }
    out.sort_by(|a, b| a.get_value().cmp(b.get_value()));
    Ok(out)
}
