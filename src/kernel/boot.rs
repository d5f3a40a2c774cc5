//! A guest's boot, once the disks are open and the umid directory made
//! ([`super::monitor::run`]), in its stages:
//!
//! ```text
//!   namespaces  cgroups, host sides of the eth devices, uml_net agent,
//!               uid/gid maps, unshare user+mount+uts+ipc+net, the host's
//!               tree for hostfs, staging tmpfs
//!   root        the FUSE mount of the root filesystem and its server threads,
//!               the remount watcher; the guest's /dev and /dev/ubdX nodes
//!   lines       eth devices, consoles 1-15 and serial lines, the con0 relay
//!   guest       loop { clone init (mount+pid ns); wait; lifecycle decides }
//! ```
//!
//! The FUSE server threads live here, outside the guest's pid and mount
//! namespaces; the guest's init is cloned by the main thread, which lives
//! as long as the monitor, so PR_SET_PDEATHSIG ends the guest with it.

use super::cmdline::{chan::Channel, ubd, CmdLine};
use super::console::{lines, Log, RawMode, Relay};
use super::disk::{self, durable, fuse::FuseFs, readahead::Readahead, remount, ubddev};
use super::guest::meminfo::{self, MemoryUse};
use super::guest::{cgroupns, dev as guestdev, idmap, limits::Limits, policy};
use super::hostfs::{self, bind::HostFs};
use super::lifecycle::{self, on_pid1_end, Outcome, Pid1End, PANIC_STATUS, SIGNAL_STATUS};
use super::mcon::{self, Control, Request, Shared};
use super::monitor::{config_query, io_err, nix_err, notify, Error, Instance};
use super::net::{self, tap_helper};
use crate::fs::InodeFs;
use crate::mconsole::protocol::NotifyKind;
use crate::sys::guest::{self, GuestPlan};
use crate::sys::seccomp;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the monitor stages the guest's root in its own mount namespace
/// (a tmpfs over the host's /tmp, seen by nobody else).
const STAGE: &str = "/tmp";
/// FUSE server threads.
const FUSE_THREADS: usize = 4;

/// Boots the guest on the opened `root` (disk `unit`) and runs it until
/// it halts, panics or the monitor is signalled; returns the exit status.
pub(super) fn boot(
    cmd: &CmdLine,
    log: &Log,
    inst: &mut Instance,
    unit: usize,
    root: disk::Root,
    configs: Vec<String>,
) -> Result<i32, Error> {
    // Declared first, dropped last: the guest's cgroups outlive the guest.
    let Host {
        limits,
        ctl,
        nets,
        agent,
        rootdir,
        hostfs,
    } = enter_namespaces(cmd, log)?;
    let fs = serve_root(log, unit, &root, &rootdir)?;
    let master = make_dev(cmd, log, unit, &root, &rootdir)?;
    let lines = attach_lines(cmd, log, &rootdir, master, nets, agent)?;
    if let Some(server) = inst.server.take() {
        let (c, l) = (ctl.clone(), log.clone());
        std::thread::Builder::new()
            .name("mconsole".into())
            .spawn(move || mcon::serve(server, c, l, move |arg| config_query(&configs, arg)))
            .map_err(io_err("spawn"))?;
    }
    run_guest(cmd, log, &ctl, &limits, &rootdir, fs, lines, hostfs)
}

/// What the namespaces stage leaves for the others.
struct Host {
    /// The guest's cgroups (removed when dropped).
    limits: Limits,
    /// What the signal thread, mconsole and the guest loop share.
    ctl: Shared,
    /// The eth devices' host sides, opened in the host's network namespace.
    nets: Vec<net::Pending>,
    /// The `uml_net` agent left in the host's namespaces, if a device needs it.
    agent: Option<tap_helper::Agent>,
    /// The guest's root in the staging tmpfs.
    rootdir: PathBuf,
    /// What the guest's hostfs mounts are made from.
    hostfs: Arc<HostFs>,
}

