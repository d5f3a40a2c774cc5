//! `uml_lab`'s library: a Netkit/Kathará lab directory run as umlkit
//! guests on `uml_switch` collision domains.
//!
//! ```text
//!   lab.conf ──conf::parse──┐
//!   lab.dep ───dep::parse───┼─ model::Lab::assemble ── plan::Plan (argv, switches, order)
//!   MACHINE/, *.startup ────┘                              │
//!                                     run (spawn, wait, stop) + state (.uml_lab/)
//!                                     copy (trees into each COW) + guest (init wrapper, exec agent)
//!                                     capture (each switch's pcap stream, relayed to `uml_lab capture`)
//!   image: `uml_lab image build` (a Debian root image by debootstrap)
//! ```
//!
//! The parsers, the dependency order and the plan are pure functions of
//! text and directory listings (unit-tested, never panicking on any
//! input); `copy`, `state` and `run` are the thin I/O shells around them.
#![forbid(unsafe_code)]

pub mod capture;
pub mod conf;
pub mod copy;
pub mod dep;
pub mod guest;
pub mod image;
pub mod model;
pub mod plan;
pub mod run;
pub mod state;

use std::path::{Path, PathBuf};

/// Why a lab could not be read, started or driven.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A line of a lab file is wrong: `FILE:LINE: what`.
    #[error("{}:{line}: {what}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// The lab as a whole is wrong (a bad machine directory, an unknown
    /// machine on the command line, no image).
    #[error("{0}")]
    Invalid(String),
    /// A host operation failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A machine failed while starting, stopping or running a command.
    #[error("{machine}: {what}")]
    Machine {
        /// The machine.
        machine: String,
        /// What went wrong.
        what: String,
    },
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: &Path, op: &'static str, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    }

    /// A syntax error at `file:line`.
    pub fn syntax(file: &Path, line: usize, what: impl Into<String>) -> Error {
        Error::Syntax {
            file: file.to_path_buf(),
            line,
            what: what.into(),
        }
    }

    /// A failure of `machine`.
    pub fn machine(machine: &str, what: impl Into<String>) -> Error {
        Error::Machine {
            machine: machine.to_string(),
            what: what.into(),
        }
    }
}

/// Results of lab operations.
pub type Result<T> = std::result::Result<T, Error>;

/// A warning about the lab (an unknown key, a Docker image name): shown,
/// never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning(pub String);

/// True for a name usable as a machine or collision domain: 1 to 32
/// letters, digits, `_` or `-`, not starting with `-` (names become file
/// names, socket paths and `umid=` values).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
