//! `eth<N>=tuntap,,MAC,GATEWAY`: a host TAP made by the setuid helper
//! `uml_net`, as the real kernel gets it (networking.md §2.5, §3.2).
//!
//! At boot, while the monitor still runs in the host's namespaces, it runs
//! `uml_net 4 tuntap up GATEWAY` with one end of a datagram socket pair as
//! standard output and receives the TAP's name, the helper's text and the
//! TAP's descriptor. The real kernel then runs `uml_net 4 add|del TAP ADDR
//! MASK` whenever the guest gives the interface an address or takes one
//! away; here the guest's network namespace is watched over rtnetlink for
//! that, and an agent process left in the host's namespaces (a setuid
//! helper does not gain root inside a user namespace) runs the helper.

use super::error::HelperError;
use crate::kernel::console::Log;
use crate::net::request::{self, AddrChange, Change, Request};
use crate::sys::guest::{close_inherited_fds, fork_helper};
use crate::sys::net::{self as sysnet, IFNAMSIZ};
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The helper, found on `PATH` as the real kernel finds it.
const HELPER: &str = "uml_net";
/// How long a helper may take before the monitor gives up on it.
const HELPER_LIMIT: Duration = Duration::from_secs(10);

/// A TAP made by `uml_net tuntap up`.
pub struct HelperTap {
    /// The TAP's descriptor.
    pub fd: OwnedFd,
    /// Its host name (`tapN`).
    pub dev: String,
    /// What the helper printed (the kernel logs it).
    pub text: String,
}

fn c_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Waits for `child` at most [`HELPER_LIMIT`], killing it after that.
fn wait_limited(child: &mut std::process::Child) -> io::Result<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        if start.elapsed() > HELPER_LIMIT {
            let _ = child.kill();
            return child.wait();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `uml_net 4 tuntap up [GATEWAY]` and takes the TAP it hands back.
/// The error is the kernel's line plus the helper's text.
pub fn tuntap_up(gate: &str) -> Result<HelperTap, HelperError> {
    let (mine, theirs) = socket::socketpair(
        AddressFamily::Unix,
        SockType::Datagram,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(HelperError::Socketpair)?;
    let mut child = Command::new(HELPER)
        .args(request::kernel_tuntap_up(gate.parse().ok()))
        .stdin(Stdio::null())
        .stdout(Stdio::from(theirs))
        .spawn()
        .map_err(|source| HelperError::Spawn {
            helper: HELPER,
            source,
        })?;
    // The helper sends one datagram and exits; a datagram pair has no end
    // of file, so wait for the exit and then read what is queued.
    let _ = wait_limited(&mut child);
    let _ = nix::fcntl::fcntl(
        mine.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut buf = vec![0u8; 4096];
    let (n, fd) = match sysnet::recv_with_fd(mine.as_fd(), &mut buf) {
        Ok(r) => r,
        Err(_) => {
            return Err(HelperError::NoMessage {
                text: String::new(),
            })
        }
    };
    let text = c_text(buf.get(IFNAMSIZ..n).unwrap_or(&[]));
    match fd {
        Some(fd) if n >= IFNAMSIZ => Ok(HelperTap {
            fd,
            dev: c_text(&buf[..IFNAMSIZ]),
            text,
        }),
        _ => {
            // On failure the whole datagram is the helper's text.
            Err(HelperError::NoMessage {
                text: c_text(&buf[..n]),
            })
        }
    }
}

/// Whether the guest's address was given or taken away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `RTM_NEWADDR`: `uml_net add`.
    Add,
    /// `RTM_DELADDR`: `uml_net del`.
    Del,
}

impl Op {
    fn word(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Del => "del",
        }
    }
}

/// An IPv4 address change on a guest interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrEvent {
    /// Given or taken away.
    pub op: Op,
    /// The interface's index in the guest's namespace.
    pub index: u32,
    /// The address.
    pub addr: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
}

impl AddrEvent {
    /// The netmask of the prefix.
    pub fn mask(&self) -> Ipv4Addr {
        let p = u32::from(self.prefix.min(32));
        Ipv4Addr::from(u32::MAX.checked_shl(32 - p).unwrap_or(0))
    }
}

