//! System calls of the guest kernel's monitor (`kernel::monitor`): user
//! and mount namespaces, mounts, the fork of the id-map helper, the clone
//! of the guest's init into new mount and pid namespaces, ptys and the
//! terminal. Safe wrappers come from `nix` where it has them; the few raw
//! calls are here, each `unsafe` block with its `SAFETY:` note.
//!
//! The guest child runs between a `clone` of a multi-threaded process and
//! `execve`, so [`spawn_guest`] uses only async-signal-safe system calls
//! on memory prepared beforehand ([`GuestPlan`]): no allocation, no locks.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The host's `/proc`, opened before the monitor's mounts change: the
/// per-thread files the monitor writes later are found through it.
static HOST_PROC: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();

/// Unshares the monitor's namespaces: user, mount, uts, ipc and net.
/// The process must still be single-threaded.
pub fn unshare_monitor() -> nix::Result<()> {
    if let Ok(fd) = nix::fcntl::open(
        "/proc",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        // SAFETY: `open` just returned this descriptor and nothing else
        // owns it.
        let _ = HOST_PROC.set(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    nix::sched::unshare(
        CloneFlags::CLONE_NEWUSER
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWNET,
    )
}

/// Gives the processes this thread clones from now on a new time
/// namespace whose monotonic and boot-time clocks read (about) zero, so a
/// guest's `/proc/uptime` and `CLOCK_BOOTTIME` count from its own boot, as
/// on a kernel of its own. Each call starts a new namespace (one a boot).
/// The offsets are written before any process enters it, as the kernel
/// requires; the wall clock is the host's either way.
pub fn clocks_from_zero_for_children() -> io::Result<()> {
    use nix::time::{clock_gettime, ClockId};
    // The file is the thread group's (its leader's namespaces): only the
    // main thread can set what its own children get.
    if nix::unistd::gettid() != nix::unistd::getpid() {
        return Err(io::Error::other("time namespace: not the main thread"));
    }
    nix::sched::unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))?;
    let mono = clock_gettime(ClockId::CLOCK_MONOTONIC)?;
    let boot = clock_gettime(ClockId::CLOCK_BOOTTIME)?;
    // Whole seconds only: the clocks must not go below zero.
    let offsets = format!(
        "monotonic -{} 0\nboottime -{} 0\n",
        mono.tv_sec(),
        boot.tv_sec()
    );
    let proc = HOST_PROC
        .get()
        .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
    let fd = nix::fcntl::openat(
        Some(proc.as_raw_fd()),
        "self/timens_offsets",
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: `openat` just returned this descriptor and nothing else
    // owns it.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::io::Write::write_all(&mut file, offsets.as_bytes())
}

/// Forks a helper process that runs `f` and exits with its result. Only
/// for a process that is still single-threaded (the monitor before its
/// first thread), so the child may use the allocator and `std`.
pub fn fork_helper(f: impl FnOnce() -> i32) -> io::Result<Pid> {
    // SAFETY: the caller is single-threaded (documented requirement, and
    // the monitor calls this before spawning any thread), so the child is
    // a complete copy with no lock held by a vanished thread; it leaves
    // through `_exit` without running the parent's destructors twice.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(child),
        nix::unistd::ForkResult::Child => {
            let code = f();
            // SAFETY: `_exit` ends the child at once; nothing is shared.
            unsafe { libc::_exit(code) }
        }
    }
}

