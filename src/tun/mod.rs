//! TUN/TAP devices and host network set-up for `tunctl` and `uml_net`.
//!
//! ```text
//!   tunctl ── tunctl_args (getopt-style argv) ── tunctl::run ──┐
//!   uml_net ── uml_net_args (version/transport argv) ── uml_net ┤
//!                                               sys::net (TUNSETIFF, SIOC*, SCM_RIGHTS)
//! ```
//!
//! The logic is written against `sys::net`; everything here is safe code.
#![forbid(unsafe_code)]

pub mod tunctl;
pub mod tunctl_args;
