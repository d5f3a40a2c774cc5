//! The monitor: everything `linux` does between a parsed command line and
//! its exit status.
//!
//! ```text
//!   checks (userns, /dev/fuse) -> disks -> root fs -> umid dir + mconsole
//!   -> unshare user+mount+uts+ipc+net (ids mapped by a helper)
//!   -> tmpfs staging, FUSE root, /dev, /tmp -> console pty
//!   -> loop { clone init (mount+pid ns) ; wait ; lifecycle decides }
//! ```
//!
//! The FUSE server threads live here, outside the guest's pid and mount
//! namespaces; the guest's init is cloned by the main thread, which lives
//! as long as the monitor, so PR_SET_PDEATHSIG ends the guest with it.

use super::cmdline::CmdLine;
use super::console::{self, Log, RawMode, Relay};
use super::disks::{self, RootFailure};
use super::fuse::FuseFs;
use super::lifecycle::{self, on_pid1_end, Outcome, Pid1End, PANIC_STATUS, SIGNAL_STATUS};
use super::mcon::{self, Control, Request, Shared};
use super::{chan::Channel, durable, idmap, lines, policy, RELEASE};
use crate::fs::InodeFs;
use crate::mconsole::{instance, protocol::NotifyKind, server, umid};
use crate::sys::guest::{self, GuestPlan};
use crate::sys::seccomp;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the monitor stages the guest's root in its own mount namespace
/// (a tmpfs over the host's /tmp, seen by nobody else).
const STAGE: &str = "/tmp";
/// FUSE server threads.
const FUSE_THREADS: usize = 4;

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
}

fn io_err(op: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let op = op.into();
    move |source| Error::Io { op, source }
}