/// In a child made by [`fork_helper`]: closes every descriptor above 2
/// except `keep`, so that a long-lived helper holds nothing of its
/// parent's open (devices, sockets, disk images).
pub fn close_inherited_fds(keep: BorrowedFd<'_>) -> io::Result<()> {
    let keep = libc::c_uint::try_from(keep.as_raw_fd())
        .map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    let mut ranges = vec![(keep + 1, libc::c_uint::MAX)];
    if keep > 3 {
        ranges.push((3, keep - 1));
    }
    for (first, last) in ranges {
        // SAFETY: only called in a forked child, which is single-threaded;
        // the objects that own these descriptors belong to the parent's
        // stack frames, which the child never unwinds (it leaves through
        // `_exit`), so nothing uses or closes them after this.
        if unsafe { libc::close_range(first, last, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Everything the guest child needs, prepared before the clone.
pub struct GuestPlan {
    /// Where `proc` is mounted before the pivot (absolute), if anywhere.
    pub proc_dir: Option<CString>,
    /// Files bound over files of the guest's proc and sysfs once those
    /// are mounted (source, target; absolute), best effort (the guest then
    /// sees the host's file). Each source is unlinked once bound.
    pub binds: Vec<(CString, CString)>,
    /// Directories of the guest's sysfs bound onto themselves (absolute),
    /// after the binds: the mount points of filesystems a user namespace
    /// may not mount, found mounted by the boot scripts as on the kernel.
    pub self_binds: Vec<CString>,
    /// Where `sysfs` is mounted before the pivot, if anywhere.
    pub sys_dir: Option<CString>,
    /// The new root (absolute).
    pub root: CString,
    /// Init candidates: path, argv (NULL-terminated pointer array over
    /// `args`), tried in order.
    pub candidates: Vec<(CString, Vec<CString>)>,
    /// The environment.
    pub env: Vec<CString>,
    /// The console (the pty slave), made the child's fds 0, 1 and 2.
    pub console: RawFd,
    /// The seccomp filter every guest process runs under
    /// (`kernel::guest::policy`); empty for none.
    pub filter: Vec<libc::sock_filter>,
    /// The child's end of the socket the filter's listener is sent over.
    pub listener_sock: RawFd,
    /// The slave of a pty that becomes init's controlling terminal (-1
    /// for none), so that init never takes the console: on
    /// the real kernel pid 1 has no controlling terminal and opening
    /// /dev/console never gives one, which leaves the console to getty.
    pub init_ctty: RawFd,
    /// `cgroup.procs` files (open for writing) the child joins first, so
    /// that every guest process is under the guest's limits.
    pub cgroup_procs: Vec<RawFd>,
    /// Whether the child, once in those cgroups, unshares a cgroup
    /// namespace: its cgroup becomes the guest's `/`.
    pub cgroup_ns: bool,
    /// Where a cgroup2 filesystem is mounted (inside that namespace)
    /// after sysfs, before the pivot: the guest's `/sys/fs/cgroup`.
    pub cgroup_dir: Option<CString>,
}

/// Setup stages the child reports, besides exec failures.
pub const STAGE_PROC: u32 = 1000;
/// Mounting sysfs failed.
pub const STAGE_SYS: u32 = 1001;
/// pivot_root or the detach of the old root failed.
pub const STAGE_PIVOT: u32 = 1002;
/// The monitor had died before the child could watch it.
pub const STAGE_ORPHAN: u32 = 1003;
/// Joining a new session keyring failed.
pub const STAGE_KEYRING: u32 = 1004;
/// Installing the seccomp filter or sending its listener failed.
pub const STAGE_SECCOMP: u32 = 1005;

/// `CAP_SYS_RAWIO` (linux/capability.h).
const CAP_SYS_RAWIO: libc::c_ulong = 17;

/// `KEYCTL_JOIN_SESSION_KEYRING` (linux/keyctl.h).
const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
/// Joining the guest's cgroup failed.
pub const STAGE_CGROUP: u32 = 1006;
/// Unsharing the cgroup namespace failed.
pub const STAGE_CGROUPNS: u32 = 1007;
/// Mounting the guest's cgroup2 filesystem failed.
pub const STAGE_CGROUPFS: u32 = 1008;

fn ptrs(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Clones the guest's init into new mount and pid namespaces. The child
/// dies with the calling thread (PR_SET_PDEATHSIG, SIGKILL), so call this
/// from the thread that lives as long as the monitor. `alive` is the read
/// end of a pipe whose write end the monitor keeps open for its whole
/// life: the child checks it after the prctl, to catch a monitor that died
/// before. Returns the child's pid and the read end of its report pipe:
/// 8-byte records (`what`, errno) for each failed stage or exec candidate
/// (index), then end of file at the successful exec.
pub fn spawn_guest(plan: &GuestPlan, alive: BorrowedFd<'_>) -> io::Result<(Pid, OwnedFd)> {
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let argvs: Vec<Vec<*const libc::c_char>> =
        plan.candidates.iter().map(|(_, a)| ptrs(a)).collect();
    let envp = ptrs(&plan.env);
    let flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::SIGCHLD;
    // SAFETY: a clone without CLONE_VM and with a null stack behaves like
    // fork(2): the child gets a copy of the address space. The child runs
    // only `guest_child`, which makes async-signal-safe system calls on
    // memory prepared above and ends in execve or _exit.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        guest_child(plan, &argvs, &envp, alive.as_raw_fd(), report_w.as_raw_fd());
    }
    drop(report_w);
    let pid = i32::try_from(pid).map_err(|_| io::Error::other("clone returned a bad pid"))?;
    Ok((Pid::from_raw(pid), report_r))
}

fn report(fd: RawFd, what: u32, errno: i32) {
    let mut rec = [0u8; 8];
    rec[..4].copy_from_slice(&what.to_ne_bytes());
    rec[4..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: write(2) of a stack buffer to an open pipe; async-signal-safe.
    unsafe { libc::write(fd, rec.as_ptr().cast(), rec.len()) };
}

fn errno() -> i32 {
    Errno::last_raw()
}

fn guest_child(
    plan: &GuestPlan,
    argvs: &[Vec<*const libc::c_char>],
    envp: &[*const libc::c_char],
    alive: RawFd,
    rep: RawFd,
) -> ! {
    // SAFETY (whole block): raw system calls in the freshly cloned child,
    // on C strings and pointer arrays built before the clone; none of them
    // allocates or takes a lock. Every path ends in execve or _exit.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        let mut pfd = libc::pollfd {
            fd: alive,
            events: libc::POLLIN,
            revents: 0,
        };
        if libc::poll(&mut pfd, 1, 0) != 0 {
            // The write end is gone (or readable): the monitor died.
            report(rep, STAGE_ORPHAN, 0);
            libc::_exit(127);
        }
        for &fd in &plan.cgroup_procs {
            // "0": the writing process itself.
            if libc::write(fd, c"0".as_ptr().cast(), 1) != 1 {
                report(rep, STAGE_CGROUP, errno());
                libc::_exit(127);
            }
        }
        // The namespace's root is the cgroup the child is in now (a clone
        // flag would root it at the monitor's).
        if plan.cgroup_ns && libc::unshare(libc::CLONE_NEWCGROUP) != 0 {
            report(rep, STAGE_CGROUPNS, errno());
            libc::_exit(127);
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMIN() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let none: *const libc::c_char = std::ptr::null();
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        if let Some(dir) = &plan.proc_dir {
            if libc::mount(
                c"proc".as_ptr(),
                dir.as_ptr(),
                c"proc".as_ptr(),
                flags,
                none.cast(),
            ) != 0
            {
                report(rep, STAGE_PROC, errno());
                libc::_exit(127);
            }
        }
        if let Some(dir) = &plan.sys_dir {
            if libc::mount(
                c"sysfs".as_ptr(),
                dir.as_ptr(),
                c"sysfs".as_ptr(),
                flags,
                none.cast(),
            ) != 0
            {
                report(rep, STAGE_SYS, errno());
                libc::_exit(127);
            }
        }
        if let Some(dir) = &plan.cgroup_dir {
            if libc::mount(
                c"cgroup2".as_ptr(),
                dir.as_ptr(),
                c"cgroup2".as_ptr(),
                flags,
                none.cast(),
            ) != 0
            {
                report(rep, STAGE_CGROUPFS, errno());
                libc::_exit(127);
            }
        }
        for (file, target) in &plan.binds {
            // Best effort: the guest then sees the host's file.
            libc::mount(
                file.as_ptr(),
                target.as_ptr(),
                none,
                libc::MS_BIND,
                none.cast(),
            );
            libc::unlink(file.as_ptr());
        }
        for dir in &plan.self_binds {
            libc::mount(dir.as_ptr(), dir.as_ptr(), none, libc::MS_BIND, none.cast());
        }
        let dot = c".".as_ptr();
        if libc::chdir(plan.root.as_ptr()) != 0
            || libc::syscall(libc::SYS_pivot_root, dot, dot) != 0
            || libc::umount2(dot, libc::MNT_DETACH) != 0
            || libc::chdir(c"/".as_ptr()) != 0
        {
            report(rep, STAGE_PIVOT, errno());
            libc::_exit(127);
        }
        libc::setsid();
        for target in 0..3 {
            libc::dup2(plan.console, target);
        }
        if plan.init_ctty >= 0 {
            // A session leader with no terminal may take this one.
            libc::ioctl(plan.init_ctty, libc::TIOCSCTTY, 0);
        }
        // The invoking user's session keyring stays behind: the guest gets
        // an anonymous one of its own (kernels without keys: nothing to
        // share).
        let null: *const libc::c_char = std::ptr::null();
        if libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, null) < 0
            && errno() != libc::ENOSYS
        {
            report(rep, STAGE_KEYRING, errno());
            libc::_exit(127);
        }
        // CAP_SYS_RAWIO gives nothing in a user namespace (the kernel
        // checks it only against the initial one). Out of the bounding
        // set, it says so to the guest: systemd then skips the debugfs,
        // tracefs and configfs mounts it could not make here, as in a
        // container (Debian's UML kernel has no debugfs or tracefs).
        libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_RAWIO, 0, 0, 0);
        // Nothing the monitor inherited or opened reaches init: every
        // descriptor above 2 closes at exec (the report pipe still works
        // until then).
        if libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            let mut fd = 3;
            while fd < 65536 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                fd += 1;
            }
        }
        if plan.listener_sock >= 0 && !plan.filter.is_empty() {
            if let Err(e) = super::seccomp::install_and_send(&plan.filter, plan.listener_sock) {
                report(rep, STAGE_SECCOMP, e);
                libc::_exit(127);
            }
        }
        for (i, ((path, _), argv)) in plan.candidates.iter().zip(argvs).enumerate() {
            libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            report(rep, u32::try_from(i).unwrap_or(u32::MAX), errno());
        }
        libc::_exit(127)
    }
}

