//! The uml_switch daemon: an epoll loop over the control listener, the
//! shared data socket, client control connections, an optional TAP uplink,
//! stdin (when a tty) and a signalfd (spec §4.2–4.6).
//!
//! Everything is non-blocking: frames are received in batches
//! (`recvmmsg`), forwarded by [`Forwarder`], and sent in batches
//! (`sendmmsg`) with `MSG_DONTWAIT`, so a guest whose queue is full loses
//! its own frames and never holds up the others. Datagrams from addresses
//! that are not registered ports, short or oversized frames, and malformed
//! control requests are dropped and counted; the switch keeps running.
//! SIGINT, SIGTERM and SIGHUP remove the control socket before exiting.
//!
//! This file holds the loop, the ports and the control path; the frame
//! path is the child module `dataplane`.

use super::core::Forwarder;
use super::frame::MAX_FRAME_LEN;
use super::pcap::Capture;
use super::proto::{ControlError, Protocol, Request, UnixAddr, REQUEST_LEN};
pub use super::setup::SwitchError;
use super::setup::{
    bind_data_abstract, bind_data_path, bind_listener, make_vde_dir, open_tap, port_socket,
    port_socket_in, sys,
};
use super::spin::Spin;
use super::vde::{self, PortNumbers, PortRequest, VdeRequest};
use super::PcapTarget;
use super::SwitchArgs;
use super::{FastState, PortId};
use crate::sys::net::{strerror, RecvSlot};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{self, sockopt};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How the daemon ended (the binary turns it into an exit status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// EOF on a terminal stdin: exit 0.
    Eof,
    /// A termination signal: the binary re-raises it, as the original does.
    Signal(Signal),
}

/// What was dropped and why (printed on stderr at exit).
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Frames received from ports.
    pub frames_in: u64,
    /// Copies sent to ports.
    pub frames_out: u64,
    /// Datagrams from addresses that are not ports (spoofed or stale).
    pub unknown_sender: u64,
    /// Datagrams too short or too long to be Ethernet frames.
    pub bad_frames: u64,
    /// Copies dropped because a port's queue was full or it vanished.
    pub send_drops: u64,
    /// Control requests refused.
    pub bad_requests: u64,
}

const LISTEN: u64 = 1 << 40;
const DATA: u64 = 2 << 40;
const SIGNAL: u64 = 3 << 40;
const STDIN: u64 = 4 << 40;
const TAP: u64 = 5 << 40;
const CONN: u64 = 6 << 40;
const PORT_DATA: u64 = 7 << 40;
const VXLAN: u64 = 8 << 40;
/// Datagrams per receive call: the socket queue holds at most
/// `net.unix.max_dgram_qlen` (10 by default), so more slots only cost set-up.
const BATCH: usize = 16;
const AGE_EVERY: Duration = Duration::from_secs(2);
const MAX_BATCHES_PER_WAKEUP: usize = 64;
const UNKNOWN_LOG_PER_SEC: u64 = 100;
/// How long a new control connection may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a port's frames go out.
enum Sink {
    /// The port's own data socket, connected to the client (normal mode),
    /// and the socket's address.
    Port(Rc<OwnedFd>, UnixAddr),
    /// The shared data socket, to the client's address (`-compat-v0`, or a
    /// client address that does not take connections).
    Shared(UnixAddr),
    Tap,
    /// VXLAN peer number N.
    Vxlan(usize),
}

struct Conn {
    stream: UnixStream,
    port: Option<PortId>,
    /// When the connection was accepted (a request must follow soon).
    since: Instant,
    /// `-vde`: the port number and the data socket file in the directory.
    vde_port: Option<(u32, Option<PathBuf>)>,
}

/// The VDE switch directory being served (`-vde`).
struct VdeDir {
    dir: PathBuf,
    /// Mode of the data sockets.
    mode: u32,
    ports: PortNumbers,
}

