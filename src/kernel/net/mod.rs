//! Network devices `eth<N>=` (kernel-cmdline.md §8, networking.md §3): the
//! monitor makes a TAP interface `ethN` inside the guest's network
//! namespace and relays its frames to the host side of the transport, a
//! host TAP opened by name (`tuntap,DEV,...`), a host TAP made by the
//! `uml_net` helper (`tuntap,,MAC,GATEWAY`, see `tap_helper`), a uml_switch
//! port (`daemon,MAC,unix,SOCKET`) or a UDP socket (`mcast`, `ucast`, see
//! `udp`). Configuring the interface is the guest's job.

pub mod error;
pub mod tap_helper;
pub mod udp;
pub mod vector;

use self::error::EthError;
use self::udp::Udp;
use crate::net::tap::{Mode, Tap};
use crate::net::Mac;
use crate::switch::client::SwitchClient;
use crate::sys::knet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

/// The daemon transport's default control socket in Debian's build.
pub const DEFAULT_CTL: &str = "/var/run/uml-utilities/uml_switch.ctl";

/// Largest frame either side may carry (MTU 1500 plus headers, with room).
const FRAME_MAX: usize = 65_536;

/// A parsed `eth<N>=` value this monitor can serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// `tuntap,DEV,MAC`: an existing host TAP.
    Tap {
        /// Host interface name.
        dev: String,
        /// The gateway field (only printed).
        gate: String,
    },
    /// `tuntap,,MAC,GATEWAY`: a host TAP made by `uml_net tuntap up`.
    Helper {
        /// The gateway address (empty: none, which the helper refuses).
        gate: String,
    },
    /// `daemon,MAC,unix,SOCKET`: a uml_switch port.
    Daemon {
        /// Control socket path.
        ctl: PathBuf,
    },
    /// `mcast,MAC,GROUP,PORT,TTL` and `ucast,MAC,ADDR,LPORT,RPORT`: each
    /// frame one UDP datagram, to a multicast group every guest on it
    /// joins, or to one peer.
    Udp(Udp),
}

/// One `eth<N>=` value, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The transport.
    pub transport: Transport,
    /// The MAC field, when it was given and valid.
    pub mac: Option<Mac>,
    /// Whether a MAC field was given but did not parse (or was empty).
    pub random_mac: bool,
}

/// What a value asks for: `Ok(None)` for a transport name the kernel
/// ignores silently, `Err` for a refusal to log.
pub fn parse(value: &str) -> Result<Option<Spec>, EthError> {
    let mut f = value.split(',');
    let name = f.next().unwrap_or("");
    let fields: Vec<&str> = f.collect();
    let field = |i: usize| fields.get(i).copied().unwrap_or("");
    let mac = |s: &str| (s.parse::<Mac>().ok(), s.parse::<Mac>().is_err());
    match name {
        "tuntap" => {
            if fields.len() > 3 {
                return Err(EthError::TapExtraGarbage {
                    extra: fields[3..].join(","),
                });
            }
            let dev = field(0);
            let (m, r) = mac(field(1));
            if dev.is_empty() {
                let gate = field(2);
                if !gate.is_empty() && gate.parse::<std::net::Ipv4Addr>().is_err() {
                    return Err(EthError::InvalidTapIp { text: gate.into() });
                }
                return Ok(Some(Spec {
                    transport: Transport::Helper { gate: gate.into() },
                    mac: m,
                    random_mac: r,
                }));
            }
            if knet_name_ok(dev).is_err() {
                return Err(EthError::BadHostDevice { dev: dev.into() });
            }
            Ok(Some(Spec {
                transport: Transport::Tap {
                    dev: dev.into(),
                    gate: field(2).into(),
                },
                mac: m,
                random_mac: r,
            }))
        }
        "daemon" => {
            let kind = field(1);
            if !kind.is_empty() && kind != "unix" {
                return Err(EthError::DaemonSocketType { kind: kind.into() });
            }
            let ctl = match field(2) {
                "" => DEFAULT_CTL,
                s => s,
            };
            let (m, r) = mac(field(0));
            Ok(Some(Spec {
                transport: Transport::Daemon { ctl: ctl.into() },
                mac: m,
                random_mac: r,
            }))
        }
        "mcast" | "ucast" => {
            let udp = udp::parse(name, &fields)?;
            let (m, r) = mac(field(0));
            Ok(Some(Spec {
                transport: Transport::Udp(udp),
                mac: m,
                random_mac: r,
            }))
        }
        "ethertap" | "slirp" | "vde" | "slip" | "pcap" => {
            Err(EthError::Unsupported { name: name.into() })
        }
        _ => Ok(None),
    }
}

fn knet_name_ok(dev: &str) -> Result<(), ()> {
    crate::sys::net::ifname_bytes(dev.as_bytes())
        .map(|_| ())
        .map_err(|_| ())
}

