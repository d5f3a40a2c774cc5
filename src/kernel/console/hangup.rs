//! The console's hangup when the session that owns it ends.
//!
//! On a kernel's own console (UML's is a `TTY_DRIVER_TYPE_CONSOLE`
//! driver), the exit of the session leader whose controlling terminal it
//! is hangs the terminal up (`disassociate_ctty` calls
//! `tty_vhangup_session`): every program of that session reading it sees
//! the end of the file, and a login shell ends. The guest's console is a
//! pty slave, for which the host kernel only sends SIGHUP to the
//! terminal's foreground process group, so a shell that has a job in the
//! foreground at that moment (the `halt` it was typed, when init's
//! runlevel change kills `login`) misses it, lives on, and the halt
//! scripts wait ten seconds for it and report that it would not die.
//!
//! So the monitor watches the console's session: each time the guest
//! writes to the console, it asks the pty master for the slave's session
//! (`TIOCGSID`); a new one gets a thread that waits on the leader's
//! pidfd and, once the leader has exited, sends SIGHUP and SIGCONT to the
//! processes still in that session (their `/proc/PID/stat` session
//! field) that have the console open: those the hangup would have met
//! (a shell reading it ends on SIGHUP as on the end of the file); the
//! session's other processes are left alone, as the kernel leaves them.

use crate::sys::guest::pty_session;
use crate::sys::process::pidfd_open;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// The session a `/proc/PID/stat` line names (its sixth field; the
/// command name in parentheses may hold spaces and parentheses).
pub fn stat_session(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // state ppid pgrp session
    rest.split_whitespace().nth(3)?.parse().ok()
}

/// What the console relay remembers between calls of [`follow`].
#[derive(Debug)]
pub struct Watch {
    session: Option<i32>,
    /// The console slave's device number.
    console: u64,
}

impl Watch {
    /// Watches for the console whose slave is `slave`.
    pub fn new(slave: BorrowedFd<'_>) -> io::Result<Watch> {
        let console = File::from(slave.try_clone_to_owned()?).metadata()?.rdev();
        Ok(Watch {
            session: None,
            console,
        })
    }
}

/// Called by the relay after guest output on `master`: when the console
/// belongs to a session not yet watched, starts watching it.
pub fn follow(master: BorrowedFd<'_>, watch: &mut Watch) {
    let Ok(sid) = pty_session(master) else {
        return;
    };
    if sid <= 0 || watch.session == Some(sid) {
        return;
    }
    watch.session = Some(sid);
    let Ok(leader) = pidfd_open(sid) else {
        return;
    };
    let console = watch.console;
    let _ = std::thread::Builder::new()
        .name("con-hup".into())
        .spawn(move || {
            if wait_exit(&leader) {
                hang_up(sid, console);
            }
        });
}

/// Waits until the process behind `pidfd` has exited.
fn wait_exit(pidfd: &OwnedFd) -> bool {
    loop {
        let mut fds = [nix::poll::PollFd::new(
            pidfd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
            Ok(n) if n > 0 => return true,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Whether process `pid` has the device `rdev` open.
fn has_open(pid: &Path, rdev: u64) -> bool {
    std::fs::read_dir(pid.join("fd"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|fd| {
            std::fs::metadata(fd.path())
                .is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == rdev)
        })
}

/// SIGHUP, then SIGCONT, to every process of session `sid` that has the
/// console (`console`, a device number) open.
fn hang_up(sid: i32, console: u64) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let in_session = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| stat_session(&s))
            == Some(sid);
        if in_session && has_open(&entry.path(), console) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGHUP);
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stat_session;

    #[test]
    fn the_session_is_the_sixth_field_whatever_the_command_name() {
        let stat = "614 (bash) S 1 614 609 0 -1 4194560 1 2 3";
        assert_eq!(stat_session(stat), Some(609));
        let odd = "700 (a) b (c) ) R 1 700 700 34816 700 0";
        assert_eq!(stat_session(odd), Some(700));
        assert_eq!(stat_session("garbage"), None);
    }
}
