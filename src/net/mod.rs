//! TUN/TAP devices and host network set-up for `tunctl` and `uml_net`.
//!
//! ```text
//!   tunctl ── cli::tunctl (getopt-style argv) ── tunctl::run ──┐
//!   uml_net ── request (the kernel's version/transport argv) ── uml_net ┤
//!                                               sys::net (TUNSETIFF, SIOC*, SCM_RIGHTS)
//! ```
//!
//! The logic is written against `sys::net`; everything here is safe code.
//! The front ends (`tunctl`'s getopt parser, help texts, exit codes) live
//! in `crate::cli::tunctl` and `crate::cli::uml_net`.
#![forbid(unsafe_code)]

pub mod host;
pub mod request;
pub mod state;
pub mod statedir;
pub mod tapstate;
pub mod tunctl;
pub mod uml_net;
pub mod watcher;
