//! The monitor: everything `linux` does between a parsed command line and
//! its exit status.
//!
//! ```text
//!   run: checks (userns, /dev/fuse) -> boot log -> disks -> root fs
//!        -> umid dir + mconsole socket -> boot (super::boot: namespaces,
//!        root, lines, guest) -> exit status
//! ```
//!
//! A root that cannot be mounted is the kernel's panic before anything
//! else starts; the umid directory is removed unless the guest panicked,
//! as the kernel leaves it.

use super::cmdline::CmdLine;
use super::console::{self, Log};
use super::disk::{self, RootFailure};
use super::lifecycle::PANIC_STATUS;
use super::RELEASE;
use crate::mconsole::{instance, protocol::NotifyKind, server, umid};
use crate::sys::guest;
use nix::errno::Errno;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Why the monitor could not run a guest at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host lacks something the monitor needs.
    #[error("{0}")]
    Unsupported(String),
    /// A system call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The system's error.
        source: io::Error,
    },
    /// The umid directory or mconsole socket.
    #[error(transparent)]
    Mconsole(#[from] crate::mconsole::Error),
    /// con0 asks for a channel type this monitor cannot give it.
    #[error(transparent)]
    Console(#[from] console::UnsupportedChannel),
}

pub(super) fn io_err(op: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let op = op.into();
    move |source| Error::Io { op, source }
}

pub(super) fn nix_err(op: impl Into<String>) -> impl FnOnce(Errno) -> Error {
    let op = op.into();
    move |e| Error::Io {
        op,
        source: e.into(),
    }
}

/// Checks the host before any file is touched.
fn check_host() -> Result<(), Error> {
    match guest::probe_userns().map_err(io_err("probing user namespaces"))? {
        Ok(()) => {}
        Err(e) => {
            return Err(Error::Unsupported(format!(
                "cannot create a user namespace ({e}): check /proc/sys/user/max_user_namespaces, \
                 /proc/sys/kernel/unprivileged_userns_clone and AppArmor's \
                 kernel.apparmor_restrict_unprivileged_userns"
            )))
        }
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Err(Error::Unsupported(format!(
            "cannot open /dev/fuse ({e}): load the fuse module and give /dev/fuse mode 0666"
        )));
    }
    Ok(())
}

fn random_umid() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 6];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes
        .iter()
        .map(|b| char::from(CHARS[usize::from(*b) % CHARS.len()]))
        .collect()
}

/// The umid directory, its mconsole socket, and a handle to remove it
/// after the staging tmpfs may hide its path.
pub(super) struct Instance {
    uml_dir: File,
    umid: String,
    pub(super) server: Option<server::Server>,
}

impl Instance {
    fn remove(&mut self) {
        drop(self.server.take());
        let dir =
            PathBuf::from(format!("/proc/self/fd/{}", self.uml_dir.as_raw_fd())).join(&self.umid);
        let _ = instance::remove_instance_dir(&dir);
    }
}

fn make_instance(cmd: &CmdLine, log: &Log) -> Result<Instance, Error> {
    let home = std::env::var_os("HOME");
    let Some(mut uml_dir) = umid::uml_dir(cmd.uml_dir.as_deref().map(OsStr::new), home.as_deref())
    else {
        return Err(Error::Unsupported(
            "make_uml_dir: no value in environment for $HOME".into(),
        ));
    };
    if uml_dir.is_relative() {
        uml_dir = std::env::current_dir()
            .map_err(io_err("getcwd"))?
            .join(uml_dir);
    }
    let pid = std::process::id();
    let mut name = cmd.umid.clone().unwrap_or_else(random_umid);
    let dir = match instance::make_instance_dir(&uml_dir, OsStr::new(&name), pid) {
        Ok(d) => d,
        Err(crate::mconsole::Error::UmidInUse { umid, pid: other }) => {
            log.error(&format!("umid \"{umid}\" is already in use by pid {other}"));
            log.error(&format!(
                "Failed to initialize umid \"{umid}\", trying with a random umid"
            ));
            name = random_umid();
            instance::make_instance_dir(&uml_dir, OsStr::new(&name), pid)?
        }
        Err(e) => return Err(e.into()),
    };
    let sock = dir.join("mconsole");
    let server = server::Server::bind(&sock).map_err(io_err(format!("bind {}", sock.display())))?;
    log.info(&format!(
        "mconsole (version 2) initialized on {}",
        sock.display()
    ));
    notify(cmd, log, NotifyKind::Socket, sock.as_os_str().as_bytes());
    let uml_dir = File::open(&uml_dir).map_err(io_err(format!("open {}", uml_dir.display())))?;
    Ok(Instance {
        uml_dir,
        umid: name,
        server: Some(server),
    })
}