const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// `RTMGRP_IPV4_IFADDR`.
const GROUP_IPV4_IFADDR: u32 = 0x10;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The IPv4 address events in one rtnetlink read: `nlmsghdr`s, each with
/// an `ifaddrmsg` and its attributes. Malformed or other messages are
/// skipped; the walk never leaves `buf`.
pub fn parse_addr_events(buf: &[u8]) -> Vec<AddrEvent> {
    let mut out = Vec::new();
    let mut at = 0;
    while let (Some(len), Some(kind)) = (u32_at(buf, at), u16_at(buf, at + 4)) {
        let len = usize::try_from(len).unwrap_or(0);
        if len < 16 || at + len > buf.len() {
            break;
        }
        let msg = &buf[at + 16..at + len];
        at += (len + 3) & !3;
        let op = match kind {
            RTM_NEWADDR => Op::Add,
            RTM_DELADDR => Op::Del,
            _ => continue,
        };
        // ifaddrmsg: family, prefixlen, flags, scope, index.
        let (Some(&family), Some(&prefix), Some(index)) = (msg.first(), msg.get(1), u32_at(msg, 4))
        else {
            continue;
        };
        if i32::from(family) != libc::AF_INET {
            continue;
        }
        let (mut local, mut address) = (None, None);
        let mut a = 8;
        while let (Some(alen), Some(atype)) = (u16_at(msg, a), u16_at(msg, a + 2)) {
            let alen = usize::from(alen);
            if alen < 4 || a + alen > msg.len() {
                break;
            }
            let data = &msg[a + 4..a + alen];
            if let Ok(v) = <[u8; 4]>::try_from(data) {
                match atype {
                    IFA_LOCAL => local = Some(Ipv4Addr::from(v)),
                    IFA_ADDRESS => address = Some(Ipv4Addr::from(v)),
                    _ => {}
                }
            }
            a += (alen + 3) & !3;
        }
        if let Some(addr) = local.or(address) {
            out.push(AddrEvent {
                op,
                index,
                addr,
                prefix,
            });
        }
    }
    out
}

/// A netlink socket in the current network namespace that hears of every
/// IPv4 address change.
pub fn address_watch() -> io::Result<OwnedFd> {
    crate::sys::net::rtnetlink_subscribe(GROUP_IPV4_IFADDR)
}

/// The host-side agent: a process left in the host's namespaces that runs
/// `uml_net add|del` for the monitor. It ends when the monitor's end of
/// its socket closes.
pub struct Agent {
    sock: OwnedFd,
}

/// Runs `uml_net 4 OP DEV ADDR MASK` and returns its text (the framed
/// output: a native-endian length, then text and a NUL).
fn run_change(op: &str, dev: &str, addr: &str, mask: &str) -> String {
    let (Ok(addr), Ok(mask)) = (addr.parse(), mask.parse()) else {
        return String::new();
    };
    let op = if op == "add" {
        Change::Add
    } else {
        Change::Del
    };
    let req = Request::Change(AddrChange {
        op,
        dev: dev.into(),
        addr,
        mask,
    });
    let op = op.word();
    let out = Command::new(HELPER)
        .args(req.to_argv())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output();
    match out {
        Ok(o) => {
            let body = o.stdout.get(4..).unwrap_or_default();
            let len = u32_at(&o.stdout, 0).map_or(0, |l| l as usize);
            let text = c_text(&body[..len.min(body.len())]);
            if o.status.success() {
                text
            } else {
                format!("{text}{HELPER} {op} {dev} exited with {}", o.status)
            }
        }
        Err(e) => format!("running {HELPER} failed: {e}"),
    }
}

impl Agent {
    /// Forks the agent. Only while the monitor is single-threaded.
    pub fn start() -> io::Result<Agent> {
        let (mine, theirs) = socket::socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        fork_helper(move || {
            // Only its socket: the monitor's end (so that the monitor's
            // exit reads as end of file here), the TAPs and the disks stay
            // with the monitor.
            if close_inherited_fds(theirs.as_fd()).is_err() {
                return 1;
            }
            let mut buf = [0u8; 512];
            loop {
                let n = match socket::recv(theirs.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                    Ok(0) | Err(_) => return 0,
                    Ok(n) => n,
                };
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let w: Vec<&str> = req.split(' ').collect();
                let text = match w[..] {
                    [op @ ("add" | "del"), dev, addr, mask] => run_change(op, dev, addr, mask),
                    _ => String::new(),
                };
                let _ = socket::send(theirs.as_raw_fd(), text.as_bytes(), MsgFlags::empty());
            }
        })?;
        Ok(Agent { sock: mine })
    }

