//! The guest kernel binary `linux`: a user-mode machine monitor.
//!
//! ```text
//!   host argv ── cmdline (pure: two passes, the kernel's errors)
//!                   │
//!   monitor ── disks (src/cow) ── root fs (vfs::InodeFs) ── FUSE server
//!      │            namespaces (user+mount+uts+ipc+net), /dev, pivot_root
//!      ├── guest: mount+pid namespace, init as pid 1
//!      ├── console relay (pty) and mconsole
//!      └── lifecycle (pure: how pid 1 ended -> halt, reboot, panic)
//! ```
//!
//! The guest's programs run natively on the host kernel; what makes it a
//! UML guest (the command line, the disks, the console, the management
//! console, the lifecycle) is ours. The texts follow the spec
//! `kernel-cmdline.md` (section numbers in comments).
#![forbid(unsafe_code)]

pub mod boot;
pub mod cmdline;
pub mod console;
pub mod disk;
pub mod guest;
pub mod lifecycle;
pub mod mcon;
pub mod monitor;
pub mod net;

/// The release of this kernel binary: the boot log's `Linux version` line
/// and what `linux --version` prints.
pub const RELEASE: &str = concat!(env!("CARGO_PKG_VERSION"), "-umlkit");
