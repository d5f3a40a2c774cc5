//! The forwarding core: a pure function of (MAC table, ingress port,
//! frame, time) to a verdict (spec §4.5). No sockets: the daemon feeds it
//! frames and carries out what it answers, and the tests below drive it
//! with in-memory ports.
//!
//! Differences from the original, on purpose: a known unicast destination
//! on the ingress port itself is filtered instead of sent back, and a
//! port's departure forgets every address learned on it.

use super::frame::EthernetFrame;
use super::table::{MacTable, AGEING_TIME};
use super::PortId;
use crate::net::Mac;
use std::time::Duration;

/// Where a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// To this one port.
    Unicast(PortId),
    /// To every port but the ingress one ([`Forwarder::ports`] order).
    Flood,
    /// Nowhere: the destination lives on the ingress port.
    Filter,
}

/// A source address that was new or moved, for the log line
/// ` Addr: <mac> New port <p>[ old port <q>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    /// The address.
    pub mac: Mac,
    /// Where it is now.
    pub port: PortId,
    /// Where it was, if it moved.
    pub old: Option<PortId>,
}

/// The answer for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Where it goes.
    pub verdict: Verdict,
    /// What was learned from its source, if anything new.
    pub learned: Option<Learned>,
    /// True when the destination is a unicast address not in the table
    /// (the original logs `unknown Addr: ...` then).
    pub unknown_unicast: bool,
}

/// The learning switch (or hub): ports, newest first, and the MAC table.
#[derive(Debug)]
pub struct Forwarder {
    table: MacTable,
    hub: bool,
    ports: Vec<PortId>,
}

impl Forwarder {
    /// A switch, or a hub when `hub` (every frame is flooded).
    pub fn new(hub: bool) -> Forwarder {
        Forwarder {
            table: MacTable::new(),
            hub,
            ports: Vec::new(),
        }
    }

    /// Adds a port; the newest port is flooded to first, as in the original.
    pub fn add_port(&mut self, port: PortId) {
        if !self.ports.contains(&port) {
            self.ports.insert(0, port);
        }
    }

    /// Removes a port and every address learned on it.
    pub fn remove_port(&mut self, port: PortId) {
        self.ports.retain(|&p| p != port);
        self.table.purge_port(port);
    }

    /// The ports, in flooding order.
    pub fn ports(&self) -> &[PortId] {
        &self.ports
    }

