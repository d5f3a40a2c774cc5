//! Seccomp user notifications for the guest kernel's monitor: the listener
//! a guest's filter hands back, and the requests held on it.
//!
//! The filter itself is installed by the guest's init before it execs
//! ([`crate::sys::guest::spawn_guest`]); the listener descriptor comes back
//! to the monitor over a socket pair ([`recv_listener`]). A held call is
//! either let run ([`Listener::resume`]) or ended with success in its
//! place ([`Listener::succeed`]).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// One held system call.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    /// The notification's cookie.
    pub id: u64,
    /// The caller's pid (in the monitor's pid namespace).
    pub pid: u32,
    /// The system-call number.
    pub nr: i32,
    /// Its arguments.
    pub args: [u64; 6],
}

/// The monitor's end of a guest filter.
pub struct Listener {
    fd: OwnedFd,
    notif_size: usize,
}

fn notif_sizes() -> io::Result<libc::seccomp_notif_sizes> {
    let mut sizes = libc::seccomp_notif_sizes {
        seccomp_notif: 0,
        seccomp_notif_resp: 0,
        seccomp_data: 0,
    };
    // SAFETY: SECCOMP_GET_NOTIF_SIZES writes a seccomp_notif_sizes through
    // the pointer, which is valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_NOTIF_SIZES,
            0,
            &mut sizes as *mut libc::seccomp_notif_sizes,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sizes)
}

impl Listener {
    /// Wraps a listener descriptor.
    pub fn new(fd: OwnedFd) -> io::Result<Listener> {
        let sizes = notif_sizes()?;
        let notif_size =
            usize::from(sizes.seccomp_notif).max(std::mem::size_of::<libc::seccomp_notif>());
        Ok(Listener { fd, notif_size })
    }

    /// Waits for the next held call. `Ok(None)` once no process uses the
    /// filter any more (every guest process has exited).
    pub fn next(&self) -> io::Result<Option<Held>> {
        loop {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll(2) on one pollfd on the stack.
            let r = unsafe { libc::poll(&mut pfd, 1, -1) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if pfd.revents & libc::POLLIN == 0 {
                // POLLHUP: the filter has no users left.
                return Ok(None);
            }
            // The kernel requires a zeroed buffer of its own size; u64s
            // keep it aligned for the struct.
            let mut buf = vec![0u64; self.notif_size.div_ceil(8)];
            // SAFETY: SECCOMP_IOCTL_NOTIF_RECV writes at most
            // `seccomp_notif` bytes (the kernel's size, which the buffer
            // holds) through the pointer.
            let r = unsafe {
                libc::ioctl(
                    self.fd.as_raw_fd(),
                    libc::SECCOMP_IOCTL_NOTIF_RECV,
                    buf.as_mut_ptr(),
                )
            };
            if r != 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    // The caller was killed while we woke, or a signal.
                    Some(libc::ENOENT) | Some(libc::EINTR) => continue,
                    _ => return Err(e),
                }
            }
            // SAFETY: the buffer holds an initialized seccomp_notif (the
            // kernel filled it; it is at least that size and aligned).
            let n = unsafe { std::ptr::read(buf.as_ptr().cast::<libc::seccomp_notif>()) };
            return Ok(Some(Held {
                id: n.id,
                pid: n.pid,
                nr: n.data.nr,
                args: n.data.args,
            }));
        }
    }

    /// Lets a held call run as the caller made it.
    pub fn resume(&self, id: u64) -> io::Result<()> {
        self.respond(libc::seccomp_notif_resp {
            id,
            val: 0,
            error: 0,
            flags: u32::try_from(libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE).unwrap_or(1),
        })
    }

    /// Ends a held call with success (return value 0) without running it.
    pub fn succeed(&self, id: u64) -> io::Result<()> {
        self.reply(id, 0)
    }

    /// Ends a held call with return value `val` without running it.
    pub fn reply(&self, id: u64, val: i64) -> io::Result<()> {
        self.respond(libc::seccomp_notif_resp {
            id,
            val,
            error: 0,
            flags: 0,
        })
    }

    /// Ends a held call with an error without running it.
    pub fn fail(&self, id: u64, errno: i32) -> io::Result<()> {
        self.respond(libc::seccomp_notif_resp {
            id,
            val: 0,
            error: -errno,
            flags: 0,
        })
    }

    /// Is the held call `id` still waiting (its caller alive)?
    pub fn still_held(&self, id: u64) -> bool {
        let mut id = id;
        // SAFETY: SECCOMP_IOCTL_NOTIF_ID_VALID reads a u64 through the
        // pointer, valid for the call.
        unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
                &mut id as *mut u64,
            ) == 0
        }
    }

    /// Copies `bytes` into the memory of the caller of held call `held`
    /// at `addr`, as seccomp_unotify(2) advises: its `/proc/PID/mem` is
    /// opened, then the call is checked to be still held, so the
    /// descriptor is known to be the caller's (not a process that reused
    /// its pid) before anything is written.
    pub fn write_to_caller(&self, held: &Held, addr: u64, bytes: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mem = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/{}/mem", held.pid))?;
        if !self.still_held(held.id) {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        mem.write_all_at(bytes, addr)
    }

    /// Reads a NUL-terminated string (at most `max` bytes) from the
    /// memory of the caller of held call `held` at `addr`; checked to be
    /// still held after the read, so the bytes are known to be the
    /// caller's.
    pub fn read_string_from_caller(
        &self,
        held: &Held,
        addr: u64,
        max: usize,
    ) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mem = std::fs::File::open(format!("/proc/{}/mem", held.pid))?;
        let mut buf = vec![0u8; max];
        let mut got = 0;
        while got < max {
            match mem.read_at(&mut buf[got..], addr + got as u64) {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    if buf[..got].contains(&0) {
                        break;
                    }
                }
                Err(e) if got == 0 => return Err(e),
                Err(_) => break,
            }
        }
        if !self.still_held(held.id) {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        let end = buf[..got]
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENAMETOOLONG))?;
        buf.truncate(end);
        Ok(buf)
    }

    fn respond(&self, mut resp: libc::seccomp_notif_resp) -> io::Result<()> {
        // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads a seccomp_notif_resp
        // from the pointer, valid for the call.
        let r = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp as *mut libc::seccomp_notif_resp,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            // ENOENT: the caller died meanwhile; nothing to answer.
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Receives the listener descriptor a guest's init sent (one SCM_RIGHTS
/// message), or `None` when the socket closed without one.
pub fn recv_listener(sock: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut byte = [0u8; 1];
    let mut iov = [io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut got = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: SCM_RIGHTS installed `fd` in this process just
                // now; nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if got.is_none() {
                    got = Some(owned);
                }
            }
        }
    }
    Ok(got)
}

