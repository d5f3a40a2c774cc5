//! Opening a vector device's host side, in the host's network namespace,
//! as `uml_vector_user_open` does, with its texts when that fails.
//!
//! What works: `tap` (a host TAP the user may attach to), `vde` (through
//! `vde_plug`), `l2tpv3` over UDP, `bess` (a unix seqpacket socket), `fd`
//! (an inherited frame descriptor), and, with CAP_NET_RAW in the host's
//! network namespace as the kernel needs, `raw` (a packet socket on a host
//! interface), `hybrid`, and `gre` and `l2tpv3` over IP (raw IP
//! sockets). Without the capability these fail with the kernel's own
//! text.

use super::rawip::{Encap, Link, Protocol};
use super::vde::Plug;
use super::{Spec, Transport, VectorError};
use crate::kernel::net::HostSide;
use crate::net::tap::{Mode, Tap, TapError};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockProtocol, SockType, UnixAddr};
use std::os::fd::{AsRawFd, OwnedFd};

/// `MAX_UN_LEN` of `vector_user.c`.
const MAX_UN_LEN: usize = 107;

/// Opens the host side of `spec`.
pub fn open(spec: &Spec) -> Result<HostSide, VectorError> {
    let unit = spec.unit;
    match &spec.transport {
        Transport::Tap { ifname } => {
            let name = ifname.clone().unwrap_or_else(dynamic_name);
            Ok(HostSide::Tap(open_tap(&name)?))
        }
        Transport::Hybrid { ifname } => {
            // The kernel sends on the TAP and receives through a packet
            // socket on it, to read in batches; the TAP's own descriptor
            // carries both directions here. The capability is still asked
            // for, as the kernel needs it.
            let name = ifname.as_deref().ok_or(VectorError::HybridNoIfname)?;
            let tap = open_tap(name)?;
            packet_socket()?;
            Ok(HostSide::Tap(tap))
        }
        Transport::Raw { ifname } => {
            let Some(name) = ifname else {
                return Err(VectorError::Raw(-libc::ENOMEM));
            };
            // Without CAP_NET_RAW, the kernel's EPERM line.
            packet_socket()?;
            let fd = crate::sys::knet::packet_socket_on(name)
                .map_err(|e| VectorError::Raw(-e.raw_os_error().unwrap_or(libc::EINVAL)))?;
            Ok(HostSide::Tap(fd))
        }
        Transport::L2tpv3 { udp: true } => Ok(HostSide::L2tp(Box::new(super::l2tpv3::Link::open(
            unit, &spec.args,
        )?))),
        Transport::Gre => {
            let header = || Ok(Encap::Gre(super::gre::Gre::from_args(unit, &spec.args)?));
            Ok(HostSide::RawIp(Box::new(Link::open(
                Protocol::Gre,
                &spec.args,
                header,
            )?)))
        }
        Transport::L2tpv3 { udp: false } => {
            let header = || {
                Ok(Encap::L2tp(super::l2tpv3::L2tpv3::from_args(
                    unit, &spec.args,
                )?))
            };
            Ok(HostSide::RawIp(Box::new(Link::open(
                Protocol::L2tp,
                &spec.args,
                header,
            )?)))
        }
        Transport::Bess => open_bess(spec).map(HostSide::Tap),
        Transport::Fd { fd } => {
            let fd = fd.ok_or(VectorError::BadFd)?;
            let owned = crate::sys::knet::dup_inherited(fd).map_err(|_| VectorError::BadFd)?;
            nonblocking(&owned);
            Ok(HostSide::Tap(owned))
        }
        Transport::Vde { vnl } => Ok(HostSide::Vde(Box::new(Plug::start(vnl)?))),
    }
}

/// The kernel's `tapXXXXXX` for a `tap` without `ifname=`.
fn dynamic_name() -> String {
    const PAD: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id();
    let mut name = String::from("tap");
    for _ in 0..6 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let i = usize::try_from((seed >> 16) % 36).unwrap_or(0);
        name.push(char::from(PAD[i]));
    }
    name
}

fn open_tap(name: &str) -> Result<OwnedFd, VectorError> {
    match Tap::open(name.as_bytes(), Mode::NonBlocking) {
        Ok(t) => Ok(t.into_fd()),
        Err(TapError::Open { .. }) => Err(VectorError::TunOpen),
        Err(TapError::Attach { err }) => Err(VectorError::TapSelect(err)),
    }
}

/// `socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)`: the capability test of the
/// transports that need one.
fn packet_socket() -> Result<OwnedFd, VectorError> {
    socket::socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::EthAll,
    )
    .map_err(|e| VectorError::Raw(-(e as i32)))
}

fn nonblocking(fd: &OwnedFd) {
    let _ = nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
}

/// `user_init_unix_fds(.., ID_BESS)`: a seqpacket socket connected to
/// `dst=`, bound to `src=` when given. A missing or too long `dst` fails
/// without a word, as in the kernel.
fn open_bess(spec: &Spec) -> Result<OwnedFd, VectorError> {
    let silent = VectorError::Unsupported {
        unit: spec.unit,
        name: "bess",
        why: "no usable dst=",
    };
    let dst = spec
        .args
        .fetch("dst")
        .filter(|d| d.len() <= MAX_UN_LEN)
        .ok_or(silent)?;
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| VectorError::Socket(-(e as i32)))?;
    if let Some(src) = spec.args.fetch("src").filter(|s| s.len() <= MAX_UN_LEN) {
        let addr = UnixAddr::new(src).map_err(|e| VectorError::Socket(-(e as i32)))?;
        socket::bind(fd.as_raw_fd(), &addr).map_err(|e| VectorError::BessBind(e as i32))?;
    }
    let addr = UnixAddr::new(dst).map_err(|e| VectorError::Socket(-(e as i32)))?;
    socket::connect(fd.as_raw_fd(), &addr).map_err(|e| VectorError::BessConnect {
        dst: dst.to_string(),
        errno: -(e as i32),
    })?;
    nonblocking(&fd);
    Ok(fd)
}
