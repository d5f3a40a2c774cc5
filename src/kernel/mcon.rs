//! The monitor's mconsole: the `src/mconsole` server and command table,
//! with each command mapped onto something real (spec mconsole.md §4):
//! `halt`/`reboot` end pid 1 and tell the monitor what to do next, `cad`
//! signals init as Ctrl-Alt-Del does, `stop`/`go` freeze and thaw every
//! guest process, `proc` reads the guest's own /proc.

use super::console::Log;
use super::guest::processes;
use crate::mconsole::commands::{self, Command, HELP_TEXT, UNKNOWN_COMMAND};
use crate::mconsole::server::Server;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::SocketAddr;
use std::path::{Component, Path};
use std::sync::{Arc, Mutex};

/// What an mconsole request asked the monitor to do when pid 1 is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Halt (exit 0).
    Halt,
    /// Boot again.
    Reboot,
}

/// State shared by the monitor, the mconsole and the signal thread.
#[derive(Debug, Default)]
pub struct Control {
    /// The running guest's pid 1 (host pid).
    pub pid1: Option<Pid>,
    /// What the next end of pid 1 means, when mconsole caused it.
    pub request: Option<Request>,
    /// SIGINT/SIGTERM arrived: end everything, exit 1.
    pub terminating: bool,
    /// The guest is frozen by `stop`.
    pub stopped: bool,
    /// When this boot's init was started (the guest's uptime counts from
    /// here).
    pub booted: Option<std::time::Instant>,
    /// The files of the guest's /proc the monitor made for this boot
    /// (path under /proc, contents): `proc` answers those from here, as
    /// the kernel's internal proc mount would.
    pub proc_files: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The shared control block.
pub type Shared = Arc<Mutex<Control>>;

/// Ends pid 1 (and so the whole guest) with `request` recorded.
pub fn end_guest(ctl: &Shared, request: Request) {
    if let Ok(mut c) = ctl.lock() {
        c.request = Some(request);
        if let Some(pid) = c.pid1 {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

fn pid1(ctl: &Shared) -> Option<Pid> {
    ctl.lock().ok().and_then(|c| c.pid1)
}

/// Serves requests until the socket fails.
pub fn serve(
    server: Server,
    ctl: Shared,
    log: Log,
    config: impl Fn(&[u8]) -> Result<String, &'static str>,
) {
    loop {
        let Ok(incoming) = server.receive() else {
            return;
        };
        let Ok(Some((req, from))) = server.check(incoming) else {
            continue;
        };
        let _ = handle(&server, &from, &req.command, &ctl, &log, &config);
    }
}

fn handle(
    server: &Server,
    to: &SocketAddr,
    command: &[u8],
    ctl: &Shared,
    log: &Log,
    config: &impl Fn(&[u8]) -> Result<String, &'static str>,
) -> std::io::Result<()> {
    let ok = |text: &str| server.reply(to, 0, text.as_bytes(), false);
    let err = |text: &str| server.reply(to, 1, text.as_bytes(), false);
    let Some((cmd, _)) = commands::lookup(command) else {
        return err(UNKNOWN_COMMAND);
    };
    let arg = commands::argument(command);
    match cmd {
        Command::Version => match nix::sys::utsname::uname() {
            Ok(u) => ok(&format!(
                "{} {} {} {} {}",
                u.sysname().to_string_lossy(),
                u.nodename().to_string_lossy(),
                u.release().to_string_lossy(),
                u.version().to_string_lossy(),
                u.machine().to_string_lossy()
            )),
            Err(e) => err(&e.to_string()),
        },
        Command::Help => ok(HELP_TEXT),
        Command::Halt => {
            ok("")?;
            end_guest(ctl, Request::Halt);
            Ok(())
        }
        Command::Reboot => {
            ok("")?;
            end_guest(ctl, Request::Reboot);
            Ok(())
        }
        Command::Cad => {
            ok("")?;
            if let Some(p) = pid1(ctl) {
                // Ctrl-Alt-Del with C_A_D off: SIGINT to init.
                let _ = kill(p, Signal::SIGINT);
            }
            Ok(())
        }
        Command::Stop | Command::Go => {
            let stop = cmd == Command::Stop;
            let mut c = ctl.lock().map_err(|_| std::io::Error::other("lock"))?;
            if c.stopped == stop {
                drop(c);
                return err(if stop {
                    "Already stopped"
                } else {
                    "Not stopped"
                });
            }
            if let Some(p) = c.pid1 {
                let sig = if stop {
                    Signal::SIGSTOP
                } else {
                    Signal::SIGCONT
                };
                processes::signal_all(p, sig, true);
            }
            c.stopped = stop;
            drop(c);
            ok(if stop { "stopped" } else { "" })
        }
        Command::Log => {
            let text = command.get(4..).unwrap_or_default();
            log.info(String::from_utf8_lossy(text).trim_end_matches('\n'));
            ok("")
        }
        Command::Proc => {
            let (booted, made) = match ctl.lock() {
                Ok(c) => (c.booted, c.proc_files.clone()),
                Err(_) => (None, Vec::new()),
            };
            proc_file(server, to, arg, pid1(ctl), booted, &made)
        }
        Command::Sysrq => sysrq(server, to, arg, ctl),
        Command::Config => match config(arg) {
            Ok(s) => ok(&s),
            Err(e) => err(e),
        },
        Command::Remove => err("Bad remove option"),
        Command::Stack => err("stack is not supported by this linux"),
    }
}

/// True when `rel` stays inside /proc: relative, no `..`.
pub fn safe_proc_path(rel: &[u8]) -> bool {
    let p = Path::new(OsStr::from_bytes(rel));
    !rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Opens `rel` in the guest's procfs without following anything the
/// guest controls: the guest's `/proc` must be a proc mount, and the file
/// a regular procfs file reached without symlinks or `..`, opened
/// non-blocking (a FIFO planted there cannot hold the mconsole thread).
fn open_guest_proc(pid: Pid, rel: &[u8]) -> Option<std::fs::File> {
    use crate::sys::fs::{is_fs_type, open_beneath, Beneath};
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    let root = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(format!("/proc/{pid}/root"))
        .ok()?;
    let proc_dir = open_beneath(root.as_fd(), c"proc", Beneath::Dir).ok()?;
    if !is_fs_type(proc_dir.as_fd(), PROC_SUPER_MAGIC) {
        return None;
    }
    let rel = std::ffi::CString::new(rel).ok()?;
    let file = std::fs::File::from(open_beneath(proc_dir.as_fd(), &rel, Beneath::File).ok()?);
    let kind = file.metadata().ok()?.file_type();
    (kind.is_file() && !kind.is_fifo() && is_fs_type(file.as_fd(), PROC_SUPER_MAGIC))
        .then_some(file)
}

/// The kernel's own symlinks at the top of /proc, resolved for the
/// guest's pid 1 (the monitor is outside the guest's pid namespace, where
/// `self` means nothing): a fixed table, so nothing the guest controls is
/// followed.
pub fn resolve_proc_links(rel: &[u8]) -> Vec<u8> {
    let (first, rest) = match rel.iter().position(|&b| b == b'/') {
        Some(at) => (&rel[..at], &rel[at..]),
        None => (rel, &b""[..]),
    };
    let target: &[u8] = match first {
        b"self" => b"1",
        b"thread-self" => b"1/task/1",
        b"mounts" => b"1/mounts",
        b"net" => b"1/net",
        _ => first,
    };
    [target, rest].concat()
}

/// The guest's `/proc/uptime`: seconds since this boot, and idle time in
/// the host's proportion of idle to busy (the host's file would give
/// the host's uptime, whose clock the guest shares).
pub fn guest_uptime(since_boot: std::time::Duration, host_uptime: &str, cpus: usize) -> String {
    let up = since_boot.as_secs_f64();
    let mut fields = host_uptime
        .split_whitespace()
        .map(|f| f.parse::<f64>().unwrap_or(0.0));
    let (host_up, host_idle) = (fields.next().unwrap_or(0.0), fields.next().unwrap_or(0.0));
    let share = if host_up > 0.0 && cpus > 0 {
        (host_idle / (host_up * cpus as f64)).clamp(0.0, 1.0)
    } else {
        0.0
    };
    format!("{up:.2} {:.2}\n", up * share)
}

fn proc_file(
    server: &Server,
    to: &SocketAddr,
    arg: &[u8],
    pid: Option<Pid>,
    booted: Option<std::time::Instant>,
    made: &[(Vec<u8>, Vec<u8>)],
) -> std::io::Result<()> {
    let rel: Vec<u8> = arg
        .iter()
        .copied()
        .take_while(|b| !b.is_ascii_whitespace())
        .collect();
    let Some(pid) = pid else {
        return server.reply(to, 1, b"Proc not available", false);
    };
    if !safe_proc_path(&rel) {
        return server.reply(to, 1, b"Failed to open file", false);
    }
    let rel = resolve_proc_links(&rel);
    if let Some((_, text)) = made.iter().find(|(path, _)| *path == rel) {
        server.reply(to, 0, b"\n", true)?;
        for chunk in text.chunks(4095) {
            server.reply(to, 0, chunk, true)?;
        }
        return server.reply(to, 0, b"", false);
    }
    let Some(mut f) = open_guest_proc(pid, &rel) else {
        return server.reply(to, 1, b"Failed to open file", false);
    };
    server.reply(to, 0, b"\n", true)?;
    if rel == b"uptime" {
        let mut host = String::new();
        let _ = f.read_to_string(&mut host);
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let since = booted.map(|b| b.elapsed()).unwrap_or_default();
        server.reply(to, 0, guest_uptime(since, &host, cpus).as_bytes(), true)?;
        return server.reply(to, 0, b"", false);
    }
    let mut buf = [0u8; 4095];
    let mut total = 0usize;
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                server.reply(to, 0, &buf[..n], true)?;
                total += n;
                if total > 16 << 20 {
                    break;
                }
            }
            Err(_) => return server.reply(to, 1, b"Read of file failed", false),
        }
    }
    server.reply(to, 0, b"", false)
}

fn sysrq(server: &Server, to: &SocketAddr, arg: &[u8], ctl: &Shared) -> std::io::Result<()> {
    let pid = pid1(ctl);
    match arg.first() {
        Some(b'b') => {
            server.reply(to, 0, b"", false)?;
            end_guest(ctl, Request::Reboot);
            Ok(())
        }
        Some(b'o') => {
            server.reply(to, 0, b"", false)?;
            end_guest(ctl, Request::Halt);
            Ok(())
        }
        Some(b'e') | Some(b'i') => {
            let (sig, what) = if arg[0] == b'e' {
                (Signal::SIGTERM, "sysrq: Terminate All Tasks\n")
            } else {
                (Signal::SIGKILL, "sysrq: Kill All Tasks\n")
            };
            if let Some(p) = pid {
                processes::signal_all(p, sig, false);
            }
            server.reply(to, 0, what.as_bytes(), true)?;
            server.reply(to, 0, b"", false)
        }
        _ => server
            .reply(
                to,
                0,
                b"sysrq: HELP : reboot(b) terminate-all-tasks(e) kill-all-tasks(i) poweroff(o)\n",
                true,
            )
            .and_then(|_| server.reply(to, 0, b"", false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_paths_cannot_leave_proc() {
        assert!(safe_proc_path(b"meminfo"));
        assert!(safe_proc_path(b"sys/kernel/hostname"));
        assert!(!safe_proc_path(b"../etc/passwd"));
        assert!(!safe_proc_path(b"/etc/passwd"));
        assert!(!safe_proc_path(b"self/../.."));
        assert!(!safe_proc_path(b""));
    }

    #[test]
    fn the_kernels_proc_links_resolve_to_the_guests_pid_1() {
        assert_eq!(resolve_proc_links(b"mounts"), b"1/mounts");
        assert_eq!(resolve_proc_links(b"self/status"), b"1/status");
        assert_eq!(resolve_proc_links(b"net/dev"), b"1/net/dev");
        assert_eq!(resolve_proc_links(b"thread-self"), b"1/task/1");
        assert_eq!(resolve_proc_links(b"selfish"), b"selfish");
        assert_eq!(resolve_proc_links(b"meminfo"), b"meminfo");
    }

    #[test]
    fn the_guests_uptime_counts_from_its_boot() {
        let t = guest_uptime(
            std::time::Duration::from_millis(12_340),
            "1000.00 1500.00\n",
            2,
        );
        assert_eq!(t, "12.34 9.25\n");
        assert_eq!(
            guest_uptime(std::time::Duration::ZERO, "", 1),
            "0.00 0.00\n"
        );
    }
}
