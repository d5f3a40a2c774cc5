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

pub mod hostnet;
pub mod state;
pub mod statedir;
pub mod tapstate;
pub mod tunctl;
pub mod tunctl_args;
pub mod uml_net;
pub mod uml_net_args;
pub mod watcher;

/// `uml_net --help`: the sub-commands the kernel sends.
pub fn uml_net_help() -> String {
    "Usage: uml_net 4 tuntap up GATEWAY       (fd 1: a datagram socket; the TAP fd comes back on it)\n\
     \x20      uml_net 4 add DEV ADDR NETMASK     (host route and proxy ARP for a guest address)\n\
     \x20      uml_net 4 del DEV ADDR NETMASK     (undo add)\n\
     \x20      uml_net 4 tuntap add|del DEV ADDR NETMASK\n\
     \x20      uml_net --help\n\n\
     Options:\n\
     \x20 --help   print this help and exit\n\n\
     uml_net is run by the UML kernel (eth0=tuntap,,,GATEWAY) and installed setuid root;\n\
     DEV must be a TAP device owned by the calling user.\n"
        .to_string()
}
