//! The guest's processes as the monitor sees them: every host process in
//! the pid namespace of the guest's pid 1, found through /proc.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;

/// The most processes signalled in one pass, and the passes made (new
/// processes may appear while a pass runs).
const MAX_PROCS: usize = 65_536;
const PASSES: usize = 3;

fn pid_ns(pid: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// The host pids in the pid namespace of `pid1`.
pub fn members(pid1: Pid) -> Vec<Pid> {
    let Some(ns) = pid_ns(pid1.as_raw()) else {
        return Vec::new();
    };
    let Ok(dir) = std::fs::read_dir(Path::new("/proc")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .take(MAX_PROCS)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| pid_ns(p).as_ref() == Some(&ns))
        .map(Pid::from_raw)
        .collect()
}

/// Sends `sig` to every guest process (`with_init`: pid 1 too).
pub fn signal_all(pid1: Pid, sig: Signal, with_init: bool) {
    let mut done = std::collections::HashSet::new();
    for _ in 0..PASSES {
        let mut new = false;
        for p in members(pid1) {
            if (p == pid1 && !with_init) || !done.insert(p) {
                continue;
            }
            new = true;
            let _ = kill(p, sig);
        }
        if !new {
            break;
        }
    }
}