/// A running switch.
pub struct Daemon {
    epoll: Epoll,
    listener: UnixListener,
    data: Rc<OwnedFd>,
    data_addr: UnixAddr,
    signals: SignalFd,
    tap: Option<(File, PortId)>,
    conns: HashMap<RawFd, Conn>,
    sinks: HashMap<PortId, Sink, FastState>,
    by_addr: HashMap<UnixAddr, PortId, FastState>,
    fwd: Forwarder,
    slots: Vec<RecvSlot>,
    /// The lists of copies to send, kept between batches for their room.
    egress: Egress<'static>,
    start: Instant,
    /// Time since `start` when the current events were picked up: one
    /// clock read per wake-up serves every frame it brings.
    now: Duration,
    last_age: Instant,
    ctl_path: PathBuf,
    data_path: Option<PathBuf>,
    stats: Stats,
    /// (second, lines) for the `unknown Addr` rate limit.
    unknown_log: (u64, u64),
    /// The listener is out of epoll after an `accept` failure.
    listener_paused: bool,
    /// The log: standard output, or standard error when `-pcap -` has
    /// standard output.
    out: Box<dyn Write>,
    /// `-pcap`: the capture.
    pcap: Option<Capture>,
    /// `-vxlan`: the uplink to the peers.
    vxlan: Option<vxlan::Uplink>,
    /// Tag of the next port socket's abstract name.
    next_port_tag: u32,
    /// Whether to poll rather than sleep (see `spin`).
    spin: Spin,
    /// Frames received since the last wait.
    round_frames: usize,
    /// `-vde`: the directory, its modes and port numbers.
    vde: Option<VdeDir>,
}