fn nix_err(op: impl Into<String>) -> impl FnOnce(Errno) -> Error {
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
struct Instance {
    uml_dir: File,
    umid: String,
    server: Option<server::Server>,
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
fn notify(cmd: &CmdLine, log: &Log, kind: NotifyKind, text: &[u8]) {
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
        console::supported(p).map_err(Error::Unsupported)?;
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
    if let Err(RootFailure { lines, panic }) = disks::precheck_root(cmd) {
        return Ok(panic_exit(cmd, &log, &lines, &panic));
    }
    let mut opened = disks::open_all(cmd);
    for l in &opened.lines {
        log.error(l);
    }
    let configs = disks::config_strings(cmd, &opened);
    let root = disks::take_root(cmd, &mut opened)
        .and_then(|(unit, disk)| disks::mount_root(cmd, unit, disk).map(|r| (unit, r)));
    let (unit, mut root) = match root {
        Ok(r) => r,
        Err(RootFailure { lines, panic }) => return Ok(panic_exit(cmd, &log, &lines, &panic)),
    };
    root.units = disks::present_units(&opened, unit);
    let mut inst = make_instance(cmd, &log)?;
    let status = boot(cmd, &log, &mut inst, unit, root, configs);
    if !matches!(status, Ok(PANIC_STATUS)) {
        inst.remove();
    }
    status
}

fn boot(
    cmd: &CmdLine,
    log: &Log,
    inst: &mut Instance,
    unit: usize,
    root: disks::Root,
    configs: Vec<String>,
) -> Result<i32, Error> {
    // The guest's cgroups, made with the host's credentials (issue 12).
    let limits = super::limits::Limits::setup(cmd.mem);
    log.info(limits.line());
    log.info(&super::cgroupns::describe(limits.namespace()));
    // Still single-threaded: fork the id-map helper, then unshare.
    let signals = register_signals()?;
    let ctl: Shared = Arc::new(Mutex::new(Control::default()));
    let host_uid = nix::unistd::getuid().as_raw();
    // Host sides of the network devices, while the host's network is ours.
    let (nets, net_lines) = super::net::open_hosts(&cmd.eths);
    for l in &net_lines {
        log.info(l);
    }
    // uml_net add/del must run in the host's namespaces: leave an agent
    // there (forked while still single-threaded).
    let agent = if nets.iter().any(super::net::Pending::needs_agent) {
        Some(super::hostnet::Agent::start().map_err(io_err("fork"))?)
    } else {
        None
    };
    let helper = idmap::start(idmap::plan()).map_err(io_err("fork"))?;
    guest::unshare_monitor().map_err(nix_err("unshare"))?;
    let mapping = helper
        .finish()
        .map_err(io_err("writing the uid/gid maps"))?;
    log.info(&mapping.describe(host_uid));
    start_signals(signals, ctl.clone())?;
    let _ = nix::unistd::sethostname("(none)");
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(nix_err("making mounts private"))?;
    guest::mount(
        "tmpfs",
        Path::new(STAGE),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .map_err(io_err("staging tmpfs"))?;
    let rootdir = Path::new(STAGE).join("root");
    std::fs::create_dir(&rootdir).map_err(io_err("mkdir staging root"))?;

    // The FUSE root.
    let fs: Arc<dyn InodeFs> = root.fs.clone();
    let dev_fuse = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map_err(io_err("open /dev/fuse"))?;
    let mut flags = MsFlags::empty();
    if root.read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    let data = format!(
        "fd={},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions",
        dev_fuse.as_raw_fd()
    );
    let source = format!("/dev/ubd{}", super::ubd::letter(unit));
    guest::mount(&source, &rootdir, Some("fuse.ext3"), flags, Some(&data))
        .map_err(io_err("FUSE mount"))?;
    let mut config = fuser::Config::default();
    config.acl = fuser::SessionACL::All;
    config.n_threads = Some(FUSE_THREADS);
    config.clone_fd = true;
    let session = fuser::Session::from_fd(
        FuseFs::new(fs.clone(), root.writable, root.writable && !root.sync),
        OwnedFd::from(dev_fuse),
        fuser::SessionACL::All,
        config,
    )
    .map_err(io_err("FUSE handshake"))?;
    std::thread::Builder::new()
        .name("fuse".into())
        .spawn(move || {
            let _ = session.run();
        })
        .map_err(io_err("spawn"))?;
    for l in &root.lines {
        log.info(l);
    }
    if root.writable {
        let at = rootdir.to_string_lossy().into_owned();
        super::remount::follow(fs.clone(), root.writer.clone(), at, root.read_only)
            .map_err(io_err("spawn"))?;
    }

    let master = super::guestdev::setup(&rootdir, cmd.mem).map_err(io_err("guest /dev"))?;
    let ubd_stage = Path::new(STAGE).join("ubd");
    let ubd = super::ubddev::prepare(&rootdir, &ubd_stage, &root.units, unit, &root.check);
    for l in &ubd.map_err(io_err("guest /dev/ubd"))? {
        log.info(l);
    }
    let (net_lines, helper_devs) = super::net::attach_all(nets);
    for l in &net_lines {
        log.info(l);
    }
    if let Some(agent) = agent {
        super::hostnet::watch_helper_addresses(helper_devs, agent, log.clone())
            .map_err(io_err("watching guest addresses"))?;
    }
    let dev = rootdir.join("dev");
    for (n, pair) in cmd.consoles.iter().enumerate().skip(1) {
        if let Some(p) = pair {
            lines::attach(lines::Family::Console, n, p, &dev, log)
                .map_err(io_err(format!("con{n}")))?;
        }
    }
    for (n, pair) in cmd.serials.iter().enumerate() {
        if let Some(p) = pair {
            lines::attach(lines::Family::Serial, n, p, &dev, log)
                .map_err(io_err(format!("ssl{n}")))?;
        }
    }
    let con0 = cmd.consoles.first().and_then(Option::as_ref);
    let input = match con0.map(|p| &p.input) {
        Some(Channel::Fd(n)) => Some(*n),
        _ => None,
    };
    if let Some((rows, cols)) = input.and_then(|fd| {
        let f = guest::dup_inherited(fd).ok()?;
        guest::get_winsize(f.as_fd())
    }) {
        let _ = guest::set_winsize(master.as_fd(), rows, cols);
    }
    let raw = input.and_then(RawMode::enter);
    // Each boot's init gets the console's slave from the master itself,
    // never through a path in the guest's /dev.
    let console_master = master.try_clone().map_err(io_err("console"))?;
    let hold = guest::pty_peer(console_master.as_fd()).map_err(io_err("console"))?;
    let relay = Relay::start(master, hold, log.clone(), input).map_err(io_err("console relay"))?;
    log.info("Console initialized on /dev/tty0");

    if let Some(server) = inst.server.take() {
        let (c, l) = (ctl.clone(), log.clone());
        std::thread::Builder::new()
            .name("mconsole".into())
            .spawn(move || mcon::serve(server, c, l, move |arg| config_query(&configs, arg)))
            .map_err(io_err("spawn"))?;
    }

    let mut plan = guest_plan(cmd, &rootdir)?;
    // Init's own controlling terminal, on the host's devpts (the guest
    // never sees it): it keeps init from taking the console.
    let (ctty_master, _) = guest::open_pty(Path::new("/dev/ptmx")).map_err(io_err("pty"))?;
    let init_ctty = guest::pty_peer(ctty_master.as_fd()).map_err(io_err("pty"))?;
    plan.init_ctty = init_ctty.as_raw_fd();
    plan.cgroup_procs = limits.procs_fds();
    super::cgroupns::apply(&mut plan, &limits, &rootdir).map_err(io_err("cgroup"))?;
    let (alive_r, _alive_w) = guest::alive_pipe().map_err(io_err("pipe"))?;
    let root_handle = Arc::new(File::open(&rootdir).map_err(io_err("open the root"))?);
    let status = loop {
        // Every boot starts with the kernel's hostname (the monitor's own
        // UTS namespace is the guest's).
        nix::unistd::sethostname("(none)").map_err(nix_err("sethostname"))?;
        // Best effort: a guest that removed /dev/pts took its mount away.
        let _ = super::guestdev::reset(&rootdir);
        let booted = std::time::Instant::now();
        let binds = super::guestdev::proc_files(&rootdir, Path::new(STAGE), &cmd.line, cmd.mem)
            .map_err(io_err("guest /proc"))?;
        plan.binds = binds
            .iter()
            .map(|f| {
                Ok((
                    cstring(f.source.as_os_str().as_bytes())?,
                    cstring(f.target.as_os_str().as_bytes())?,
                ))
            })
            .collect::<Result<_, Error>>()?;
        let slave = guest::pty_peer(console_master.as_fd()).map_err(io_err("console"))?;
        plan.console = slave.as_raw_fd();
        let (listener_end, child_end) = seccomp::listener_pair().map_err(io_err("socketpair"))?;
        plan.listener_sock = child_end.as_raw_fd();
        let spawned = guest::spawn_guest(&plan, alive_r.as_fd());
        drop(slave);
        drop(child_end);
        let (pid, reports) = spawned.map_err(io_err("clone"))?;
        {
            let mut c = ctl
                .lock()
                .map_err(|_| Error::Unsupported("control lock poisoned".into()))?;
            c.pid1 = Some(pid);
            c.booted = Some(booted);
            c.proc_files = binds
                .iter()
                .map(|f| (f.name.clone().into_bytes(), f.text.clone().into_bytes()))
                .collect();
            if c.terminating {
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
        let records = guest::read_reports(reports).map_err(io_err("init report"))?;
        if let Ok(Some(fd)) = seccomp::recv_listener(listener_end.as_fd()) {
            let listener = seccomp::Listener::new(fd).map_err(io_err("seccomp listener"))?;
            durable::serve(listener, fs.clone(), root_handle.clone(), log.kmsg.clone())
                .map_err(io_err("spawn"))?;
        }
        let setup_failure = records.iter().find(|(w, _)| *w >= guest::STAGE_PROC);
        let failures: Vec<Errno> = records
            .iter()
            .filter(|(w, _)| *w < guest::STAGE_PROC)
            .map(|(_, e)| Errno::from_raw(*e))
            .collect();
        let early = match setup_failure {
            Some((w, e)) => Some(Outcome::Panic {
                message: format!("guest setup failed at stage {w}: {}", Errno::from_raw(*e)),
            }),
            None => {
                let (lines, outcome) = lifecycle::init_search(cmd.init.as_deref(), &failures);
                for l in &lines {
                    if l.starts_with("Starting init") {
                        log.error(l);
                    } else {
                        log.info(l);
                    }
                }
                outcome
            }
        };
        relay.resume();
        let end = wait_pid1(pid)?;
        let (request, terminating) = {
            let mut c = ctl
                .lock()
                .map_err(|_| Error::Unsupported("control lock poisoned".into()))?;
            c.pid1 = None;
            c.stopped = false;
            (c.request.take(), c.terminating)
        };
        relay.wait_idle(Duration::from_secs(1));
        if terminating {
            break SIGNAL_STATUS;
        }
        let outcome = match (early, request) {
            (Some(o), _) => o,
            (None, Some(Request::Halt)) => Outcome::Halt { status: 0 },
            (None, Some(Request::Reboot)) if cmd.noreboot => Outcome::RestartExit,
            (None, Some(Request::Reboot)) => Outcome::Reboot,
            (None, None) => on_pid1_end(end, cmd.noreboot, 0),
        };
        if let Outcome::Panic { message } = &outcome {
            notify(cmd, log, NotifyKind::Panic, message.as_bytes());
        }
        log.error(&outcome.console_line());
        match outcome {
            Outcome::Reboot => {
                eprintln!();
                continue;
            }
            Outcome::Panic { .. } => {
                drop(raw);
                return Ok(PANIC_STATUS);
            }
            other => {
                eprintln!();
                break other.exit_status().unwrap_or(0);
            }
        }
    };
    shutdown(&rootdir, fs.as_ref());
    drop(raw);
    Ok(status)
}

fn shutdown(rootdir: &Path, fs: &dyn InodeFs) {
    if let Ok(d) = File::open(rootdir) {
        let _ = nix::unistd::syncfs(d.as_raw_fd());
    }
    let _ = fs.sync_fs();
    let _ = fs.unmount();
    let _ = nix::mount::umount2(rootdir, MntFlags::MNT_DETACH);
}

fn wait_pid1(pid: nix::unistd::Pid) -> Result<Pid1End, Error> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Pid1End::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Pid1End::Signaled(sig as i32)),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(nix_err("waitpid")(e)),
        }
    }
}

/// Registers the SIGINT/SIGTERM handlers (no thread yet: the monitor may
/// still be single-threaded) and ignores SIGHUP, as linux.uml does.
fn register_signals() -> Result<signal_hook::iterator::Signals, Error> {
    guest::ignore_sighup().map_err(io_err("SIGHUP"))?;
    signal_hook::iterator::Signals::new([libc::SIGTERM, libc::SIGINT]).map_err(io_err("signals"))
}

/// The first SIGINT/SIGTERM ends the guest and the monitor exits 1; a
/// second one takes the default action (the kernel's handlers are
/// one-shot, SA_RESETHAND).
fn start_signals(mut signals: signal_hook::iterator::Signals, ctl: Shared) -> Result<(), Error> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let first = match ctl.lock() {
                    Ok(mut c) => {
                        let first = !c.terminating;
                        c.terminating = true;
                        if let Some(p) = c.pid1 {
                            let _ = kill(p, Signal::SIGKILL);
                        }
                        first
                    }
                    Err(_) => false,
                };
                if !first {
                    let _ = signal_hook::low_level::emulate_default_handler(sig);
                }
            }
        })
        .map_err(io_err("spawn"))?;
    Ok(())
}

