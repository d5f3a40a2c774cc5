//! The UDP transports of `eth<N>=` (kernel-cmdline.md §8): `mcast`, every
//! guest on a multicast group on one segment, and `ucast`, a point-to-point
//! link. Each frame is one UDP datagram; the socket is opened in the
//! host's namespace and relayed like the others by `net`.

/// The UDP transports' settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp {
    /// Multicast (`mcast`) or unicast (`ucast`).
    pub multicast: bool,
    /// The group, or the peer's address.
    pub addr: std::net::Ipv4Addr,
    /// The port this guest listens on (for `mcast`, also the group's).
    pub lport: u16,
    /// The port frames go to.
    pub rport: u16,
    /// Multicast TTL.
    pub ttl: u32,
}

impl Udp {
    /// The kernel's set-up line (`Configured mcast device: ...`).
    pub fn configured_line(&self) -> String {
        if self.multicast {
            format!(
                "Configured mcast device: {}:{}-{}",
                self.addr, self.lport, self.ttl
            )
        } else {
            format!(
                "Configured ucast device: :{} -> {}:{}",
                self.lport, self.addr, self.rport
            )
        }
    }

    /// The backend text of the `Netdevice` line.
    pub fn backend_line(&self) -> String {
        if self.multicast {
            format!(
                "mcast backend multicast address: {}:{}, TTL:{}",
                self.addr, self.lport, self.ttl
            )
        } else {
            format!(
                "ucast backend address: {}:{} listen port: {}",
                self.addr, self.rport, self.lport
            )
        }
    }
}

/// Why a UDP transport was refused or could not be opened: the kernel's
/// texts (`mcast_setup - Bad port : '99999'`, `umcast_open : ...`).
#[derive(Debug, thiserror::Error)]
pub enum UdpError {
    /// More than four fields after the transport name.
    #[error("{transport}_setup - Extra garbage on specification : '{extra}'")]
    ExtraGarbage {
        /// `mcast` or `ucast`.
        transport: &'static str,
        /// The fields beyond the fourth, joined with commas.
        extra: String,
    },
    /// The group or peer is no IPv4 address.
    #[error("{transport}_setup - Bad address : '{text}'")]
    BadAddress {
        /// `mcast` or `ucast`.
        transport: &'static str,
        /// The field as given.
        text: String,
    },
    /// A port is no number from 1 to 65535.
    #[error("{transport}_setup - Bad {what} : '{text}'")]
    BadPort {
        /// `mcast` or `ucast`.
        transport: &'static str,
        /// `port`, `listen port` or `remote port`.
        what: &'static str,
        /// The field as given.
        text: String,
    },
    /// The TTL is no number up to 255.
    #[error("{transport}_setup - Bad ttl : '{text}'")]
    BadTtl {
        /// `mcast` or `ucast`.
        transport: &'static str,
        /// The field as given.
        text: String,
    },
    /// Making or binding the socket failed.
    #[error("umcast_open : {op} failed, errno = {} ({})", *errno as i32, errno.desc())]
    Socket {
        /// `data socket`, `SO_REUSEADDR` or `data bind`.
        op: &'static str,
        /// The system's error.
        errno: nix::Error,
    },
    /// Setting up the multicast membership failed.
    #[error("umcast_open: {op} failed, error = {} ({source})", source.raw_os_error().unwrap_or(0))]
    Multicast {
        /// `IP_MULTICAST_TTL`, `IP_MULTICAST_LOOP` or `IP_ADD_MEMBERSHIP`.
        op: &'static str,
        /// The system's error.
        source: std::io::Error,
    },
}

/// Parses `mcast`/`ucast` fields after the MAC, with the kernel's
/// defaults and messages.
pub(crate) fn parse(name: &str, fields: &[&str]) -> Result<Udp, UdpError> {
    let multicast = name == "mcast";
    let transport = if multicast { "mcast" } else { "ucast" };
    if fields.len() > 4 {
        return Err(UdpError::ExtraGarbage {
            transport,
            extra: fields[4..].join(","),
        });
    }
    let field = |i: usize| fields.get(i).copied().filter(|f| !f.is_empty());
    let addr_text = field(1).unwrap_or(if multicast {
        "239.192.168.1"
    } else {
        "127.0.0.1"
    });
    let addr = addr_text.parse().map_err(|_| UdpError::BadAddress {
        transport,
        text: addr_text.to_string(),
    })?;
    let port = |i: usize, what: &'static str| -> Result<u16, UdpError> {
        match field(i) {
            None => Ok(1102),
            Some(t) => t
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| UdpError::BadPort {
                    transport,
                    what,
                    text: t.to_string(),
                }),
        }
    };
    let (lport, rport, ttl) =
        if multicast {
            let p = port(2, "port")?;
            let ttl =
                match field(3) {
                    None => 1,
                    Some(t) => t.parse::<u32>().ok().filter(|&v| v <= 255).ok_or_else(|| {
                        UdpError::BadTtl {
                            transport,
                            text: t.to_string(),
                        }
                    })?,
                };
            (p, p, ttl)
        } else {
            (port(2, "listen port")?, port(3, "remote port")?, 1)
        };
    Ok(Udp {
        multicast,
        addr,
        lport,
        rport,
        ttl,
    })
}

/// The UDP transports' socket: bound to the group (`mcast`, which it
/// joins, with loop-back on so guests on one host hear each other) or to
/// any address (`ucast`), at the listen port, shared with other guests.
pub(crate) fn open(u: &Udp) -> Result<std::net::UdpSocket, UdpError> {
    use nix::sys::socket::{self as sock, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
    use std::net::{Ipv4Addr, SocketAddrV4};
    let fail = |op: &'static str| move |errno| UdpError::Socket { op, errno };
    let fd = sock::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(fail("data socket"))?;
    sock::setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(fail("SO_REUSEADDR"))?;
    let listen = if u.multicast {
        u.addr
    } else {
        Ipv4Addr::UNSPECIFIED
    };
    sock::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(listen, u.lport)),
    )
    .map_err(fail("data bind"))?;
    let udp = std::net::UdpSocket::from(fd);
    if u.multicast {
        let io = |op: &'static str| move |source| UdpError::Multicast { op, source };
        udp.set_multicast_ttl_v4(u.ttl)
            .map_err(io("IP_MULTICAST_TTL"))?;
        udp.set_multicast_loop_v4(true)
            .map_err(io("IP_MULTICAST_LOOP"))?;
        udp.join_multicast_v4(&u.addr, &Ipv4Addr::UNSPECIFIED)
            .map_err(io("IP_ADD_MEMBERSHIP"))?;
    }
    Ok(udp)
}

/// Errors a UDP socket reports for an earlier datagram (an ICMP port
/// unreachable from a peer not up yet): not a reason to give up.
pub(crate) fn transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNREFUSED
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EAGAIN
                | libc::ENOBUFS
        )
    )
}