    /// The ports a flooded frame from `ingress` goes to.
    pub fn flood_targets(&self, ingress: PortId) -> impl Iterator<Item = PortId> + '_ {
        self.ports.iter().copied().filter(move |&p| p != ingress)
    }

    /// Learns the frame's source and decides where it goes.
    pub fn forward<T: AsRef<[u8]>>(
        &mut self,
        ingress: PortId,
        frame: &EthernetFrame<T>,
        now: Duration,
    ) -> Decision {
        let src = frame.src();
        let learned = if src.is_multicast() {
            None
        } else {
            self.table.learn(src, ingress, now).map(|old| Learned {
                mac: src,
                port: ingress,
                old,
            })
        };
        let dst = frame.dst();
        let target = if dst.is_multicast() {
            None
        } else {
            self.table.lookup(&dst)
        };
        let unknown_unicast = !dst.is_multicast() && target.is_none();
        let verdict = match target {
            _ if self.hub => Verdict::Flood,
            Some(p) if p == ingress => Verdict::Filter,
            Some(p) => Verdict::Unicast(p),
            None => Verdict::Flood,
        };
        Decision {
            verdict,
            learned,
            unknown_unicast,
        }
    }

    /// Forgets addresses unseen for the ageing time (100 s); returns how
    /// many went.
    pub fn age(&mut self, now: Duration) -> usize {
        self.table.age(now, AGEING_TIME)
    }

    /// Number of addresses in the table.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f
    }

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const C: [u8; 6] = [2, 0, 0, 0, 0, 3];
    const BCAST: [u8; 6] = [0xff; 6];

    /// An in-memory switch: each port is a queue of delivered frames.
    struct Loopback {
        fwd: Forwarder,
        inbox: Vec<Vec<Vec<u8>>>,
    }

    impl Loopback {
        fn new(ports: u32, hub: bool) -> Loopback {
            let mut fwd = Forwarder::new(hub);
            for p in 0..ports {
                fwd.add_port(PortId(p));
            }
            Loopback {
                fwd,
                inbox: vec![Vec::new(); ports as usize],
            }
        }

        fn send(&mut self, from: u32, bytes: Vec<u8>, now: u64) -> Decision {
            let f = EthernetFrame::new_checked(&bytes[..]).unwrap();
            let d = self.fwd.forward(PortId(from), &f, Duration::from_secs(now));
            match d.verdict {
                Verdict::Unicast(p) => self.inbox[p.0 as usize].push(bytes.clone()),
                Verdict::Flood => {
                    let targets: Vec<PortId> = self.fwd.flood_targets(PortId(from)).collect();
                    for p in targets {
                        self.inbox[p.0 as usize].push(bytes.clone());
                    }
                }
                Verdict::Filter => {}
            }
            d
        }

        fn counts(&self) -> Vec<usize> {
            self.inbox.iter().map(Vec::len).collect()
        }
    }

    #[test]
    fn broadcast_is_flooded_to_every_other_port() {
        let mut sw = Loopback::new(3, false);
        let d = sw.send(0, frame(BCAST, A), 0);
        assert_eq!(d.verdict, Verdict::Flood);
        assert_eq!(
            d.learned,
            Some(Learned {
                mac: Mac::new(A),
                port: PortId(0),
                old: None
            })
        );
        assert!(!d.unknown_unicast);
        assert_eq!(sw.counts(), vec![0, 1, 1]);
    }

    #[test]
    fn unknown_unicast_is_flooded_then_learned_addresses_go_to_one_port() {
        let mut sw = Loopback::new(3, false);
        let d = sw.send(0, frame(B, A), 0);
        assert!(d.unknown_unicast);
        assert_eq!(sw.counts(), vec![0, 1, 1]);
        let d = sw.send(1, frame(A, B), 1);
        assert_eq!(d.verdict, Verdict::Unicast(PortId(0)));
        assert_eq!(sw.counts(), vec![1, 1, 1]);
        sw.send(0, frame(B, A), 2);
        assert_eq!(
            sw.counts(),
            vec![1, 2, 1],
            "port 2 must not see A->B once B is known"
        );
    }

    #[test]
    fn hub_mode_floods_even_known_unicast() {
        let mut sw = Loopback::new(3, true);
        sw.send(1, frame(BCAST, B), 0);
        let d = sw.send(0, frame(B, A), 1);
        assert_eq!(d.verdict, Verdict::Flood);
        assert_eq!(sw.counts(), vec![1, 1, 2]);
    }

    #[test]
    fn a_moved_address_is_reported_with_its_old_port() {
        let mut sw = Loopback::new(2, false);
        sw.send(0, frame(BCAST, A), 0);
        let d = sw.send(1, frame(BCAST, A), 1);
        assert_eq!(
            d.learned,
            Some(Learned {
                mac: Mac::new(A),
                port: PortId(1),
                old: Some(PortId(0))
            })
        );
        assert_eq!(sw.send(1, frame(BCAST, A), 2).learned, None);
    }

    #[test]
    fn multicast_sources_are_never_learned_and_own_port_traffic_is_filtered() {
        let mut sw = Loopback::new(2, false);
        assert_eq!(
            sw.send(0, frame(BCAST, [3, 0, 0, 0, 0, 9]), 0).learned,
            None
        );
        assert_eq!(sw.fwd.table_len(), 0);
        sw.send(0, frame(BCAST, A), 0);
        sw.send(0, frame(BCAST, C), 0);
        assert_eq!(sw.send(0, frame(C, A), 1).verdict, Verdict::Filter);
    }

    #[test]
    fn removed_ports_get_nothing_and_their_addresses_are_forgotten() {
        let mut sw = Loopback::new(3, false);
        sw.send(1, frame(BCAST, B), 0);
        sw.fwd.remove_port(PortId(1));
        let d = sw.send(0, frame(B, A), 1);
        assert!(d.unknown_unicast);
        assert_eq!(sw.counts(), vec![1, 0, 2], "the removed port 1 got nothing");
    }

    #[test]
    fn aged_addresses_are_flooded_again() {
        let mut sw = Loopback::new(3, false);
        sw.send(1, frame(BCAST, B), 0);
        assert_eq!(sw.fwd.age(Duration::from_secs(50)), 0);
        assert_eq!(sw.fwd.age(Duration::from_secs(101)), 1);
        assert!(sw.send(0, frame(B, A), 102).unknown_unicast);
    }

    #[test]
    fn newest_port_is_flooded_first() {
        let mut fwd = Forwarder::new(false);
        for p in 0..4 {
            fwd.add_port(PortId(p));
        }
        let order: Vec<u32> = fwd.flood_targets(PortId(2)).map(|p| p.0).collect();
        assert_eq!(order, vec![3, 1, 0]);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the frames, the forwarder never panics, never sends a
        /// frame back to its ingress port, and unicasts only to live ports.
        #[test]
        fn random_frames_never_go_back_to_their_ingress_port(
            frames in proptest::collection::vec((0u32..6, proptest::collection::vec(any::<u8>(), 0..80)), 0..200),
            hub in any::<bool>(),
        ) {
            let mut fwd = Forwarder::new(hub);
            for p in 0..6 {
                fwd.add_port(PortId(p));
            }
            for (i, (port, bytes)) in frames.iter().enumerate() {
                if i % 17 == 16 {
                    fwd.remove_port(PortId(*port));
                    fwd.add_port(PortId(*port));
                }
                let Ok(f) = EthernetFrame::new_checked(&bytes[..]) else { continue };
                let d = fwd.forward(PortId(*port), &f, Duration::from_secs(i as u64));
                match d.verdict {
                    Verdict::Unicast(p) => {
                        prop_assert_ne!(p, PortId(*port));
                        prop_assert!(fwd.ports().contains(&p));
                    }
                    Verdict::Flood => prop_assert!(fwd.flood_targets(PortId(*port)).all(|p| p != PortId(*port))),
                    Verdict::Filter => prop_assert!(!hub),
                }
            }
        }
    }
}