/// The host side of one device, opened before the monitor leaves the
/// host's network namespace.
pub enum HostSide {
    /// A host TAP's fd.
    Tap(OwnedFd),
    /// A switch port.
    Switch(Box<SwitchClient>),
    /// A UDP socket and where frames go.
    Udp(std::net::UdpSocket, std::net::SocketAddrV4),
    /// A `vde_plug` and its byte stream.
    Vde(Box<vector::vde::Plug>),
    /// An L2TPv3-over-UDP link.
    L2tp(Box<vector::l2tpv3::Link>),
    /// A GRE or L2TPv3-over-IP link.
    RawIp(Box<vector::rawip::Link>),
}

impl HostSide {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            HostSide::Tap(f) => f.as_fd(),
            HostSide::Switch(c) => c.data_fd(),
            HostSide::Udp(s, _) => s.as_fd(),
            HostSide::Vde(p) => p.fd(),
            HostSide::L2tp(l) => l.fd(),
            HostSide::RawIp(l) => l.fd(),
        }
    }

    fn recv(&self, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
        match self {
            HostSide::Udp(s, _) => match s.recv(buf) {
                Ok(n) => Ok(Some(n)),
                Err(e) if udp::transient(&e) => Ok(None),
                Err(e) => Err(e),
            },
            HostSide::Vde(p) => p.recv(buf),
            HostSide::L2tp(l) => l.recv(buf),
            HostSide::RawIp(l) => l.recv(buf),
            _ => knet::read_frame(self.fd(), buf),
        }
    }

    fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        match self {
            HostSide::Tap(f) => knet::write_frame(f.as_fd(), frame),
            HostSide::Switch(c) => match c.send(frame) {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
                Err(e) => Err(e),
            },
            HostSide::Udp(s, to) => match s.send_to(frame, to) {
                Ok(_) => Ok(()),
                Err(e) if udp::transient(&e) => Ok(()),
                Err(e) => Err(e),
            },
            HostSide::Vde(p) => p.send(frame),
            HostSide::L2tp(l) => l.send(frame),
            HostSide::RawIp(l) => l.send(frame),
        }
    }
}

/// A device whose host side is open, waiting for the guest namespace.
pub struct Pending {
    /// The guest interface's name (`ethN`, `vecN`).
    pub name: String,
    /// The address to give it (`None`: the random one it has).
    mac: Option<Mac>,
    /// Boot-log lines about its address, logged when it is made.
    mac_lines: Vec<String>,
    /// For `ethN`: N and the text after `Netdevice N (MAC) : `.
    netdevice: Option<(usize, String)>,
    host: HostSide,
    /// For a TAP made by `uml_net`: its host name and the gateway.
    helper: Option<(String, String)>,
}

impl Pending {
    /// Whether the device needs the host agent for `uml_net add|del`.
    pub fn needs_agent(&self) -> bool {
        self.helper.is_some()
    }
}

fn backend_line(gate: &str) -> String {
    let mut line = "TUN/TAP backend - ".to_string();
    if !gate.is_empty() {
        line.push_str(&format!("IP = {gate}"));
    }
    line
}

/// Opens the host sides of the `ethN` and `vecN` devices (call in the
/// host's network namespace). Returns the devices and the boot-log lines.
pub fn open_hosts(
    eths: &[(usize, String)],
    vecs: &[(usize, String)],
) -> (Vec<Pending>, Vec<String>) {
    let (mut devs, mut lines) = open_eths(eths);
    for (n, text) in vecs {
        let opened = vector::Spec::parse(*n, text).and_then(|spec| {
            let host = vector::open::open(&spec)?;
            Ok((spec, host))
        });
        match opened {
            Ok((spec, host)) => {
                let choice = spec.mac();
                devs.push(Pending {
                    name: spec.name(),
                    mac: choice.mac,
                    mac_lines: choice.lines,
                    netdevice: None,
                    host,
                    helper: None,
                });
            }
            Err(e) => lines.extend(e.to_string().lines().map(str::to_string)),
        }
    }
    (devs, lines)
}