fn log(out: &mut dyn Write, line: std::fmt::Arguments<'_>) {
    // Each line is flushed (the original's were lost in a stdio buffer).
    let _ = out.write_fmt(line);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn port_of_fd(fd: RawFd) -> PortId {
    PortId(u32::try_from(fd).unwrap_or(u32::MAX))
}

mod dataplane;
mod vxlan;
use dataplane::Egress;
pub use vxlan::VxlanStats;

impl Daemon {
    /// Sets the switch up as `args` says and prints the original's
    /// start-up lines (`prog` is argv\[0\]).
    pub fn start(args: &SwitchArgs, prog: &str) -> Result<Daemon, SwitchError> {
        let mut out: Box<dyn Write> = match args.pcap {
            Some(PcapTarget::Stdout) => Box::new(io::stderr()),
            _ => Box::new(io::stdout()),
        };
        for n in &args.notices {
            log(&mut out, format_args!("{n}"));
        }
        // Two descriptors a port (control stream and data socket): take
        // the whole hard limit, so the soft 1024 does not cap a lab at 500
        // guests.
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            if soft < hard {
                let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
            }
        }
        let vde_modes = args.vde.as_ref().map(|v| vde::modes(v.mode, v.dirmode));
        if let (Some(v), Some((_, dirmode))) = (&args.vde, vde_modes) {
            make_vde_dir(&v.dir, dirmode)?;
        }
        let pcap = match &args.pcap {
            None => None,
            Some(t) => {
                let (made, name) = match t {
                    PcapTarget::Stdout => (Capture::stdout(), PathBuf::from("-")),
                    PcapTarget::File(p) => (Capture::create(p), p.clone()),
                };
                Some(made.map_err(|err| SwitchError::Capture { path: name, err })?)
            }
        };
        let uplink = args.vxlan.as_ref().map(vxlan::Uplink::open).transpose()?;
        let listener = bind_listener(&args.ctl)?;
        if let Some((mode, _)) = vde_modes {
            use std::os::unix::fs::PermissionsExt;
            let perm = std::fs::Permissions::from_mode(mode);
            std::fs::set_permissions(&args.ctl, perm).map_err(|err| SwitchError::Bind {
                kind: "control",
                path: args.ctl.clone(),
                err,
            })?;
        }
        let cleanup_ctl = |e| {
            let _ = std::fs::remove_file(&args.ctl);
            e
        };
        listener
            .set_nonblocking(true)
            .map_err(|err| cleanup_ctl(SwitchError::Sys { op: "fcntl", err }))?;
        let (data, data_addr) = match &args.data {
            Some(p) => {
                let addr = UnixAddr::path(p.as_os_str().as_encoded_bytes())
                    .ok_or_else(|| SwitchError::Bind {
                        kind: "data",
                        path: p.clone(),
                        err: io::Error::from_raw_os_error(libc::ENAMETOOLONG),
                    })
                    .map_err(cleanup_ctl)?;
                (bind_data_path(p).map_err(cleanup_ctl)?, addr)
            }
            None => bind_data_abstract().map_err(cleanup_ctl)?,
        };
        // Room for many frames in flight to slow receivers (each holds at
        // most net.unix.max_dgram_qlen of them against our send buffer).
        let _ = socket::setsockopt(&data, sockopt::SndBuf, &(4 << 20));
        let _ = socket::setsockopt(&data, sockopt::RcvBuf, &(4 << 20));

        let mut line = match &args.data {
            Some(d) => format!(
                "{prog} attached to unix sockets '{}' and '{}'",
                args.ctl.display(),
                d.display()
            ),
            None => format!("{prog} attached to unix socket '{}'", args.ctl.display()),
        };
        if let Some(t) = &args.tap {
            line.push_str(&format!(" tap device '{t}'"));
        }
        log(&mut out, format_args!("{line}"));

        let tap = match &args.tap {
            Some(dev) => match open_tap(dev) {
                Ok(f) => {
                    let port = port_of_fd(f.as_raw_fd());
                    log(&mut out, format_args!("New connection"));
                    Some((f, port))
                }
                Err(e) => {
                    eprintln!("Failed to attach tap device '{dev}': {}", strerror(&e));
                    None
                }
            },
            None => None,
        };
        if args.daemon {
            // Before the signalfd and epoll exist: a signalfd registered
            // with epoll keeps waking the process that created it.
            nix::unistd::daemon(false, true).map_err(|e| cleanup_ctl(sys("daemon")(e)))?;
        }

        let mut mask = SigSet::empty();
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            mask.add(s);
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
            .map_err(sys("sigprocmask"))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(sys("signalfd"))?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(sys("epoll_create"))?;
        let ev = |t| EpollEvent::new(EpollFlags::EPOLLIN, t);
        epoll.add(&listener, ev(LISTEN)).map_err(sys("epoll_ctl"))?;
        epoll.add(&data, ev(DATA)).map_err(sys("epoll_ctl"))?;
        epoll.add(&signals, ev(SIGNAL)).map_err(sys("epoll_ctl"))?;
        if nix::unistd::isatty(0).unwrap_or(false) {
            epoll
                .add(io::stdin(), ev(STDIN))
                .map_err(sys("epoll_ctl"))?;
        }

        let mut d = Daemon {
            epoll,
            listener,
            data: Rc::new(data),
            data_addr,
            signals,
            tap: None,
            conns: HashMap::new(),
            sinks: HashMap::default(),
            by_addr: HashMap::default(),
            fwd: Forwarder::new(args.hub),
            slots: (0..BATCH)
                .map(|_| RecvSlot::new(MAX_FRAME_LEN + 1))
                .collect(),
            egress: Egress::default(),
            start: Instant::now(),
            now: Duration::ZERO,
            last_age: Instant::now(),
            ctl_path: args.ctl.clone(),
            data_path: args.data.clone(),
            stats: Stats::default(),
            unknown_log: (0, 0),
            listener_paused: false,
            out,
            pcap,
            vxlan: uplink,
            next_port_tag: 0,
            spin: Spin::default(),
            round_frames: 0,
            vde: args.vde.as_ref().map(|v| VdeDir {
                dir: v.dir.clone(),
                mode: vde_modes.map_or(vde::DEFAULT_MODE, |m| m.0),
                // Not limited to vde_switch's 31: a lab's domain may hold more.
                ports: PortNumbers::new(u32::MAX),
            }),
        };
        d.check_crowded();
        if let Some(up) = &d.vxlan {
            d.epoll.add(&up.sock, ev(VXLAN)).map_err(sys("epoll_ctl"))?;
            for i in 0..up.peer_count() {
                let port = vxlan::peer_port(i);
                d.fwd.add_port(port);
                d.sinks.insert(port, Sink::Vxlan(i));
            }
            if let Some(a) = &args.vxlan {
                let peers: Vec<String> = a.peers.iter().map(|p| p.to_string()).collect();
                log(
                    &mut d.out,
                    format_args!("VXLAN {} on {}, peers {}", a.vni, a.local, peers.join(" ")),
                );
            }
        }
        if let Some((f, port)) = tap {
            d.epoll.add(&f, ev(TAP)).map_err(sys("epoll_ctl"))?;
            d.fwd.add_port(port);
            d.sinks.insert(port, Sink::Tap);
            d.tap = Some((f, port));
        }
        Ok(d)
    }

    /// What was dropped so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// What the VXLAN uplink counted, when there is one.
    pub fn vxlan_stats(&self) -> Option<VxlanStats> {
        self.vxlan.as_ref().map(|u| u.stats)
    }

    /// How a port is named in the log: its number, or the VXLAN peer.
    fn port_label(&self, p: PortId) -> String {
        match (vxlan::peer_index(p), &self.vxlan) {
            (Some(i), Some(up)) => match up.peer(i) {
                Some(a) => format!("vxlan:{a}"),
                None => p.0.to_string(),
            },
            _ => p.0.to_string(),
        }
    }

    /// Serves until EOF on a terminal stdin or a termination signal; the
    /// control socket (and a compat-v0 data socket) is removed on the way out.
    pub fn run(&mut self) -> Result<Exit, SwitchError> {
        let mut events = vec![EpollEvent::empty(); 256];
        let exit = loop {
            // While frames keep coming, poll without sleeping; otherwise
            // sleep until the next event.
            let before = Instant::now();
            let polling = self.spin.polling(before);
            let timeout: u16 = if polling { 0 } else { 2000 };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    self.cleanup();
                    return Err(SwitchError::Sys {
                        op: "epoll_wait",
                        err: e.into(),
                    });
                }
            };
            let woke = Instant::now();
            self.spin.waited(woke.saturating_duration_since(before));
            self.now = woke.saturating_duration_since(self.start);
            let mut done = None;
            for ev in &events[..n] {
                let token = ev.data();
                match token & !((1 << 40) - 1) {
                    LISTEN => self.accept_all(),
                    DATA => self.on_data(),
                    PORT_DATA => self.on_port_data(PortId(
                        u32::try_from(token & ((1 << 40) - 1)).unwrap_or(u32::MAX),
                    )),
                    TAP => self.on_tap(),
                    VXLAN => self.on_vxlan(),
                    SIGNAL => done = self.on_signal().or(done),
                    STDIN => {
                        let mut buf = [0u8; 128];
                        let hup = ev.events().contains(EpollFlags::EPOLLHUP);
                        if hup || matches!(io::stdin().read(&mut buf), Ok(0)) {
                            log(
                                &mut self.out,
                                format_args!("EOF on stdin, cleaning up and exiting"),
                            );
                            done = Some(Exit::Eof);
                        }
                    }
                    _ => self.on_conn(RawFd::try_from(token & ((1 << 40) - 1)).unwrap_or(-1)),
                }
            }
            if n > 0 {
                let frames = std::mem::take(&mut self.round_frames);
                self.spin.handled(Instant::now(), frames, !polling);
            }
            if woke.saturating_duration_since(self.last_age) >= AGE_EVERY {
                self.housekeeping();
            }
            if let Some(e) = done {
                break e;
            }
        };
        self.cleanup();
        Ok(exit)
    }

    fn cleanup(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.ctl_path) {
            log(
                &mut self.out,
                format_args!(
                    "Couldn't remove control socket '{}' : {}",
                    self.ctl_path.display(),
                    strerror(&e)
                ),
            );
        }
        if let Some(v) = &self.vde {
            // Port sockets first, so that the directory can go.
            for c in self.conns.values() {
                if let Some((_, Some(f))) = &c.vde_port {
                    let _ = std::fs::remove_file(f);
                }
            }
            if let Err(e) = std::fs::remove_dir(&v.dir) {
                log(
                    &mut self.out,
                    format_args!(
                        "Could not remove ctl dir '{}': {}",
                        v.dir.display(),
                        strerror(&e)
                    ),
                );
            }
        }
        if let Some(p) = &self.data_path {
            if let Err(e) = std::fs::remove_file(p) {
                log(
                    &mut self.out,
                    format_args!(
                        "Couldn't remove data socket '{}' : {}",
                        p.display(),
                        strerror(&e)
                    ),
                );
            }
        }
        let s = self.stats;
        eprintln!(
            "uml_switch: {} frames in, {} out; dropped: {} from unknown senders, {} malformed, {} to full or gone ports; {} bad control requests",
            s.frames_in, s.frames_out, s.unknown_sender, s.bad_frames, s.send_drops, s.bad_requests
        );
        if let Some(v) = self.vxlan.as_ref().map(|u| u.stats) {
            eprintln!(
                "uml_switch: vxlan: {} datagrams in, {} out; dropped: {} malformed, {} foreign VNI, {} from unknown hosts; {} send errors",
                v.datagrams_in, v.datagrams_out, v.malformed, v.foreign_vni, v.unknown_host, v.send_errors
            );
        }
        if let Some(c) = &self.pcap {
            eprintln!(
                "uml_switch: captured {} frames, {} not written",
                c.written, c.lost
            );
        }
    }

    fn on_signal(&mut self) -> Option<Exit> {
        match self.signals.read_signal() {
            Ok(Some(info)) => {
                let sig = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0))
                    .unwrap_or(Signal::SIGTERM);
                log(
                    &mut self.out,
                    format_args!("Caught signal {}, cleaning up and exiting", sig as i32),
                );
                Some(Exit::Signal(sig))
            }
            _ => None,
        }
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let fd = stream.as_raw_fd();
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let token = CONN | u64::try_from(fd).unwrap_or(0);
                    if self
                        .epoll
                        .add(&stream, EpollEvent::new(EpollFlags::EPOLLIN, token))
                        .is_err()
                    {
                        continue;
                    }
                    self.conns.insert(
                        fd,
                        Conn {
                            stream,
                            port: None,
                            since: Instant::now(),
                            vde_port: None,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors or similar: stop listening until
                    // the next housekeeping tick instead of spinning on a
                    // connection that cannot be accepted.
                    eprintln!("accept: {}", strerror(&e));
                    if self.epoll.delete(&self.listener).is_ok() {
                        self.listener_paused = true;
                    }
                    return;
                }
            }
        }
    }

    /// Polls only while the machine has a CPU to spare (see `spin`).
    fn check_crowded(&mut self) {
        if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            self.spin.set_crowded(super::spin::crowded(&l, cpus));
        }
    }

    /// Every 2 s: see whether the machine is crowded, age the MAC table, drop connections that never sent
    /// their request, and listen again after running out of descriptors.
    fn housekeeping(&mut self) {
        self.check_crowded();
        self.fwd.age(self.start.elapsed());
        self.last_age = Instant::now();
        let stale: Vec<RawFd> = self
            .conns
            .iter()
            .filter(|(_, c)| c.port.is_none() && c.since.elapsed() > REQUEST_TIMEOUT)
            .map(|(&fd, _)| fd)
            .collect();
        for fd in stale {
            self.stats.bad_requests += 1;
            self.close_conn(fd);
        }
        if self.listener_paused {
            let ev = EpollEvent::new(EpollFlags::EPOLLIN, LISTEN);
            self.listener_paused = self.epoll.add(&self.listener, ev).is_err();
        }
    }

    /// Port `port`'s client closed its data socket (its control stream
    /// may still be open): stop using the port's own socket, which the
    /// kernel has disconnected and would now take datagrams from anyone.
    /// Frames for the port are dropped until its control stream closes.
    fn data_socket_gone(&mut self, port: PortId) {
        if let Some(Sink::Port(sock, _)) = self.sinks.remove(&port) {
            let _ = self.epoll.delete(&*sock);
            log(
                &mut self.out,
                format_args!("Port {}: its data socket is gone", port.0),
            );
        }
    }

    fn close_conn(&mut self, fd: RawFd) {
        if let Some(conn) = self.conns.remove(&fd) {
            let _ = self.epoll.delete(&conn.stream);
            if let (Some((n, file)), Some(v)) = (&conn.vde_port, &mut self.vde) {
                v.ports.free(*n);
                if let Some(f) = file {
                    let _ = std::fs::remove_file(f);
                }
            }
            if let Some(port) = conn.port {
                self.fwd.remove_port(port);
                if let Some(Sink::Port(sock, _)) = self.sinks.remove(&port) {
                    let _ = self.epoll.delete(&*sock);
                }
                self.by_addr.retain(|_, p| *p != port);
            }
        }
    }

    fn on_conn(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.get_mut(&fd) else {
            return;
        };
        let mut buf = [0u8; vde::REQBUFLEN];
        let want = if self.vde.is_some() {
            vde::REQBUFLEN
        } else {
            REQUEST_LEN
        };
        let registered = conn.port.is_some();
        let n = match conn.stream.read(&mut buf[..want]) {
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                return
            }
            Err(e) => {
                eprintln!("Reading request: {}", strerror(&e));
                return self.close_conn(fd);
            }
            Ok(0) => {
                let what = if registered {
                    "Disconnect"
                } else {
                    "EOF from new port"
                };
                // Logged once the port is gone, so whoever reads the log
                // finds its number and socket file already free.
                self.close_conn(fd);
                return log(&mut self.out, format_args!("{what}"));
            }
            Ok(n) => n,
        };
        if registered {
            // The control stream carries only the one request.
            self.stats.bad_requests += 1;
            log(&mut self.out, format_args!("Bad request"));
            return self.close_conn(fd);
        }
        let parsed = match self.vde {
            Some(_) => vde::parse(&buf[..n]),
            None => Request::new_unchecked(&buf[..n])
                .parse()
                .map(|p| VdeRequest {
                    protocol: p.protocol,
                    addr: p.addr,
                    port: PortRequest::Any,
                    description: String::new(),
                }),
        };
        let req = match parsed {
            Ok(r) => r,
            Err(e) => {
                self.stats.bad_requests += 1;
                match e {
                    ControlError::BadType(_) => log(&mut self.out, format_args!("{e}")),
                    _ => eprintln!("{e}"),
                }
                return self.close_conn(fd);
            }
        };
        if self.by_addr.contains_key(&req.addr) {
            self.stats.bad_requests += 1;
            eprintln!("Refusing a port for a data address that another port already uses");
            return self.close_conn(fd);
        }
        let own = |s: &Sink| matches!(s, Sink::Port(_, a) if *a == req.addr);
        if req.addr == self.data_addr || self.sinks.values().any(own) {
            // Frames "to" this port would come back in as its own.
            self.stats.bad_requests += 1;
            eprintln!("Refusing a port for the switch's own data address");
            return self.close_conn(fd);
        }
        let port = port_of_fd(fd);
        let vde_port = match self.vde.as_mut().map(|v| v.ports.alloc(req.port)) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(e)) => {
                self.stats.bad_requests += 1;
                eprintln!("Refusing a VDE port: {e}");
                return self.close_conn(fd);
            }
        };
        if let Some(c) = self.conns.get_mut(&fd) {
            c.port = Some(port);
            c.vde_port = vde_port.map(|n| (n, None));
        }
        let (sink, reply, file) = self.new_sink(port, &req.addr, req.protocol, vde_port);
        if let (Some(c), Some(n)) = (self.conns.get_mut(&fd), vde_port) {
            c.vde_port = Some((n, file));
        }
        self.sinks.insert(port, sink);
        self.by_addr.insert(req.addr, port);
        self.fwd.add_port(port);
        log(&mut self.out, format_args!("New connection"));
        if let Some(n) = vde_port {
            log(
                &mut self.out,
                format_args!("VDE port {n}: {}", req.description),
            );
        }
        if req.protocol != Protocol::V0 {
            let sent = self.conns.get_mut(&fd).map(|c| c.stream.write(&reply.0));
            if !matches!(sent, Some(Ok(n)) if n == reply.0.len()) {
                eprintln!("Sending data socket name: short write");
                self.close_conn(fd);
            }
        }
    }

    /// A new port's way out, the data address to tell its client, and
    /// the socket file made for it: a socket of its own connected to the
    /// client (see [`port_socket`]; with `-vde`, a file in the directory
    /// for clients whose own socket is a file, see [`port_socket_in`]),
    /// or the shared socket in `-compat-v0` mode, for v0 requests, and for
    /// a client address that does not take connections.
    fn new_sink(
        &mut self,
        port: PortId,
        client: &UnixAddr,
        proto: Protocol,
        vde_port: Option<u32>,
    ) -> (Sink, UnixAddr, Option<PathBuf>) {
        if self.data_path.is_some() || proto == Protocol::V0 {
            return (Sink::Shared(*client), self.data_addr, None);
        }
        let named = match (&self.vde, vde_port) {
            (Some(v), Some(n)) if !client.is_abstract() => Some((v.dir.clone(), n, v.mode)),
            _ => None,
        };
        let made = match named {
            Some((dir, n, mode)) => port_socket_in(client, &dir, n, mode)
                .map(|(sock, path, addr)| (sock, addr, Some(path))),
            None => port_socket(client, &mut self.next_port_tag).map(|(s, a)| (s, a, None)),
        };
        let registered = made.and_then(|(sock, addr, file)| {
            let ev = EpollEvent::new(EpollFlags::EPOLLIN, PORT_DATA | u64::from(port.0));
            if let Err(e) = self.epoll.add(&sock, ev) {
                if let Some(f) = &file {
                    let _ = std::fs::remove_file(f);
                }
                return Err(e.into());
            }
            Ok((sock, addr, file))
        });
        match registered {
            Ok((sock, addr, file)) => (Sink::Port(Rc::new(sock), addr), addr, file),
            Err(e) => {
                eprintln!(
                    "Port {}: no data socket of its own ({}); using the shared one",
                    port.0,
                    strerror(&e)
                );
                (Sink::Shared(*client), self.data_addr, None)
            }
        }
    }
}

/// Ends the process by `sig` with its default action, as the original does
/// after cleaning up (so a SIGINT'ed switch exits with status 130). Returns
/// only if the signal did not kill the process.
pub fn die_by(sig: Signal) {
    let _ = std::io::stdout().flush();
    let _ = crate::sys::process::default_action(sig);
    let _ = nix::sys::signal::raise(sig);
    let mut mask = SigSet::empty();
    mask.add(sig);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&mask), None);
}