/// Stage 1: what must be done with the host's credentials and network
/// (cgroups, host sides of the network devices, the `uml_net` agent, the
/// id-map helper), then the monitor's own namespaces and the staging tmpfs.
fn enter_namespaces(cmd: &CmdLine, log: &Log) -> Result<Host, Error> {
    // The guest's cgroups, made with the host's credentials (issue 12).
    let limits = Limits::setup(cmd.mem);
    log.info(limits.line());
    log.info(&cgroupns::describe(limits.namespace()));
    // Still single-threaded: fork the id-map helper, then unshare.
    let signals = register_signals()?;
    let ctl: Shared = Arc::new(Mutex::new(Control::default()));
    let host_uid = nix::unistd::getuid().as_raw();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let (hostfs_config, hostfs_lines) = hostfs::Config::parse(cmd.hostfs.as_deref());
    for l in &hostfs_lines {
        log.info(l);
    }
    // Host sides of the network devices, while the host's network is ours.
    let (nets, net_lines) = net::open_hosts(&cmd.eths, &cmd.vecs);
    for l in &net_lines {
        log.info(l);
    }
    // uml_net add/del must run in the host's namespaces: leave an agent
    // there (forked while still single-threaded).
    let agent = if nets.iter().any(net::Pending::needs_agent) {
        Some(tap_helper::Agent::start().map_err(io_err("fork"))?)
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
    // The host's tree, before the staging tmpfs covers its /tmp.
    let host_tree = hostfs::bind::capture();
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
    let hostfs = HostFs::new(
        host_tree,
        &hostfs::bind::staging_path(Path::new(STAGE)),
        hostfs_config,
        &cwd,
    );
    if let Some(l) = hostfs.problem() {
        log.info(&l);
    }
    Ok(Host {
        limits,
        ctl,
        nets,
        agent,
        rootdir,
        hostfs: Arc::new(hostfs),
    })
}

/// Stage 2a: the root filesystem mounted at `rootdir` over FUSE, its
/// server threads, and the thread that follows the guest's remounts.
fn serve_root(
    log: &Log,
    unit: usize,
    root: &disk::Root,
    rootdir: &Path,
) -> Result<Arc<dyn InodeFs>, Error> {
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
    let source = format!("/dev/ubd{}", ubd::letter(unit));
    guest::mount(&source, rootdir, Some("fuse.ext3"), flags, Some(&data))
        .map_err(io_err("FUSE mount"))?;
    let mut config = fuser::Config::default();
    config.acl = fuser::SessionACL::All;
    config.n_threads = Some(FUSE_THREADS);
    config.clone_fd = true;
    let readahead = Readahead::start(rootdir).map_err(io_err("spawn"))?;
    let session = fuser::Session::from_fd(
        FuseFs::new(fs.clone(), root.writable, root.writable && !root.sync)
            .hot_reader(FUSE_THREADS)
            .read_ahead(readahead.clone()),
        OwnedFd::from(dev_fuse),
        fuser::SessionACL::All,
        config,
    )
    .map_err(io_err("FUSE handshake"))?;
    readahead.notify_with(session.notifier());
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
        remount::follow(fs.clone(), root.writer.clone(), at, root.read_only)
            .map_err(io_err("spawn"))?;
    }
    Ok(fs)
}

/// Stage 2b: the guest's `/dev` and its `/dev/ubdX` nodes; returns the
/// master of the console pty.
fn make_dev(
    cmd: &CmdLine,
    log: &Log,
    unit: usize,
    root: &disk::Root,
    rootdir: &Path,
) -> Result<OwnedFd, Error> {
    let master = guestdev::setup(rootdir, cmd.mem).map_err(io_err("guest /dev"))?;
    let ubd_stage = Path::new(STAGE).join("ubd");
    let ubd = ubddev::prepare(rootdir, &ubd_stage, &root.units, unit, &root.check);
    for l in &ubd.map_err(io_err("guest /dev/ubd"))? {
        log.info(l);
    }
    Ok(master)
}

/// The console as the guest loop needs it. Fields drop in this order.
struct Lines {
    /// Relays con0 to and from the console pty.
    relay: Relay,
    /// The console pty's master: each boot's init gets its slave from it.
    console_master: OwnedFd,
    /// The host terminal on con0's input, raw while the guest runs.
    raw: Option<RawMode>,
    /// The other lines' output, drained at each end of init as con0's is.
    drain: lines::Drain,
}

