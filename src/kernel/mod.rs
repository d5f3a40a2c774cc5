//! The guest kernel binary `linux`: a user-mode machine monitor.
//!
//! ```text
//!   host argv ── cmdline (pure: two passes, the kernel's errors)
//!                   │
//!   monitor ── disks (src/cow) ── root fs (fs::InodeFs) ── FUSE server
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

pub mod cgroup;
pub mod cgroupns;
pub mod chan;
pub mod cmdline;
pub mod console;
pub mod disks;
pub mod durable;
pub mod fuse;
pub mod fuse_attr;
pub mod guestdev;
pub mod guestproc;
pub mod hostnet;
pub mod idmap;
pub mod kmsg;
pub mod lifecycle;
pub mod limits;
pub mod lines;
pub mod mcon;
pub mod monitor;
pub mod net;
pub mod num;
pub mod policy;
pub mod remount;
pub mod ubd;
pub mod ubddev;
pub mod udpnet;
pub mod words;

/// What `--version` prints: the release of this kernel binary.
pub const RELEASE: &str = concat!(env!("CARGO_PKG_VERSION"), "-umlkit");

/// What `--showconfig` prints: linux.uml prints its build configuration;
/// this monitor has none to print.
pub const SHOWCONFIG: &str = "# umlkit linux: no kernel build configuration (a user-mode monitor; guest programs run on the host kernel)";

/// What `--help` prints (spec §1.2: a banner, then every option).
pub fn help_text() -> String {
    format!(
        "User Mode Linux (umlkit monitor) v{RELEASE}\n\
         \tThe guest's programs run natively in namespaces; see linux(1).\n\
         \n\
         --help\n    Prints this message and exits.\n\n\
         --version\n    Prints the version number of the kernel and exits.\n\n\
         --showconfig\n    Prints that there is no kernel build configuration and exits.\n\n\
         ubd<n><flags>=<filename>[(:|,)<filename2>][(:|,)<serial>]\n    \
         Attach a disk (n = 0-15 or a-p). With two files the first is a COW\n    \
         file over the second (created if missing). Flags: r (read-only),\n    \
         s (synchronous host writes), d (plain image, no COW), c (shared:\n    \
         no host locking), t (no trim).\n\n\
         root=<device>\n    The root device: /dev/ubda (default 98:0 = ubda).\n\n\
         rw\n    Mount the root read-write.\n\n\
         ro\n    Mount the root read-only (the default; the guest's\n    \
         mount -o remount,rw / makes it writable).\n\n\
         init=<program>\n    The program to run as init (default: /sbin/init,\n    \
         /etc/init, /bin/init, /bin/sh).\n\n\
         mem=<amount>\n    Guest memory (K, M, G, T suffixes; default 64M): sizes the\n    \
         guest's tmpfs and, in a delegated cgroup, limits its memory and\n    \
         tasks. Passed to init.\n\n\
         umid=<name>\n    The name of this guest (~/.uml/<name>/ holds pid and mconsole).\n\n\
         uml_dir=<directory>\n    Where the umid directory is made instead of ~/.uml/.\n\n\
         con[0-15]=<channel>\n    Attach a console: fd:N, null, pts (not con0), or IN,OUT\n    \
         (e.g. fd:0,fd:1); none removes it. con= sets every console.\n    \
         Default con0=fd:0,fd:1.\n\n\
         ssl[0-63]=<channel>\n    Attach a serial line /dev/ttySN (channels as con1-15).\n\n\
         ssl-non-raw\n    Serial lines not in raw mode (parsed; no effect).\n\n\
         eth[0-9]+=<transport>,<options>\n    Configure a network device (parsed; not attached yet).\n\n\
         mconsole=notify:<socket>\n    Send the mconsole socket's path to this socket at boot.\n\n\
         hostfs=<directory>\n    Confine hostfs mounts to this directory (passed to init).\n\n\
         quiet\n    No boot log.\n\n\
         noreboot\n    A guest reboot exits instead of booting again.\n\n\
         --\n    Everything after this goes to init's argv.\n\n\
         Other NAME=VALUE words go into init's environment, other words into\n\
         its argv.\n"
    )
}
