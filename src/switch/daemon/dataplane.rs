//! The daemon's data plane: frames from the ports' own data sockets and
//! the shared one (in `recvmmsg` batches) and from the TAP uplink, through
//! the forwarder, out in `sendmmsg` batches grouped by destination. A child
//! module of `daemon`, so it works on the same state.

use super::super::core::Verdict;
use super::super::frame::{EthernetFrame, FrameError, MAX_FRAME_LEN};
use super::super::proto::UnixAddr;
use super::super::PortId;
use super::vxlan::peer_index;
use super::{log, Daemon, Sink, BATCH, MAX_BATCHES_PER_WAKEUP, UNKNOWN_LOG_PER_SEC};
use crate::sys::net::{self as sysnet, strerror, RecvSlot, SendItem};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

/// The copies one batch of frames makes, grouped by how they leave. The
/// daemon keeps one and [`recycle`](Egress::recycle)s it from batch to
/// batch, so forwarding allocates nothing once the lists have grown.
#[derive(Default)]
pub(super) struct Egress<'a> {
    /// Through the shared data socket, each to its port's address.
    shared: Vec<SendItem<'a>>,
    /// Through each destination port's own socket, in order of first use.
    ports: Vec<(PortId, Vec<&'a [u8]>)>,
    /// To the TAP uplink.
    tap: Vec<&'a [u8]>,
    /// To VXLAN peers (peer number, frame).
    vxlan: Vec<(usize, &'a [u8])>,
    /// Emptied per-port lists, kept for their room.
    spare: Vec<Vec<&'a [u8]>>,
}

/// Empties `v` and gives back its allocation typed for other borrows. The
/// element types have the same layout, so the standard library's in-place
/// `collect` keeps the buffer (a unit test checks it); were it not so, this
/// would merely allocate.
fn recycle_vec<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
}

impl<'a> Egress<'a> {
    /// Empties every list, keeping its room, for frames borrowed anew.
    pub(super) fn recycle<'b>(self) -> Egress<'b> {
        let Egress {
            shared,
            mut ports,
            tap,
            vxlan,
            spare,
        } = self;
        let mut spare: Vec<Vec<&'b [u8]>> = spare.into_iter().map(recycle_vec).collect();
        spare.extend(ports.drain(..).map(|(_, v)| recycle_vec(v)));
        Egress {
            shared: recycle_vec(shared),
            ports: recycle_vec(ports),
            tap: recycle_vec(tap),
            vxlan: recycle_vec(vxlan),
            spare,
        }
    }

    /// Queues `frame` for port `p`'s own socket.
    fn queue_for_port(&mut self, p: PortId, frame: &'a [u8]) {
        match self.ports.iter_mut().find(|(q, _)| *q == p) {
            Some((_, frames)) => frames.push(frame),
            None => {
                let mut frames = self.spare.pop().unwrap_or_default();
                frames.push(frame);
                self.ports.push((p, frames));
            }
        }
    }
}

/// Where a batch came from: the shared socket (the sender's address names
/// the port) or a port's own socket (the kernel lets only its client in).
#[derive(Clone, Copy)]
enum Ingress {
    Shared,
    Port(PortId),
}

impl Daemon {
    /// Frames on the shared data socket.
    pub(super) fn on_data(&mut self) {
        let sock = self.data.clone();
        self.drain(sock.as_fd(), Ingress::Shared);
    }

    /// Frames on port `port`'s own data socket.
    pub(super) fn on_port_data(&mut self, port: PortId) {
        let Some(Sink::Port(sock, _)) = self.sinks.get(&port) else {
            return;
        };
        let sock = sock.clone();
        self.drain(sock.as_fd(), Ingress::Port(port));
    }