/// Reads the report pipe to its end: the (what, errno) records.
pub fn read_reports(fd: OwnedFd) -> io::Result<Vec<(u32, i32)>> {
    use std::io::Read;
    let mut file = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    file.by_ref().take(64 * 1024).read_to_end(&mut bytes)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| {
            let what = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
            let e = i32::from_ne_bytes([c[4], c[5], c[6], c[7]]);
            (what, e)
        })
        .collect())
}

/// A pipe whose write end the monitor keeps for its whole life.
pub fn alive_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

/// mount(2), with errors naming the source and the target.
pub fn mount(
    source: &str,
    target: &std::path::Path,
    fstype: Option<&str>,
    flags: nix::mount::MsFlags,
    data: Option<&str>,
) -> io::Result<()> {
    nix::mount::mount(Some(source), target, fstype, flags, data).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("mount {source} on {}: {e}", target.display()),
        )
    })
}

/// Opens a new pty master on the devpts instance whose `ptmx` is given,
/// unlocks it and returns the master and the slave's number.
pub fn open_pty(ptmx: &std::path::Path) -> io::Result<(OwnedFd, u32)> {
    use std::os::unix::fs::OpenOptionsExt;
    let master = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(ptmx)?;
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from the pointer, valid for the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int through the pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((OwnedFd::from(master), n))
}