    /// Has the agent run `uml_net OP DEV ADDR MASK`; returns its text.
    pub fn change(&self, op: Op, dev: &str, addr: Ipv4Addr, mask: Ipv4Addr) -> io::Result<String> {
        let req = format!("{} {dev} {addr} {mask}", op.word());
        socket::send(self.sock.as_raw_fd(), req.as_bytes(), MsgFlags::empty())?;
        let mut buf = vec![0u8; 4096];
        let n = socket::recv(self.sock.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

/// A guest interface whose host TAP came from `uml_net`: its index in the
/// guest's namespace, the TAP's host name and the gateway.
pub struct HelperDev {
    pub(crate) index: u32,
    pub(crate) dev: String,
    pub(crate) gate: String,
}

/// Watches the guest's IPv4 addresses on the `uml_net` devices and has the
/// agent run `uml_net add|del` for each change, as the real kernel does
/// when an address is set or removed. Call in the guest's namespace,
/// before the guest starts, so no change is missed.
pub fn watch_helper_addresses(devs: Vec<HelperDev>, agent: Agent, log: Log) -> std::io::Result<()> {
    let sock = address_watch()?;
    std::thread::Builder::new()
        .name("uml_net".into())
        .spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match nix::sys::socket::recv(
                    std::os::fd::AsRawFd::as_raw_fd(&sock),
                    &mut buf,
                    nix::sys::socket::MsgFlags::empty(),
                ) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(nix::errno::Errno::EINTR | nix::errno::Errno::ENOBUFS) => continue,
                    Err(_) => return,
                };
                for ev in parse_addr_events(&buf[..n]) {
                    let Some(d) = devs.iter().find(|d| d.index == ev.index) else {
                        continue;
                    };
                    if ev.op == Op::Add && d.gate == ev.addr.to_string() {
                        log.info("The tap IP address and the UML eth IP address must be different");
                    }
                    match agent.change(ev.op, &d.dev, ev.addr, ev.mask()) {
                        Ok(text) if text.trim().is_empty() => {}
                        Ok(text) => log.info(text.trim_end()),
                        Err(e) => {
                            log.error(&format!("uml_net: the host agent is gone: {e}"));
                            return;
                        }
                    }
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nlmsg(kind: u16, family: u8, prefix: u8, index: u32, attrs: &[(u16, [u8; 4])]) -> Vec<u8> {
        let mut body = vec![family, prefix, 0, 0];
        body.extend_from_slice(&index.to_ne_bytes());
        for (t, v) in attrs {
            body.extend_from_slice(&8u16.to_ne_bytes());
            body.extend_from_slice(&t.to_ne_bytes());
            body.extend_from_slice(v);
        }
        let mut m = Vec::new();
        m.extend_from_slice(&u32::try_from(16 + body.len()).unwrap().to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn address_messages_parse() {
        let mut buf = nlmsg(
            RTM_NEWADDR,
            2,
            24,
            3,
            &[(IFA_ADDRESS, [10, 0, 9, 9]), (IFA_LOCAL, [10, 0, 9, 2])],
        );
        buf.extend(nlmsg(
            RTM_DELADDR,
            2,
            16,
            3,
            &[(IFA_ADDRESS, [10, 1, 0, 5])],
        ));
        buf.extend(nlmsg(16, 2, 24, 3, &[(IFA_LOCAL, [1, 2, 3, 4])])); // RTM_NEWLINK
        buf.extend(nlmsg(RTM_NEWADDR, 10, 64, 3, &[])); // IPv6
        let ev = parse_addr_events(&buf);
        assert_eq!(
            ev,
            vec![
                AddrEvent {
                    op: Op::Add,
                    index: 3,
                    addr: [10, 0, 9, 2].into(),
                    prefix: 24
                },
                AddrEvent {
                    op: Op::Del,
                    index: 3,
                    addr: [10, 1, 0, 5].into(),
                    prefix: 16
                },
            ]
        );
        assert_eq!(ev[0].mask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(ev[1].mask(), Ipv4Addr::new(255, 255, 0, 0));
        let zero = AddrEvent { prefix: 0, ..ev[0] };
        assert_eq!(zero.mask(), Ipv4Addr::UNSPECIFIED);
        let full = AddrEvent {
            prefix: 200,
            ..ev[0]
        };
        assert_eq!(full.mask(), Ipv4Addr::BROADCAST);
    }

    #[test]
    fn damaged_messages_never_panic_or_escape() {
        let good = nlmsg(RTM_NEWADDR, 2, 24, 3, &[(IFA_LOCAL, [10, 0, 9, 2])]);
        for cut in 0..good.len() {
            let _ = parse_addr_events(&good[..cut]);
        }
        let mut seed = 0x1234_5678u32;
        for _ in 0..20_000 {
            let mut b = good.clone();
            for _ in 0..4 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let i = (seed >> 8) as usize % b.len();
                b[i] = (seed >> 16) as u8;
            }
            let _ = parse_addr_events(&b);
        }
    }
}