/// The `mconsole=notify:` socket, connected at start: the staging tmpfs
/// over /tmp may later hide its path from the monitor.
fn notifier(cmd: &CmdLine) -> Option<std::os::unix::net::UnixDatagram> {
    let path = cmd.notify.as_ref()?;
    let s = std::os::unix::net::UnixDatagram::unbound().ok()?;
    s.connect(path).ok()?;
    Some(s)
}

/// Sends `mconsole=notify:` a message; the payload ends in a NUL, as the
/// kernel's does (mconsole.md §5). Failures are only logged.
pub(super) fn notify(cmd: &CmdLine, log: &Log, kind: NotifyKind, text: &[u8]) {
    if cmd.notify.is_none() {
        return;
    }
    let mut data = text.to_vec();
    data.push(0);
    let datagram = crate::mconsole::protocol::Notification { kind, data }.encode();
    let sent = NOTIFIER
        .get_or_init(|| notifier(cmd))
        .as_ref()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
        .and_then(|s| s.send(&datagram));
    if let Err(e) = sent {
        log.error(&format!(
            "mconsole_notify - sendto failed, errno = {}",
            e.raw_os_error().unwrap_or(0)
        ));
    }
}

static NOTIFIER: std::sync::OnceLock<Option<std::os::unix::net::UnixDatagram>> =
    std::sync::OnceLock::new();

fn panic_exit(cmd: &CmdLine, log: &Log, lines: &[String], message: &str) -> i32 {
    for l in lines {
        log.error(l);
    }
    notify(cmd, log, NotifyKind::Panic, message.as_bytes());
    log.error(&format!("Kernel panic - not syncing: {message}"));
    PANIC_STATUS
}

/// Runs a guest for `cmd`; returns the exit status `linux.uml` would.
pub fn run(cmd: &CmdLine) -> Result<i32, Error> {
    let con0 = cmd.consoles.first().and_then(Option::as_ref);
    if let Some(p) = con0 {
        console::supported(p)?;
    }
    check_host()?;
    let log = Log::new(con0, cmd.quiet).map_err(io_err("con0"))?;
    // Connect the notify socket while its path is visible.
    let _ = NOTIFIER.get_or_init(|| notifier(cmd));
    let host = nix::sys::utsname::uname().map_err(nix_err("uname"))?;
    log.info(&format!(
        "Linux version {RELEASE} (umlkit user-mode monitor; guest programs run on the host's {} {})",
        host.sysname().to_string_lossy(),
        host.release().to_string_lossy()
    ));
    log.info(&format!("Kernel command line: {}", cmd.line));
    for n in &cmd.notices {
        log.error(n);
    }
    if let Some(u) = &cmd.unknown {
        log.info(&format!(
            "Unknown kernel command line parameters \"{u}\", will be passed to user space."
        ));
    }
    if let Err(RootFailure { lines, panic }) = disk::precheck_root(cmd) {
        return Ok(panic_exit(cmd, &log, &lines, &panic));
    }
    let mut opened = disk::open_all(cmd);
    for l in &opened.lines {
        log.error(l);
    }
    let configs = disk::config_strings(cmd, &opened);
    let root = disk::take_root(cmd, &mut opened)
        .and_then(|(unit, disk)| disk::mount_root(cmd, unit, disk).map(|r| (unit, r)));
    let (unit, mut root) = match root {
        Ok(r) => r,
        Err(RootFailure { lines, panic }) => return Ok(panic_exit(cmd, &log, &lines, &panic)),
    };
    root.units = disk::present_units(&opened, unit);
    let mut inst = make_instance(cmd, &log)?;
    let status = super::boot::boot(cmd, &log, &mut inst, unit, root, configs);
    if !matches!(status, Ok(PANIC_STATUS)) {
        inst.remove();
    }
    status
}

/// `config DEV`: the ubd units' device strings; the other device classes
/// the kernel registers answer as they do there.
pub(super) fn config_query(configs: &[String], arg: &[u8]) -> Result<String, &'static str> {
    const BAD: &str = "Bad configuration option";
    let text = std::str::from_utf8(arg).map_err(|_| BAD)?.trim();
    if text.contains('=') {
        return Err(BAD);
    }
    if text.starts_with("eth") {
        return Err("No get_config routine defined");
    }
    let unit = text.strip_prefix("ubd").and_then(|u| match u.as_bytes() {
        [c @ b'a'..=b'p'] => Some(usize::from(c - b'a')),
        _ => u.parse::<usize>().ok(),
    });
    unit.and_then(|u| configs.get(u)).cloned().ok_or(BAD)
}