fn open_eths(eths: &[(usize, String)]) -> (Vec<Pending>, Vec<String>) {
    let mut devs = Vec::new();
    let mut lines = Vec::new();
    for (n, value) in eths {
        let spec = match parse(value) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(l) => {
                lines.push(format!("eth{n}: {l}"));
                continue;
            }
        };
        let opened = match &spec.transport {
            Transport::Tap { dev, gate } => Tap::open(dev.as_bytes(), Mode::NonBlocking)
                .map(|t| (HostSide::Tap(t.into_fd()), backend_line(gate), None))
                .map_err(|e| {
                    let e = e.into_os_error();
                    format!(
                        "eth{n}: TUNSETIFF on host device '{dev}' failed, errno = {} ({e}); no device",
                        e.raw_os_error().unwrap_or(0)
                    )
                }),
            Transport::Daemon { ctl } => SwitchClient::connect(ctl)
                .and_then(|c| {
                    nix::fcntl::fcntl(
                        std::os::fd::AsRawFd::as_raw_fd(&c.data_fd()),
                        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                    )?;
                    Ok(c)
                })
                .map(|c| {
                    (
                        HostSide::Switch(Box::new(c)),
                        format!(
                            "daemon backend (uml_switch version 3) - unix:{}",
                            ctl.display()
                        ),
                        None,
                    )
                })
                .map_err(|e| {
                    format!(
                        "eth{n}: daemon_open : control connect failed, errno = {} ({e}); no device",
                        e.raw_os_error().unwrap_or(0)
                    )
                }),
            Transport::Udp(u) => {
                lines.push(u.configured_line());
                let to = std::net::SocketAddrV4::new(u.addr, u.rport);
                udp::open(u)
                    .map(|s| (HostSide::Udp(s, to), u.backend_line(), None))
                    .map_err(|why| format!("eth{n}: {why}; no device"))
            }
            Transport::Helper { gate } => match tap_helper::tuntap_up(gate) {
                Ok(t) => {
                    if !t.text.trim().is_empty() {
                        lines.push(t.text.trim_end().to_string());
                    }
                    let _ = nix::fcntl::fcntl(
                        std::os::fd::AsRawFd::as_raw_fd(&t.fd),
                        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                    );
                    Ok((
                        HostSide::Tap(t.fd),
                        backend_line(gate),
                        Some((t.dev, gate.clone())),
                    ))
                }
                Err(why) => Err(format!("eth{n}: {why}; no device")),
            },
        };
        match opened {
            Ok((host, backend, helper)) => {
                let name = format!("eth{n}");
                let mac_lines = if spec.random_mac {
                    vec![format!(
                        "Choosing a random ethernet address for device {name}"
                    )]
                } else {
                    Vec::new()
                };
                devs.push(Pending {
                    name,
                    mac: spec.mac,
                    mac_lines,
                    netdevice: Some((*n, backend)),
                    host,
                    helper,
                })
            }
            Err(l) => lines.push(l),
        }
    }
    (devs, lines)
}

/// Makes each device's `ethN` TAP in the current (guest) network namespace
/// and starts its relay thread. Returns the boot-log lines and the devices
/// whose addresses the host must hear of.
pub fn attach_all(devs: Vec<Pending>) -> (Vec<String>, Vec<tap_helper::HelperDev>) {
    let mut lines = Vec::new();
    let mut helpers = Vec::new();
    for d in devs {
        let name = d.name.clone();
        lines.extend(d.mac_lines);
        let tap = match Tap::open(name.as_bytes(), Mode::NonBlocking) {
            Ok(t) => t.into_fd(),
            Err(e) => {
                let e = e.into_os_error();
                lines.push(format!(
                    "{name}: creating the guest interface failed: {e}; no device"
                ));
                continue;
            }
        };
        let mac = match d.mac {
            Some(m) => {
                let set = crate::sys::net::inet_socket()
                    .and_then(|s| knet::set_hwaddr(s.as_fd(), &name, m.octets()));
                if let Err(e) = set {
                    lines.push(format!("{name}: setting the MAC failed: {e}"));
                }
                m.to_string()
            }
            None => current_mac(&name).unwrap_or_else(|| "?".into()),
        };
        if let Some((n, backend)) = &d.netdevice {
            lines.push(format!("Netdevice {n} ({mac}) : {backend}"));
        }
        if let Some((dev, gate)) = d.helper {
            match crate::sys::net::if_index(&name) {
                Some(index) => helpers.push(tap_helper::HelperDev { index, dev, gate }),
                None => lines.push(format!(
                    "{name}: no interface index; the host will not route to it"
                )),
            }
        }
        let host = d.host;
        let spawned = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                // The device goes away when either side fails for good.
                let _why = relay(&tap, &host);
            });
        if let Err(e) = spawned {
            lines.push(format!("{name}: relay thread failed: {e}"));
        }
    }
    (lines, helpers)
}

fn current_mac(name: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{name}/address")).ok()?;
    Some(s.trim().to_string())
}

