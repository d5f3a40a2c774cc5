//! The virtual switch (uml_switch): control protocol, forwarding core and daemon.
//!
//! ```text
//!  guests ──stream── control socket ── proto::Request ──┐
//!         ──dgram─── data socket ── frame::EthernetFrame ┴─ daemon (epoll)
//!  tap ────────────── tap fd ───────────────────────────┘      │
//!                                       core::Forwarder (pure) + table::MacTable
//! ```
//!
//! `proto`, `vde` (what a VDE switch directory adds to the protocol),
//! `vxlan` (the RFC 7348 header and peer addresses), `pcap` (the capture
//! format and writer), `frame`, `table` and `core` are pure; `daemon/` (the event
//! loop in `mod.rs`, the frame path in `dataplane.rs`) is the thin I/O shell
//! over `sys::net`, with `setup` binding its sockets and opening the `-tap`
//! uplink through `crate::net::tap`; `client` is the guest kernel's side of
//! the protocol. MAC addresses are `crate::net::Mac`. The whole module
//! forbids unsafe code. The command line is parsed in
//! `crate::cli::uml_switch`.
#![forbid(unsafe_code)]

pub mod client;
pub mod core;
pub mod daemon;
pub mod frame;
pub mod pcap;
pub mod proto;
pub mod setup;
pub mod spin;
pub mod table;
pub mod vde;
pub mod vxlan;

use std::path::PathBuf;

/// The original's control socket when started without `-unix`.
pub const DEFAULT_CTL: &str = "/tmp/uml.ctl";
/// The original's data socket in `-compat-v0` mode.
pub const DEFAULT_DATA: &str = "/tmp/uml.data";

/// What the switch was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchArgs {
    /// `-unix`: the control socket path.
    pub ctl: PathBuf,
    /// `-compat-v0`: the named data socket (else an abstract one is used).
    pub data: Option<PathBuf>,
    /// `-hub`: flood every frame.
    pub hub: bool,
    /// `-tap`: a TAP device attached as one more port.
    pub tap: Option<String>,
    /// `-daemon`: detach after set-up.
    pub daemon: bool,
    /// Lines the original prints while parsing (`-hub`, `-compat-v0`), in order.
    pub notices: Vec<String>,
    /// `-vde DIR`: serve a VDE switch directory (`ctl` is then `DIR/ctl`).
    pub vde: Option<VdeArgs>,
    /// `-pcap FILE|-`: capture every frame.
    pub pcap: Option<PcapTarget>,
    /// `-vxlan VNI -peer ...`: join the LAN to VXLAN peers.
    pub vxlan: Option<VxlanArgs>,
}

/// The VXLAN uplink (`-vxlan`, `-peer`, `-vxlan-local`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanArgs {
    /// The VXLAN Network Identifier.
    pub vni: u32,
    /// The remote ends, each one switch port.
    pub peers: Vec<std::net::SocketAddr>,
    /// The local address and port (default: any address, port 4789).
    pub local: std::net::SocketAddr,
}

/// Where `-pcap` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcapTarget {
    /// A file, created or truncated.
    File(PathBuf),
    /// `-`: standard output (the log then goes to standard error).
    Stdout,
}

/// A VDE switch directory (`-vde DIR`, `-mode`, `-dirmode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdeArgs {
    /// The directory.
    pub dir: PathBuf,
    /// `-mode`: mode of `DIR/ctl` and the data sockets.
    pub mode: Option<u32>,
    /// `-dirmode`: mode of the directory.
    pub dirmode: Option<u32>,
}

/// A switch port, as numbered by the daemon (the original numbers ports by
/// their control descriptor, and so does our log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u32);

/// A fast hasher for the switch's small fixed-size keys (MAC addresses,
/// 110-byte socket addresses), keyed per process from std's random state
/// so that crafted keys cannot be aimed at one bucket from outside.
#[derive(Clone)]
pub struct FastState {
    seed: u64,
}

impl Default for FastState {
    fn default() -> FastState {
        use std::hash::{BuildHasher, Hasher};
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        FastState { seed: seed | 1 }
    }
}

impl std::hash::BuildHasher for FastState {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.seed)
    }
}

/// The hasher of [`FastState`]: multiply-rotate over 8-byte words.
pub struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_ne_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_ne_bytes(w) ^ 0xff);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        let x = self.0;
        (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (x >> 32)
    }
}