/// Stage 3: the network devices, consoles 1-15 and serial lines, and the
/// relay between con0's host descriptors and the console pty `master`.
fn attach_lines(
    cmd: &CmdLine,
    log: &Log,
    rootdir: &Path,
    master: OwnedFd,
    nets: Vec<net::Pending>,
    agent: Option<tap_helper::Agent>,
) -> Result<Lines, Error> {
    let (net_lines, helper_devs) = net::attach_all(nets);
    for l in &net_lines {
        log.info(l);
    }
    if let Some(agent) = agent {
        tap_helper::watch_helper_addresses(helper_devs, agent, log.clone())
            .map_err(io_err("watching guest addresses"))?;
    }
    let dev = rootdir.join("dev");
    let drain = lines::Drain::default();
    for (n, pair) in cmd.consoles.iter().enumerate().skip(1) {
        if let Some(p) = pair {
            lines::attach(lines::Family::Console, n, p, &dev, log, &drain)
                .map_err(io_err(format!("con{n}")))?;
        }
    }
    for (n, pair) in cmd.serials.iter().enumerate() {
        if let Some(p) = pair {
            lines::attach(lines::Family::Serial, n, p, &dev, log, &drain)
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
    Ok(Lines {
        relay,
        console_master,
        raw,
        drain,
    })
}

/// What every boot of init shares. Fields drop in this order, and all of
/// them live until the guest has ended for good.
struct InitSetup {
    /// The opened root, for the durability requests of the seccomp listener.
    root_handle: Arc<File>,
    /// For the hostfs mounts the seccomp listener answers.
    hostfs: Arc<HostFs>,
    /// The read end of the pipe whose closing ends the guest.
    alive_r: OwnedFd,
    /// Its write end, held by the monitor.
    _alive_w: OwnedFd,
    /// Init's own controlling terminal (on the host's devpts) and its master.
    _init_ctty: OwnedFd,
    _ctty_master: OwnedFd,
    /// How init is cloned.
    plan: GuestPlan,
    /// The guest's memory cgroup's use, for a live /proc/meminfo.
    memory: Option<Arc<MemoryUse>>,
    /// Counts the boots: the thread keeping a boot's /proc/meminfo
    /// stops when it moves on.
    boots: Arc<AtomicU64>,
}

impl InitSetup {
    fn new(
        cmd: &CmdLine,
        rootdir: &Path,
        limits: &Limits,
        hostfs: Arc<HostFs>,
    ) -> Result<InitSetup, Error> {
        let mut plan = guest_plan(cmd, rootdir)?;
        // Init's own controlling terminal, on the host's devpts (the guest
        // never sees it): it keeps init from taking the console.
        let (ctty_master, _) = guest::open_pty(Path::new("/dev/ptmx")).map_err(io_err("pty"))?;
        let init_ctty = guest::pty_peer(ctty_master.as_fd()).map_err(io_err("pty"))?;
        plan.init_ctty = init_ctty.as_raw_fd();
        plan.cgroup_procs = limits.procs_fds();
        cgroupns::apply(&mut plan, limits, rootdir).map_err(io_err("cgroup"))?;
        let (alive_r, alive_w) = guest::alive_pipe().map_err(io_err("pipe"))?;
        let root_handle = Arc::new(File::open(rootdir).map_err(io_err("open the root"))?);
        Ok(InitSetup {
            root_handle,
            hostfs,
            alive_r,
            _alive_w: alive_w,
            _init_ctty: init_ctty,
            _ctty_master: ctty_master,
            plan,
            memory: limits.memory_use(),
            boots: Arc::new(AtomicU64::new(0)),
        })
    }
}

/// Stage 4: boots init again and again until the lifecycle says stop;
/// returns the exit status.
#[allow(clippy::too_many_arguments)]
fn run_guest(
    cmd: &CmdLine,
    log: &Log,
    ctl: &Shared,
    limits: &Limits,
    rootdir: &Path,
    fs: Arc<dyn InodeFs>,
    lines: Lines,
    hostfs: Arc<HostFs>,
) -> Result<i32, Error> {
    let mut init = InitSetup::new(cmd, rootdir, limits, hostfs)?;
    let status = loop {
        let (pid, early) = start_init(cmd, log, ctl, rootdir, &mut init, &fs, &lines)?;
        lines.relay.resume();
        let end = wait_pid1(pid)?;
        let (request, terminating) = {
            let mut c = ctl
                .lock()
                .map_err(|_| Error::Unsupported("control lock poisoned".into()))?;
            c.pid1 = None;
            c.stopped = false;
            (c.request.take(), c.terminating)
        };
        lines.relay.wait_idle(Duration::from_secs(1));
        lines.drain.wait_idle(Duration::from_secs(1));
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
                drop(lines.raw);
                return Ok(PANIC_STATUS);
            }
            other => {
                eprintln!();
                break other.exit_status().unwrap_or(0);
            }
        }
    };
    shutdown(rootdir, fs.as_ref());
    drop(lines.raw);
    Ok(status)
}