/// Moves frames both ways until either side fails; returns why it stopped.
fn relay(tap: &OwnedFd, host: &HostSide) -> String {
    use nix::poll::{poll, PollFd, PollFlags};
    let mut buf = vec![0u8; FRAME_MAX];
    loop {
        let mut fds = [
            PollFd::new(tap.as_fd(), PollFlags::POLLIN),
            PollFd::new(host.fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, nix::poll::PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return format!("poll {e}"),
        }
        let ready = |i: usize| {
            fds[i].revents().is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLERR | PollFlags::POLLHUP)
            })
        };
        let (from_tap, from_host) = (ready(0), ready(1));
        // A bounded batch per wakeup so neither side starves the other.
        if from_tap {
            for _ in 0..64 {
                match knet::read_frame(tap.as_fd(), &mut buf) {
                    Ok(Some(n)) if n > 0 => {
                        if let Err(e) = host.send(&buf[..n]) {
                            return format!("send host {e}");
                        }
                    }
                    Ok(_) => break,
                    Err(e) => return format!("read tap {e}"),
                }
            }
        }
        if from_host {
            for _ in 0..64 {
                match host.recv(&mut buf) {
                    Ok(Some(n)) if n > 0 => {
                        if let Err(e) = knet::write_frame(tap.as_fd(), &buf[..n]) {
                            return format!("write tap {e}");
                        }
                    }
                    Ok(_) => break,
                    Err(e) => return format!("read host {e}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(value: &str) -> String {
        match parse(value) {
            Err(e) => e.to_string(),
            Ok(s) => panic!("{value} was not refused: {s:?}"),
        }
    }

    #[test]
    fn daemon_fields_and_defaults() {
        let s = parse("daemon,fe:fd:0:0:0:1,unix,/tmp/s.ctl")
            .unwrap()
            .unwrap();
        assert_eq!(
            s.transport,
            Transport::Daemon {
                ctl: "/tmp/s.ctl".into()
            }
        );
        assert_eq!(s.mac, Some(Mac::new([0xfe, 0xfd, 0, 0, 0, 1])));
        let s = parse("daemon").unwrap().unwrap();
        assert_eq!(
            s.transport,
            Transport::Daemon {
                ctl: DEFAULT_CTL.into()
            }
        );
        assert!(s.random_mac);
        assert!(parse("daemon,,inet,x").is_err());
    }

    #[test]
    fn tuntap_fields_and_no_garbage() {
        let s = parse("tuntap,tap3,,").unwrap().unwrap();
        assert_eq!(
            s.transport,
            Transport::Tap {
                dev: "tap3".into(),
                gate: String::new()
            }
        );
        assert_eq!(
            parse("tuntap,,,10.0.0.1").unwrap().unwrap().transport,
            Transport::Helper {
                gate: "10.0.0.1".into()
            }
        );
        assert_eq!(
            refusal("tuntap,,,10.0.0"),
            "Invalid tap IP address - '10.0.0'"
        );
        assert!(parse("tuntap,tap0,,1.2.3.4,extra").is_err());
        assert!(matches!(parse("bogus,1"), Ok(None)));
    }

    #[test]
    fn udp_fields_defaults_and_errors() {
        let s = parse("mcast").unwrap().unwrap();
        let Transport::Udp(u) = s.transport else {
            panic!("{s:?}")
        };
        assert_eq!(
            u.configured_line(),
            "Configured mcast device: 239.192.168.1:1102-1"
        );
        assert_eq!(
            u.backend_line(),
            "mcast backend multicast address: 239.192.168.1:1102, TTL:1"
        );
        assert!(s.random_mac);
        let s = parse("ucast,fe:fd:0:0:0:1,10.0.0.2,2001,2002")
            .unwrap()
            .unwrap();
        let Transport::Udp(u) = s.transport else {
            panic!("{s:?}")
        };
        assert_eq!((u.multicast, u.lport, u.rport), (false, 2001, 2002));
        assert_eq!(
            u.configured_line(),
            "Configured ucast device: :2001 -> 10.0.0.2:2002"
        );
        assert_eq!(s.mac, Some(Mac::new([0xfe, 0xfd, 0, 0, 0, 1])));
        let s = parse("mcast,,239.1.2.3,,4").unwrap().unwrap();
        assert!(matches!(s.transport, Transport::Udp(u) if u.lport == 1102 && u.ttl == 4));
        assert_eq!(refusal("mcast,,,99999"), "mcast_setup - Bad port : '99999'");
        assert_eq!(refusal("mcast,,,,x"), "mcast_setup - Bad ttl : 'x'");
        assert_eq!(refusal("ucast,,,x"), "ucast_setup - Bad listen port : 'x'");
        assert_eq!(
            refusal("ucast,,,1,0"),
            "ucast_setup - Bad remote port : '0'"
        );
        assert_eq!(
            refusal("ucast,,,1,2,3"),
            "ucast_setup - Extra garbage on specification : '3'"
        );
    }

    #[test]
    fn random_values_never_panic() {
        for s in [
            "",
            ",",
            "daemon,,,,,,",
            "tuntap,,,,",
            "tuntap,aaaaaaaaaaaaaaaaaaaa",
            "daemon,:::::",
        ] {
            let _ = parse(s);
        }
    }
}
