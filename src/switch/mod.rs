//! The virtual switch (uml_switch): control protocol, forwarding core and daemon.
//!
//! ```text
//!  guests ──stream── control socket ── proto::Request ──┐
//!         ──dgram─── data socket ── frame::EthernetFrame ┴─ daemon (epoll)
//!  tap ────────────── tap fd ───────────────────────────┘      │
//!                                       core::Forwarder (pure) + table::MacTable
//! ```
//!
//! `proto`, `frame`, `table` and `core` are pure and forbid unsafe code;
//! `daemon` is the thin I/O shell over `sys::net`.
#![forbid(unsafe_code)]

pub mod args;
pub mod client;
pub mod core;
pub mod daemon;
pub mod frame;
pub mod proto;
pub mod table;

/// A switch port, as numbered by the daemon (the original numbers ports by
/// their control descriptor, and so does our log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u32);
