//! The UML management console (mconsole): the protocol, the client behind
//! `uml_mconsole`, and the server-side pieces a guest kernel needs.
//!
//! ```text
//!   uml_mconsole (crate::cli::uml_mconsole: local commands, OK/ERR, exit codes)
//!                              │
//!                 client (datagram socket, timeout, reply assembly)
//!                              │  AF_UNIX SOCK_DGRAM
//!   guest kernel ── server (request in, replies split in 511-byte parts)
//!                              │
//!                 protocol (pure encode/decode, limits, magic, version)
//! ```
//!
//! `umid` finds the guest's socket the way the original client and the
//! kernel name it (`~/.uml/<umid>/mconsole`), `instance` makes that
//! directory for a guest, and `listen` receives the notifications of guests
//! started with `mconsole=notify:<socket>`. The arrows point one way:
//! `client` and `instance` use `umid`; `client`, `server` and `listen` use
//! `protocol`; `server` uses `commands`; `umid` and `protocol` use nothing
//! here but [`enum@Error`] and [`io_message`]. The original client's own texts
//! (its local help, `mconsole-version`) belong to its front end,
//! `crate::cli::uml_mconsole::texts`.
//! The facts come from the spec `mconsole.md` (section numbers in comments).
#![forbid(unsafe_code)]

pub mod client;
pub mod commands;
pub mod instance;
pub mod listen;
pub mod protocol;
pub mod server;
pub mod umid;

use std::io;
use std::path::PathBuf;
use thiserror::Error;

pub use protocol::ProtocolError;

/// Everything that can go wrong talking to a guest's mconsole.
#[derive(Debug, Error)]
pub enum Error {
    /// The guest sent a datagram that is not a valid mconsole structure.
    #[error("malformed datagram from {path}: {source}")]
    Corrupt {
        /// The socket it came from (or was received on).
        path: PathBuf,
        /// What is wrong with it.
        source: ProtocolError,
    },
    /// A reply grew beyond what the client accepts.
    #[error("reply from {path} exceeds {limit} bytes")]
    ReplyTooLarge {
        /// The guest's socket.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
    /// No socket was found for the name given on the command line.
    #[error("no guest named '{name}': no mconsole socket at {tried}")]
    UnknownUmid {
        /// The name or path as given.
        name: String,
        /// The candidate paths, joined for the message.
        tried: String,
    },
    /// The socket file exists but nothing receives on it: the guest is gone.
    #[error("guest at {path} is not running (stale socket: {why})")]
    NotRunning {
        /// The guest's socket.
        path: PathBuf,
        /// What the pid file and the socket say.
        why: String,
    },
    /// The guest did not answer in time.
    #[error("no reply from {path} within {secs} s (is the guest hung?)")]
    Timeout {
        /// The guest's socket.
        path: PathBuf,
        /// The timeout in seconds.
        secs: f64,
    },
    /// The kernel refuses this umid (empty or longer than 63 bytes).
    #[error("umid '{umid}' is invalid (1 to {max} bytes)")]
    BadUmid {
        /// The umid.
        umid: String,
        /// The longest valid umid.
        max: usize,
    },
    /// Another running guest has the umid.
    #[error("umid \"{umid}\" is already in use by pid {pid}")]
    UmidInUse {
        /// The umid.
        umid: String,
        /// The live pid in its pid file.
        pid: i32,
    },
    /// No notification arrived in time.
    #[error("no notification on {path} within {secs} s")]
    NoNotification {
        /// The listening socket.
        path: PathBuf,
        /// The timeout in seconds.
        secs: f64,
    },
    /// Any other system call failure.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// `strerror`-style text of an I/O error, without Rust's "(os error N)".
pub fn io_message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