/// One boot: fresh `/proc` files and console slave, init cloned, the
/// seccomp listener served. Returns init's pid and, when the guest's setup
/// or the search for init already failed, the outcome that decides.
fn start_init(
    cmd: &CmdLine,
    log: &Log,
    ctl: &Shared,
    rootdir: &Path,
    init: &mut InitSetup,
    fs: &Arc<dyn InodeFs>,
    lines: &Lines,
) -> Result<(nix::unistd::Pid, Option<Outcome>), Error> {
    // Every boot starts with the kernel's hostname (the monitor's own
    // UTS namespace is the guest's).
    nix::unistd::sethostname("(none)").map_err(nix_err("sethostname"))?;
    // Best effort: a guest that removed /dev/pts took its mount away.
    let _ = guestdev::reset(rootdir);
    let booted = std::time::Instant::now();
    let boot = init.boots.fetch_add(1, Ordering::AcqRel) + 1;
    let usage = init.memory.as_ref().and_then(|m| m.read().ok());
    let meminfo_text = meminfo::text(cmd.mem, usage.as_ref());
    let binds = guestdev::proc_files(rootdir, Path::new(STAGE), &cmd.line, &meminfo_text)
        .map_err(io_err("guest /proc"))?;
    // Opened before init unlinks it: the file the guest's /proc/meminfo is.
    let meminfo_file = match (&init.memory, binds.iter().find(|f| f.name == "meminfo")) {
        (Some(m), Some(f)) => std::fs::OpenOptions::new()
            .write(true)
            .open(&f.source)
            .ok()
            .map(|file| (file, m.clone())),
        _ => None,
    };
    init.plan.binds = binds
        .iter()
        .map(|f| {
            Ok((
                cstring(f.source.as_os_str().as_bytes())?,
                cstring(f.target.as_os_str().as_bytes())?,
            ))
        })
        .collect::<Result<_, Error>>()?;
    let slave = guest::pty_peer(lines.console_master.as_fd()).map_err(io_err("console"))?;
    init.plan.console = slave.as_raw_fd();
    let (listener_end, child_end) = seccomp::listener_pair().map_err(io_err("socketpair"))?;
    init.plan.listener_sock = child_end.as_raw_fd();
    // Best effort: a host kernel without time namespaces (before 5.6, or
    // CONFIG_TIME_NS off) leaves the guest the host's uptime, and says so.
    if let Err(e) = guest::clocks_from_zero_for_children() {
        log.info(&format!(
            "time namespace: {e}: the guest's uptime counts from the host's boot"
        ));
    }
    let spawned = guest::spawn_guest(&init.plan, init.alive_r.as_fd());
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
    if let Some((file, source)) = meminfo_file {
        let (mem, boots, c) = (cmd.mem, init.boots.clone(), ctl.clone());
        std::thread::Builder::new()
            .name("meminfo".into())
            .spawn(move || {
                meminfo::follow(file, mem, source, boots, boot, |text| {
                    if let Ok(mut c) = c.lock() {
                        if let Some(f) = c.proc_files.iter_mut().find(|f| f.0 == b"meminfo") {
                            f.1 = text.as_bytes().to_vec();
                        }
                    }
                })
            })
            .map_err(io_err("spawn"))?;
    }
    let records = guest::read_reports(reports).map_err(io_err("init report"))?;
    if let Ok(Some(fd)) = seccomp::recv_listener(listener_end.as_fd()) {
        let listener = seccomp::Listener::new(fd).map_err(io_err("seccomp listener"))?;
        durable::serve(
            listener,
            fs.clone(),
            init.root_handle.clone(),
            log.kmsg.clone(),
            init.hostfs.clone(),
            cmd.mem,
        )
        .map_err(io_err("spawn"))?;
    }
    Ok((pid, early_outcome(cmd, log, &records)))
}

/// What init's setup reports decide before init runs: a failed setup
/// stage is a panic; failed candidates are the kernel's init search.
fn early_outcome(cmd: &CmdLine, log: &Log, records: &[(u32, i32)]) -> Option<Outcome> {
    if let Some((w, e)) = records.iter().find(|(w, _)| *w >= guest::STAGE_PROC) {
        return Some(Outcome::Panic {
            message: format!("guest setup failed at stage {w}: {}", Errno::from_raw(*e)),
        });
    }
    let failures: Vec<Errno> = records
        .iter()
        .filter(|(w, _)| *w < guest::STAGE_PROC)
        .map(|(_, e)| Errno::from_raw(*e))
        .collect();
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
        Some(_) => guestdev::SYS_SELF_BINDS
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
