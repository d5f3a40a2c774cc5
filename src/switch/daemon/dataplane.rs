//! The daemon's data plane: frames from the shared data socket (in
//! `recvmmsg` batches) and from the TAP uplink, through the forwarder, out
//! in `sendmmsg` batches. A child module of `daemon`, so it works on the
//! same state.

use super::super::core::Verdict;
use super::super::frame::{EthernetFrame, FrameError, MAX_FRAME_LEN};
use super::super::proto::UnixAddr;
use super::super::PortId;
use super::{log, Daemon, Sink, BATCH, MAX_BATCHES_PER_WAKEUP, UNKNOWN_LOG_PER_SEC};
use crate::sys::net::{self as sysnet, strerror, SendItem};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;

impl Daemon {
    pub(super) fn on_data(&mut self) {
        let mut slots = std::mem::take(&mut self.slots);
        // Bounded work per wake-up so control events are not starved. (No
        // busy polling: measured, it cost more than it saved on a shared
        // 2-core machine; see BENCHMARKS.md.)
        let mut batches = 0;
        while batches < MAX_BATCHES_PER_WAKEUP {
            let n = match sysnet::recv_batch(self.data.as_fd(), &mut slots) {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("handle_sock_data: {}", strerror(&e));
                    break;
                }
            };
            if n == 0 {
                break;
            }
            batches += 1;
            let mut sends: Vec<SendItem<'_>> = Vec::with_capacity(n * 2);
            let mut tap_frames: Vec<&[u8]> = Vec::new();
            for slot in &slots[..n] {
                let Some(&ingress) = self.by_addr.get(&UnixAddr(slot.from)) else {
                    self.stats.unknown_sender += 1;
                    continue;
                };
                let frame = &slot.buf[..slot.len];
                self.route(ingress, frame, &mut sends, &mut tap_frames);
            }
            let (sent, dropped) = sysnet::send_batch(self.data.as_fd(), &sends);
            self.stats.frames_out += u64::try_from(sent).unwrap_or(0);
            self.stats.send_drops += u64::try_from(dropped).unwrap_or(0);
            self.write_tap(&tap_frames);
            if n < slots.len() {
                // The queue is drained (it holds at most
                // net.unix.max_dgram_qlen datagrams): back to epoll rather
                // than one more empty receive. (Measured: draining again at
                // once costs more CPU per frame than it saves.)
                break;
            }
        }
        self.slots = slots;
    }

    /// Runs one frame through the forwarder and queues its copies.
    fn route<'a>(
        &mut self,
        ingress: PortId,
        frame: &'a [u8],
        sends: &mut Vec<SendItem<'a>>,
        taps: &mut Vec<&'a [u8]>,
    ) {
        self.stats.frames_in += 1;
        let f = match EthernetFrame::new_checked(frame) {
            Ok(f) => f,
            Err(FrameError::Short(_)) | Err(FrameError::Oversized(_)) => {
                self.stats.bad_frames += 1;
                return;
            }
        };
        let d = self.fwd.forward(ingress, &f, self.start.elapsed());
        if let Some(l) = d.learned {
            match l.old {
                Some(old) => log(
                    &mut self.out,
                    format_args!(" Addr: {} New port {} old port {}", l.mac, l.port.0, old.0),
                ),
                None => log(
                    &mut self.out,
                    format_args!(" Addr: {} New port {}", l.mac, l.port.0),
                ),
            }
        }
        if d.unknown_unicast {
            // The original logs every such frame; a guest flooding unknown
            // destinations must not turn that into a stream of writes, so
            // at most UNKNOWN_LOG_PER_SEC lines a second are printed.
            let now_s = self.start.elapsed().as_secs();
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
        match d.verdict {
            Verdict::Filter => {}
            Verdict::Unicast(p) => self.queue(p, frame, sends, taps),
            Verdict::Flood => {
                let targets: Vec<PortId> = self.fwd.flood_targets(ingress).collect();
                for p in targets {
                    self.queue(p, frame, sends, taps);
                }
            }
        }
    }

    fn queue<'a>(
        &self,
        p: PortId,
        frame: &'a [u8],
        sends: &mut Vec<SendItem<'a>>,
        taps: &mut Vec<&'a [u8]>,
    ) {
        match self.sinks.get(&p) {
            Some(Sink::Sock(addr)) => sends.push(SendItem {
                buf: frame,
                to: addr.0,
            }),
            Some(Sink::Tap) => taps.push(frame),
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
            let mut sends = Vec::new();
            let mut taps = Vec::new();
            self.route(port, &buf[..n], &mut sends, &mut taps);
            let (sent, dropped) = sysnet::send_batch(self.data.as_fd(), &sends);
            self.stats.frames_out += u64::try_from(sent).unwrap_or(0);
            self.stats.send_drops += u64::try_from(dropped).unwrap_or(0);
        }
    }
}