/// The socket pair the guest's init sends its listener over: the monitor
/// keeps the first end, the child the second.
pub fn listener_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    Ok(socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}

/// In the guest child (async-signal-safe, no allocation): installs the
/// filter with a listener and sends the listener over `sock`, then closes
/// both. Returns the errno on failure.
///
/// The caller keeps `prog` alive and unmoved; it was built before the
/// clone.
pub fn install_and_send(prog: &[libc::sock_filter], sock: RawFd) -> Result<(), i32> {
    let Ok(len) = libc::c_ushort::try_from(prog.len()) else {
        return Err(libc::E2BIG);
    };
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER) reads the program through
    // `fprog`, which points at `prog` (valid, `len` entries). The process
    // has CAP_SYS_ADMIN in its user namespace, so no NO_NEW_PRIVS is set
    // and set-user-id programs in the guest keep working.
    let listener = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if listener < 0 {
        return Err(nix::errno::Errno::last_raw());
    }
    let listener = RawFd::try_from(listener).map_err(|_| libc::EBADF)?;
    let r = send_fd_raw(sock, listener);
    // SAFETY: both descriptors are this child's own; closing them here is
    // what keeps the listener out of the guest.
    unsafe {
        libc::close(listener);
        libc::close(sock);
    }
    r
}

/// sendmsg(2) of one descriptor with a one-byte payload, built on the
/// stack (no allocation: usable between clone and exec).
fn send_fd_raw(sock: RawFd, fd: RawFd) -> Result<(), i32> {
    #[repr(C)]
    struct Cmsg {
        hdr: libc::cmsghdr,
        fd: RawFd,
        _pad: u32,
    }
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: an all-zero cmsghdr/msghdr is a valid starting value; every
    // field the kernel reads is set below.
    let mut cmsg: Cmsg = unsafe { std::mem::zeroed() };
    // SAFETY: CMSG_LEN is a pure computation.
    cmsg.hdr.cmsg_len = unsafe { libc::CMSG_LEN(4) } as usize;
    cmsg.hdr.cmsg_level = libc::SOL_SOCKET;
    cmsg.hdr.cmsg_type = libc::SCM_RIGHTS;
    cmsg.fd = fd;
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = (&mut cmsg as *mut Cmsg).cast();
    // SAFETY: CMSG_SPACE is a pure computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as usize;
    // SAFETY: sendmsg reads the message, its iovec and control buffer, all
    // on this stack frame and valid for the call.
    if unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(nix::errno::Errno::last_raw());
    }
    Ok(())
}

/// The filter as `struct sock_filter`s, from the policy's instructions.
pub fn sock_filters(prog: &[crate::kernel::guest::policy::Insn]) -> Vec<libc::sock_filter> {
    prog.iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect()
}