    /// Receives and forwards what waits on `sock`, a bounded number of
    /// batches so that other sockets and control events get their turn.
    fn drain(&mut self, sock: BorrowedFd<'_>, from: Ingress) {
        let mut slots = std::mem::take(&mut self.slots);
        for _ in 0..MAX_BATCHES_PER_WAKEUP {
            let received = match from {
                Ingress::Shared => sysnet::recv_batch(sock, &mut slots),
                Ingress::Port(_) => sysnet::recv_batch_from_peer(sock, &mut slots),
            };
            let n = match received {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("handle_sock_data: {}", strerror(&e));
                    break;
                }
            };
            if n == 0 {
                break;
            }
            self.round_frames += n;
            self.forward_batch(&slots[..n], from);
            if n < slots.len() {
                // Drained: back to epoll, which also looks at the others.
                break;
            }
        }
        self.slots = slots;
    }

    fn forward_batch(&mut self, slots: &[RecvSlot], from: Ingress) {
        let mut out = std::mem::take(&mut self.egress).recycle();
        for slot in slots {
            let ingress = match from {
                Ingress::Port(p) => p,
                Ingress::Shared => match self.by_addr.get(&UnixAddr(slot.from)) {
                    Some(&p) => p,
                    None => {
                        self.stats.unknown_sender += 1;
                        continue;
                    }
                },
            };
            self.route(ingress, &slot.buf[..slot.len], &mut out);
        }
        self.send(&out);
        self.egress = out.recycle();
    }

    /// Sends one batch's copies: one `sendmmsg` per destination socket.
    pub(super) fn send(&mut self, out: &Egress<'_>) {
        let mut sent = 0;
        let mut dropped = 0;
        if !out.shared.is_empty() {
            let (s, d) = sysnet::send_batch(self.data.as_fd(), &out.shared);
            sent += s;
            dropped += d;
        }
        for (port, frames) in &out.ports {
            let outcome = match self.sinks.get(port) {
                Some(Sink::Port(sock, _)) => sysnet::send_batch_connected(sock.as_fd(), frames),
                _ => continue,
            };
            sent += outcome.sent;
            dropped += outcome.dropped;
            if outcome.peer_gone {
                self.data_socket_gone(*port);
            }
        }
        self.stats.frames_out += u64::try_from(sent).unwrap_or(0);
        self.stats.send_drops += u64::try_from(dropped).unwrap_or(0);
        self.write_tap(&out.tap);
        if !out.vxlan.is_empty() {
            self.send_vxlan(&out.vxlan);
        }
    }

    /// Runs one frame through the forwarder and queues its copies.
    pub(super) fn route<'a>(&mut self, ingress: PortId, frame: &'a [u8], out: &mut Egress<'a>) {
        self.stats.frames_in += 1;
        let f = match EthernetFrame::new_checked(frame) {
            Ok(f) => f,
            Err(FrameError::Short(_)) | Err(FrameError::Oversized(_)) => {
                self.stats.bad_frames += 1;
                return;
            }
        };
        if let Some(c) = &mut self.pcap {
            if let Some(e) = c.frame(frame) {
                eprintln!("Capture stopped: {}", strerror(&e));
            }
        }
        let d = self.fwd.forward(ingress, &f, self.now);
        if let Some(l) = d.learned {
            let port = self.port_label(l.port);
            match l.old {
                Some(old) => {
                    let old = self.port_label(old);
                    log(
                        &mut self.out,
                        format_args!(" Addr: {} New port {port} old port {old}", l.mac),
                    )
                }
                None => log(
                    &mut self.out,
                    format_args!(" Addr: {} New port {port}", l.mac),
                ),
            }
        }
        if d.unknown_unicast {
            self.log_unknown(&f, ingress);
        }
        // Split horizon: what came from one VXLAN peer never goes to
        // another (each peer floods to all of them itself).
        let from_peer = peer_index(ingress).is_some();
        let allowed = |p: PortId| !(from_peer && peer_index(p).is_some());
        match d.verdict {
            Verdict::Filter => {}
            Verdict::Unicast(p) if allowed(p) => self.queue(p, frame, out),
            Verdict::Unicast(_) => {}
            Verdict::Flood => {
                for p in self.fwd.flood_targets(ingress).filter(|&p| allowed(p)) {
                    self.queue(p, frame, out);
                }
            }
        }
    }

    /// The original logs every frame to an unknown destination; a guest
    /// flooding unknown destinations must not turn that into a stream of
    /// writes, so at most UNKNOWN_LOG_PER_SEC lines a second are printed.
    fn log_unknown(&mut self, f: &EthernetFrame<&[u8]>, ingress: PortId) {
        let now_s = self.now.as_secs();
        if self.unknown_log.0 != now_s {
            if self.unknown_log.1 > UNKNOWN_LOG_PER_SEC {
                let more = self.unknown_log.1 - UNKNOWN_LOG_PER_SEC;
                log(
                    &mut self.out,
                    format_args!("({more} more unknown Addr lines suppressed)"),
                );
            }
            self.unknown_log = (now_s, 0);
        }
        self.unknown_log.1 += 1;
        if self.unknown_log.1 <= UNKNOWN_LOG_PER_SEC {
            log(
                &mut self.out,
                format_args!("unknown Addr: {} from port {}", f.src(), ingress.0),
            );
        }
    }

    fn queue<'a>(&self, p: PortId, frame: &'a [u8], out: &mut Egress<'a>) {
        match self.sinks.get(&p) {
            Some(Sink::Port(..)) => out.queue_for_port(p, frame),
            Some(Sink::Shared(addr)) => out.shared.push(SendItem {
                buf: frame,
                to: addr.0,
            }),
            Some(Sink::Tap) => out.tap.push(frame),
            Some(Sink::Vxlan(i)) => out.vxlan.push((*i, frame)),
            None => {}
        }
    }

    fn write_tap(&mut self, frames: &[&[u8]]) {
        let Some((tap, _)) = &mut self.tap else {
            return;
        };
        for f in frames {
            match tap.write(f) {
                Ok(_) => self.stats.frames_out += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.stats.send_drops += 1,
                Err(e) => {
                    self.stats.send_drops += 1;
                    eprintln!("send_tap: {}", strerror(&e));
                }
            }
        }
    }

    pub(super) fn on_tap(&mut self) {
        let Some(port) = self.tap.as_ref().map(|t| t.1) else {
            return;
        };
        let mut buf = vec![0u8; MAX_FRAME_LEN + 1];
        for _ in 0..BATCH {
            let n = match self.tap.as_mut().map(|t| t.0.read(&mut buf)) {
                Some(Ok(n)) => n,
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                Some(Err(e)) => {
                    eprintln!("Reading tap data: {}", strerror(&e));
                    return;
                }
                None => return,
            };
            let mut out = std::mem::take(&mut self.egress).recycle();
            self.route(port, &buf[..n], &mut out);
            self.send(&out);
            self.egress = out.recycle();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycled_egress_lists_keep_their_room_and_come_back_empty() {
        let frames: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 60]).collect();
        let mut out: Egress<'_> = Egress::default();
        for (i, f) in frames.iter().enumerate() {
            out.queue_for_port(PortId(u32::try_from(i % 3).unwrap()), f);
            out.tap.push(f);
        }
        let tap_room = out.tap.capacity();
        let port_room: usize = out.ports.iter().map(|(_, v)| v.capacity()).sum();
        let again: Egress<'static> = out.recycle();
        assert!(again.ports.is_empty() && again.tap.is_empty());
        assert_eq!(again.tap.capacity(), tap_room, "the tap list kept its room");
        assert_eq!(again.spare.len(), 3, "each port's list is kept as a spare");
        let spare_room: usize = again.spare.iter().map(Vec::capacity).sum();
        assert_eq!(spare_room, port_room);
        // A port list taken from the spares starts empty.
        let frame = [0u8; 60];
        let mut out = again.recycle();
        out.queue_for_port(PortId(7), &frame);
        assert_eq!(out.ports, vec![(PortId(7), vec![&frame[..]])]);
    }
}
