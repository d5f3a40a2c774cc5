//! Host-side network set-up for `uml_net`, through the kernel's own
//! interfaces instead of `ifconfig`/`route`/`arp`/`bash` (spec §2.5, §2.6,
//! §2.8): TUN ioctls, `SIOCSIFADDR`/`SIOCSIFFLAGS`, `SIOCADDRT`,
//! `SIOCSARP`, and writes to `/proc/sys`.
//!
//! Before touching an interface for `add`/`del` it checks that the device
//! is a TAP owned by the calling user (the TUN driver's `tun_flags` and
//! `owner` attributes in sysfs, cross-checked against the interface index
//! the kernel reports for this network namespace).

use super::request::{AddrChange, Change};
use super::tap::{Mode, Tap, TapError, CLONE_DEVICE};
use crate::sys::net::{self as sysnet, strerror, IFF_TAP};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use thiserror::Error;

/// Why a host set-up step failed (the text goes to the guest's console).
#[derive(Debug, Error)]
pub enum HostError {
    /// The device is missing, not a TAP, or not the caller's.
    #[error("refusing to touch '{dev}': {why}")]
    NotYours {
        /// The interface name.
        dev: String,
        /// What was wrong.
        why: String,
    },
    /// A system call failed.
    #[error("{op}: {}", strerror(err))]
    Sys {
        /// What was being done.
        op: String,
        /// The OS error.
        err: io::Error,
    },
    /// `/proc/net/route` did not parse.
    #[error("Didn't parse /proc/net/route at line {line}")]
    RouteTable {
        /// The 1-based line number.
        line: usize,
    },
    /// The state directory could not be used.
    #[error("state directory: {0}")]
    State(#[from] super::statedir::StateError),
    /// A limit was reached.
    #[error("{0}")]
    Limit(String),
}

fn sys(op: impl Into<String>) -> impl FnOnce(io::Error) -> HostError {
    let op = op.into();
    move |err| HostError::Sys { op, err }
}

/// One line of `/proc/net/route`: the interface and the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteLine {
    /// `Iface`.
    pub iface: String,
    /// `Destination`, as the address it denotes.
    pub dest: Ipv4Addr,
}

/// Most lines of `/proc/net/route` looked at (the table is untrusted in
/// size only; this bounds the work).
pub const MAX_ROUTES: usize = 65_536;

/// Parses `/proc/net/route` (header line, then `Iface Destination ...`
/// with the destination as 8 hex digits of the address in network byte
/// order as the host reads it).
pub fn parse_proc_route(text: &str) -> Result<Vec<RouteLine>, HostError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1).take(MAX_ROUTES) {
        if line.trim().is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(iface), Some(dest)) = (words.next(), words.next()) else {
            return Err(HostError::RouteTable { line: i + 1 });
        };
        let raw =
            u32::from_str_radix(dest, 16).map_err(|_| HostError::RouteTable { line: i + 1 })?;
        // The kernel prints the __be32 as a host-order integer.
        out.push(RouteLine {
            iface: iface.to_string(),
            dest: Ipv4Addr::from(raw.to_ne_bytes()),
        });
    }
    Ok(out)
}

/// The interfaces (other than `skip`) with a route whose destination is in
/// the guest's network `addr/mask`: where proxy ARP entries go.
pub fn proxy_arp_ifaces(
    routes: &[RouteLine],
    addr: Ipv4Addr,
    mask: Ipv4Addr,
    skip: &str,
) -> Vec<String> {
    let m = u32::from(mask);
    let mut out: Vec<String> = Vec::new();
    for r in routes {
        if r.iface != skip
            && u32::from(r.dest) & m == u32::from(addr) & m
            && !out.contains(&r.iface)
        {
            out.push(r.iface.clone());
        }
    }
    out
}