/// Sets the pty's window size.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The window size of a terminal, if it is one.
pub fn get_winsize(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize through the pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Duplicates a descriptor the process inherited (`fd:N` channels).
pub fn dup_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on any integer is safe; it fails with
    // EBADF when the descriptor is not open.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// The C string of a path, refusing inner NUL bytes.
pub fn cstring(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in a path"))
}

/// Ignores SIGHUP, as linux.uml does (spec kernel-cmdline.md §6.4). The
/// guest child sets every signal back to its default.
pub fn ignore_sighup() -> io::Result<()> {
    // SAFETY: installing SIG_IGN runs no handler code, so no
    // async-signal-safety question arises.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGHUP,
            nix::sys::signal::SigHandler::SigIgn,
        )
    }?;
    Ok(())
}

/// Probes whether this process may create a user namespace, in a forked
/// child so the caller is unchanged. Call while single-threaded.
pub fn probe_userns() -> io::Result<Result<(), Errno>> {
    let pid = fork_helper(|| match nix::sched::unshare(CloneFlags::CLONE_NEWUSER) {
        Ok(()) => 0,
        Err(e) => (e as i32).clamp(1, 255),
    })?;
    match nix::sys::wait::waitpid(pid, None)? {
        nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(Ok(())),
        nix::sys::wait::WaitStatus::Exited(_, e) => Ok(Err(Errno::from_raw(e))),
        _ => Ok(Err(Errno::EPERM)),
    }
}

/// The session whose controlling terminal is the slave of the pty
/// `master` (TIOCGSID on the master answers for its slave), as a pid in
/// the caller's pid namespace; ENOTTY while no session has it.
pub fn pty_session(master: BorrowedFd<'_>) -> io::Result<i32> {
    let mut sid: libc::pid_t = 0;
    // SAFETY: TIOCGSID writes one pid_t through the pointer, which points
    // at a live local of that type.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGSID, &mut sid) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sid)
}

/// The slave of a pty, opened from its master (TIOCGPTPEER): no path is
/// resolved, so nothing the guest did to `/dev/pts` matters.
pub fn pty_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes the open flags as its integer argument and
    // returns a new descriptor.
    let r = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor from the ioctl that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}
