//! Networking shared by the tools and the guest kernel: MAC addresses, TAP
//! devices, the `uml_net` request, host configuration, and the work of
//! `tunctl` and `uml_net`.
//!
//! ```text
//!   cli::tunctl ───── tunctl::run ──────────────────────┐
//!   cli::uml_net ──── uml_net::run ── Request::parse    │
//!   kernel (eth<N>=) ── Request::to_argv ──> uml_net    ├── tap::Tap ── sys::net (TUNSETIFF ...)
//!   uml_net::run ──── host (routes, proxy ARP, sysctl) │
//!                     tapstate ── state/statedir        │
//!                     watcher (undoes it when the TAP goes)
//!   switch -tap, kernel eth<N> ─────────────────────────┘
//!   switch frames/table, kernel eth<N>= ── mac::Mac
//! ```
//!
//! - `mac`: [`Mac`], parsed from and printed as `fe:fd:00:00:00:01`.
//! - `tap`: the one place that opens `/dev/net/tun` and attaches a TAP.
//! - `request`: the `uml_net VERSION TRANSPORT ARGS...` argv protocol as
//!   one type, parsed by `uml_net` and written by the guest kernel.
//! - `host`: what `uml_net` changes on the host (addresses, routes, proxy
//!   ARP, `ip_forward`), through the kernel's interfaces, no programs.
//! - `tapstate`, `state`, `statedir`, `watcher`: the record of those changes
//!   and the process that undoes them when the TAP goes away.
//! - `tunctl`, `uml_net`: the tools' work once their arguments are parsed;
//!   the front ends (getopt parser, help texts, exit codes) live in
//!   `crate::cli::tunctl` and `crate::cli::uml_net`.
//!
//! Everything here is safe code written against `sys::net`.
#![forbid(unsafe_code)]

pub mod host;
pub mod mac;
pub mod request;
pub mod state;
pub mod statedir;
pub mod tap;
pub mod tapstate;
pub mod tunctl;
pub mod uml_net;
pub mod watcher;

pub use mac::Mac;
pub use request::Request;
pub use tap::Tap;