/// `config DEV`: the ubd units' device strings; the other device classes
/// the kernel registers answer as they do there.
fn config_query(configs: &[String], arg: &[u8]) -> Result<String, &'static str> {
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

fn cstring(s: impl AsRef<[u8]>) -> Result<CString, Error> {
    guest::cstring(s.as_ref()).map_err(io_err("argument"))
}

fn guest_plan(cmd: &CmdLine, rootdir: &Path) -> Result<GuestPlan, Error> {
    let dir_in = |name: &str| -> Result<Option<CString>, Error> {
        let p = rootdir.join(name);
        if p.is_dir() {
            Ok(Some(cstring(p.as_os_str().as_bytes())?))
        } else {
            Ok(None)
        }
    };
    let mut candidates = Vec::new();
    for c in lifecycle::init_candidates(cmd.init.as_deref()) {
        let mut argv = vec![cstring(&c)?];
        for a in &cmd.init_args {
            argv.push(cstring(a)?);
        }
        candidates.push((cstring(&c)?, argv));
    }
    let env = cmd
        .init_env
        .iter()
        .map(cstring)
        .collect::<Result<Vec<_>, _>>()?;
    let proc_dir = dir_in("proc")?;
    let sys_dir = dir_in("sys")?;
    let self_binds = match &sys_dir {
        Some(_) => super::guestdev::SYS_SELF_BINDS
            .iter()
            .map(|d| cstring(rootdir.join(d).as_os_str().as_bytes()))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(GuestPlan {
        proc_dir,
        binds: Vec::new(),
        self_binds,
        sys_dir,
        root: cstring(rootdir.as_os_str().as_bytes())?,
        candidates,
        env,
        console: -1,
        filter: seccomp::sock_filters(&policy::program(policy::Options {
            nested_userns: cmd.nested_userns,
        })),
        listener_sock: -1,
        init_ctty: -1,
        cgroup_procs: Vec::new(),
        cgroup_ns: false,
        cgroup_dir: None,
    })
}