fn read_sys_attr(dev: &str, attr: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{dev}/{attr}"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Checks that `dev` exists in this network namespace, is a TAP device,
/// and is owned by `uid`.
pub fn check_owned_tap(dev: &str, uid: u32) -> Result<(), HostError> {
    let refuse = |why: &str| HostError::NotYours {
        dev: dev.to_string(),
        why: why.to_string(),
    };
    let index = sysnet::if_index(dev).ok_or_else(|| refuse("no such interface"))?;
    let sys_index = read_sys_attr(dev, "ifindex").and_then(|s| s.parse::<u32>().ok());
    if sys_index != Some(index) {
        return Err(refuse(
            "sysfs does not show this network namespace's interface",
        ));
    }
    let flags = read_sys_attr(dev, "tun_flags")
        .and_then(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .ok_or_else(|| refuse("not a TUN/TAP device"))?;
    if flags & u32::from(IFF_TAP.unsigned_abs()) == 0 {
        return Err(refuse("not a TAP device"));
    }
    let owner = read_sys_attr(dev, "owner")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(-1);
    if owner != i64::from(uid) {
        return Err(refuse(&format!(
            "owned by uid {owner}, not by the caller (uid {uid})"
        )));
    }
    Ok(())
}

/// Creates a fresh, non-persistent TAP owned by `owner` and returns its
/// descriptor and name; the device lives as long as the descriptor.
pub fn create_tap(owner: u32) -> Result<(OwnedFd, String), HostError> {
    ensure_tun_node()?;
    let tap = Tap::open(b"", Mode::Blocking).map_err(|e| match e {
        TapError::Open { err, .. } => sys("Opening /dev/net/tun failed")(err),
        TapError::Attach { err } => sys("TUNSETIFF")(err),
    })?;
    tap.set_owner(owner).map_err(sys("TUNSETOWNER"))?;
    Ok(tap.into_parts())
}

/// Creates `/dev/net/tun` (char 10:200, mode 0600, root's) when missing,
/// as the original did, but with explicit modes instead of `umask(0)`.
fn ensure_tun_node() -> Result<(), HostError> {
    use nix::sys::stat::{mknod, Mode, SFlag};
    let path = std::path::Path::new(CLONE_DEVICE);
    if path.exists() {
        return Ok(());
    }
    let _ = std::fs::create_dir("/dev/net");
    let dev = nix::sys::stat::makedev(10, 200);
    mknod(path, SFlag::S_IFCHR, Mode::S_IRUSR | Mode::S_IWUSR, dev).map_err(|e| HostError::Sys {
        op: "mknod /dev/net/tun".into(),
        err: e.into(),
    })
}

/// Gives `dev` the address `gate/32` and brings it up (what `ifconfig DEV
/// GATE netmask 255.255.255.255 up` did).
pub fn configure_gateway(dev: &str, gate: Ipv4Addr) -> Result<(), HostError> {
    let sock = sysnet::inet_socket().map_err(sys("socket"))?;
    sysnet::if_set_addr(sock.as_fd(), dev, gate, Ipv4Addr::BROADCAST)
        .map_err(sys(format!("setting {gate} on {dev}")))?;
    sysnet::if_up(sock.as_fd(), dev).map_err(sys(format!("bringing {dev} up")))
}

fn write_proc(path: &str, value: &str) -> Result<(), HostError> {
    std::fs::write(path, value).map_err(sys(format!("writing {path}")))
}

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Whether IPv4 forwarding is on in this network namespace.
pub fn forwarding() -> Result<bool, HostError> {
    let text = std::fs::read_to_string(IP_FORWARD).map_err(sys(format!("reading {IP_FORWARD}")))?;
    Ok(text.trim() != "0")
}

/// Turns IPv4 forwarding on (as the original always did) or back off.
pub fn set_forwarding(on: bool) -> Result<(), HostError> {
    write_proc(IP_FORWARD, if on { "1\n" } else { "0\n" })
}

/// The interfaces `add`/`del` publishes (withdraws) the guest address on:
/// every interface other than the TAP routing the guest's network, read
/// from `/proc/net/route`.
pub fn proxy_ifaces_for(c: &AddrChange) -> Result<Vec<String>, HostError> {
    let table =
        std::fs::read_to_string("/proc/net/route").map_err(sys("Couldn't open /proc/net/route"))?;
    let routes = parse_proc_route(&table)?;
    Ok(proxy_arp_ifaces(&routes, c.addr, c.mask, &c.dev))
}

/// Withdraws the published proxy ARP entry for `addr` on `iface`; an entry
/// or interface that is already gone is not an error.
pub fn withdraw_proxy_arp(
    sock: BorrowedFd<'_>,
    addr: Ipv4Addr,
    iface: &str,
) -> Result<(), HostError> {
    match sysnet::proxy_arp(sock, false, addr, iface) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENXIO | libc::ENODEV)) => Ok(()),
        Err(e) => Err(sys(format!("proxy arp for {addr} on {iface}"))(e)),
    }
}

/// `add`: host route to the guest's address over `dev`, proxy ARP on `dev`,
/// and published proxy ARP entries for the address on each of `ifaces`
/// (from [`proxy_ifaces_for`]). `del` undoes it. Steps that find nothing
/// to undo are not errors.
pub fn change_addr(c: &AddrChange, ifaces: &[String]) -> Result<(), HostError> {
    let add = c.op == Change::Add;
    let sock = sysnet::inet_socket().map_err(sys("socket"))?;
    match sysnet::route_host(sock.as_fd(), add, c.addr, &c.dev) {
        Ok(()) => {}
        Err(e) if add && e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(e) if !add && e.raw_os_error() == Some(libc::ESRCH) => {}
        Err(e) => {
            return Err(sys(format!(
                "route {} -host {} dev {}",
                if add { "add" } else { "del" },
                c.addr,
                c.dev
            ))(e))
        }
    }
    write_proc(
        &format!("/proc/sys/net/ipv4/conf/{}/proxy_arp", c.dev),
        if add { "1\n" } else { "0\n" },
    )?;
    for iface in ifaces {
        if add {
            sysnet::proxy_arp(sock.as_fd(), true, c.addr, iface)
                .map_err(sys(format!("proxy arp for {} on {iface}", c.addr)))?;
        } else {
            withdraw_proxy_arp(sock.as_fd(), c.addr, iface)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
tap0\t0200A8C0\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n\
br1\t00000A0A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";

    #[test]
    fn proc_route_destinations_are_read_in_network_order() {
        let r = parse_proc_route(ROUTE).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(
            r[1],
            RouteLine {
                iface: "eth0".into(),
                dest: [192, 168, 0, 0].into()
            }
        );
        assert_eq!(r[3].dest, Ipv4Addr::new(10, 10, 0, 0));
    }

    #[test]
    fn proxy_arp_goes_to_other_interfaces_routing_the_guest_network() {
        let r = parse_proc_route(ROUTE).unwrap();
        let ifs = proxy_arp_ifaces(
            &r,
            [192, 168, 0, 2].into(),
            [255, 255, 255, 0].into(),
            "tap0",
        );
        assert_eq!(ifs, vec!["eth0".to_string()]);
        let none = proxy_arp_ifaces(&r, [172, 16, 0, 2].into(), [255, 255, 0, 0].into(), "tap0");
        assert!(none.is_empty());
    }

    #[test]
    fn garbage_route_tables_are_errors_not_panics() {
        assert!(parse_proc_route("hdr\neth0 zzzz\n").is_err());
        assert!(parse_proc_route("hdr\neth0\n").is_err());
        assert!(parse_proc_route("").unwrap().is_empty());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn random_route_tables_never_panic(text in "\\PC{0,400}") {
            let _ = parse_proc_route(&text);
        }
    }
}
