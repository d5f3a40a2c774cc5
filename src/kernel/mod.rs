//! The guest kernel behind the `linux` binary (its front end is
//! `crate::cli::linux`): a user-mode machine monitor.
//!
//! ```text
//!   host argv ── cmdline/ (pure: words, numbers, ubd<n>=, con/ssl channels;
//!                 │        two passes, the kernel's errors, OPTIONS)
//!   monitor ── run: host checks, boot log, disks, umid dir + mconsole
//!     │
//!   boot ── namespaces (user+mount+uts+ipc+net, cgroups, id maps)
//!     ├── root: disk/ (ubdN through src/cow; the root's ext3 served over
//!     │         FUSE by the journaling writer, or the reader for a
//!     │         read-only disk; remounts, durability, /dev/ubdX)
//!     ├── lines: net/ (ethN: daemon, tuntap, mcast, ucast), console/
//!     │         (boot log, kmsg, con0 relay, consoles 1-15, serial lines)
//!     ├── guest/: init as pid 1 (mount+pid namespace) under the seccomp
//!     │         policy, ids, limits, cgroups, /dev and /proc files
//!     ├── hostfs/: the guest's `mount -t hostfs`, answered by binding
//!     │         a host directory into its mount namespace
//!     ├── mcon: the mconsole commands (src/mconsole's server)
//!     └── lifecycle (pure: how pid 1 ended -> halt, reboot, panic)
//! ```
//!
//! The guest's programs run natively on the host kernel; what makes it a
//! UML guest (the command line, the disks, the console, the network
//! devices, the management console, the lifecycle) is ours. The root is
//! mounted read-only by default (`ro`); it becomes writable with `rw` or
//! the guest's `mount -o remount,rw /` when its disk is writable. The
//! texts follow the spec `kernel-cmdline.md` (section numbers in
//! comments).
#![forbid(unsafe_code)]

pub mod boot;
pub mod cmdline;
pub mod console;
pub mod disk;
pub mod guest;
pub mod hostfs;
pub mod lifecycle;
pub mod mcon;
pub mod monitor;
pub mod net;

/// The release of this kernel binary: the boot log's `Linux version` line
/// and what `linux --version` prints.
pub const RELEASE: &str = concat!(env!("CARGO_PKG_VERSION"), "-umlkit");
