//! The daemon's VXLAN uplink (`-vxlan`): one UDP socket, each peer a port
//! of the forwarder (`PortId(PEER_PORT_BASE + i)`) so that remote
//! addresses are learned per peer and aged like local ones. Datagrams
//! that are not VXLAN, carry another VNI, or come from hosts that are not
//! peers are dropped and counted. A child module of `daemon`.

use super::super::vxlan::{self as wire, VxlanPacket};
use super::super::{PortId, VxlanArgs};
use super::{Daemon, SwitchError, BATCH};
use crate::sys::net::strerror;
use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Port numbers of peers start here (ports of local clients are their
/// control descriptors, far below).
pub(super) const PEER_PORT_BASE: u32 = 0x4000_0000;

/// What the uplink counted.
#[derive(Debug, Default, Clone, Copy)]
pub struct VxlanStats {
    /// Datagrams taken in.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Too short, too long, or without the I flag.
    pub malformed: u64,
    /// Another VNI.
    pub foreign_vni: u64,
    /// From a host that is not a peer.
    pub unknown_host: u64,
    /// Sends that failed.
    pub send_errors: u64,
}

/// The uplink.
pub(super) struct Uplink {
    pub(super) sock: UdpSocket,
    vni: u32,
    peers: Vec<SocketAddr>,
    /// Receive buffers: a batch of datagrams is forwarded together.
    bufs: Vec<Vec<u8>>,
    pub(super) stats: VxlanStats,
}

/// The forwarder port of peer `i`.
pub(super) fn peer_port(i: usize) -> PortId {
    PortId(PEER_PORT_BASE.saturating_add(u32::try_from(i).unwrap_or(u32::MAX >> 1)))
}

/// The peer behind port `p`, if it is one.
pub(super) fn peer_index(p: PortId) -> Option<usize> {
    p.0.checked_sub(PEER_PORT_BASE)
        .and_then(|i| usize::try_from(i).ok())
}

impl Uplink {
    /// Binds the local address (non-blocking).
    pub(super) fn open(args: &VxlanArgs) -> Result<Uplink, SwitchError> {
        let sock = UdpSocket::bind(args.local).map_err(|err| SwitchError::Bind {
            kind: "vxlan",
            path: args.local.to_string().into(),
            err,
        })?;
        sock.set_nonblocking(true)
            .map_err(|err| SwitchError::Sys { op: "fcntl", err })?;
        Ok(Uplink {
            sock,
            vni: args.vni,
            peers: args.peers.clone(),
            bufs: (0..BATCH)
                .map(|_| vec![0u8; wire::HEADER_LEN + super::MAX_FRAME_LEN + 1])
                .collect(),
            stats: VxlanStats::default(),
        })
    }

    /// How many peers (each one port).
    pub(super) fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The peer `i`'s address, for the log.
    pub(super) fn peer(&self, i: usize) -> Option<SocketAddr> {
        self.peers.get(i).copied()
    }
}

impl Daemon {
    /// Datagrams on the VXLAN socket, up to [`BATCH`] at a time: a batch's
    /// frames are forwarded together, so that their copies leave in one
    /// send per destination.
    pub(super) fn on_vxlan(&mut self) {
        let Some(up) = self.vxlan.as_mut() else {
            return;
        };
        let mut bufs = std::mem::take(&mut up.bufs);
        // (buffer, datagram length, peer) of the good datagrams of a batch.
        let mut good: Vec<(usize, usize, usize)> = Vec::with_capacity(bufs.len());
        for _ in 0..4 {
            let Some(up) = self.vxlan.as_mut() else {
                break;
            };
            good.clear();
            let mut drained = false;
            for (k, buf) in bufs.iter_mut().enumerate() {
                let (n, from) = match up.sock.recv_from(buf) {
                    Ok(x) => x,
                    Err(e) => {
                        if e.kind() != io::ErrorKind::WouldBlock {
                            eprintln!("vxlan: receiving: {}", strerror(&e));
                        }
                        drained = true;
                        break;
                    }
                };
                up.stats.datagrams_in += 1;
                let Some(peer) = wire::peer_of(&up.peers, &from) else {
                    up.stats.unknown_host += 1;
                    continue;
                };
                match VxlanPacket::new_checked(&buf[..n]) {
                    Err(_) => up.stats.malformed += 1,
                    Ok(p) if p.vni() != up.vni => up.stats.foreign_vni += 1,
                    Ok(_) => good.push((k, n, peer)),
                }
            }
            self.round_frames += good.len();
            let mut out = std::mem::take(&mut self.egress).recycle();
            for &(k, n, peer) in &good {
                // The inner frame (`VxlanPacket::payload`, borrowed from
                // the buffer rather than from a view of it).
                let payload = &bufs[k][wire::HEADER_LEN..n];
                self.route(peer_port(peer), payload, &mut out);
            }
            self.send(&out);
            self.egress = out.recycle();
            if drained {
                break;
            }
        }
        if let Some(up) = self.vxlan.as_mut() {
            up.bufs = bufs;
        }
    }

    /// Sends frames to peers, each with the VXLAN header in front.
    pub(super) fn send_vxlan(&mut self, frames: &[(usize, &[u8])]) {
        let Some(up) = self.vxlan.as_mut() else {
            return;
        };
        let header = wire::header(up.vni);
        let mut dgram = Vec::with_capacity(wire::HEADER_LEN + super::MAX_FRAME_LEN);
        for (i, f) in frames {
            let Some(to) = up.peers.get(*i) else {
                continue;
            };
            dgram.clear();
            dgram.extend_from_slice(&header);
            dgram.extend_from_slice(f);
            match up.sock.send_to(&dgram, to) {
                Ok(_) => {
                    up.stats.datagrams_out += 1;
                    self.stats.frames_out += 1;
                }
                Err(_) => {
                    up.stats.send_errors += 1;
                    self.stats.send_drops += 1;
                }
            }
        }
    }
}
