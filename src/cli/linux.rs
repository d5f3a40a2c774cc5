//! `linux`'s front end (see `man/linux.1`): the help, version and
//! configuration texts, the exit status and the one line an error prints.
//! The command line itself is parsed by the library
//! ([`crate::kernel::cmdline`], pure), and a guest is run by
//! [`crate::kernel::monitor`]; `src/bin/linux.rs` calls [`main`].
//!
//! `linux` keeps the UML kernel's own command-line syntax (no clap), so its
//! page is hand-written and `tests/manpages.rs` checks every name in
//! [`crate::kernel::cmdline::OPTIONS`] against it.
//!
//! Exit statuses: 0 for `--help`, `--version`, `--showconfig` and a halted
//! guest; 1 for a refused command line or a host that cannot run a guest
//! (`linux: why` on standard error); otherwise what the guest's lifecycle
//! decides (134 for a kernel panic, as `linux.uml`).

use crate::kernel::cmdline::{self, Invocation};
use crate::kernel::{monitor, RELEASE};
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

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
         root=<device>\n    The root device: /dev/ubda (default 98:0 = ubda). An ext3 root\n    \
         on a writable disk is served by the journaling writer.\n\n\
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
         eth[0-9]+=<transport>,<options>\n    Attach a network device ethN: daemon (a uml_switch), tuntap (a\n    \
         host TAP by name, or one made by uml_net), mcast or ucast (UDP).\n\n\
         vec[0-9]+:<option>=<value>,<option>=<value>\n    Configure a vector io network device: transport=tap,ifname=TAP,\n    \
         transport=vde,vnl=URL (through vde_plug), bess, fd (see linux(1)).\n\n\
         mconsole=notify:<socket>\n    Send the mconsole socket's path to this socket at boot.\n\n\
         hostfs=<directory>\n    Confine hostfs mounts to this directory (passed to init).\n\n\
         quiet\n    No boot log.\n\n\
         noreboot\n    A guest reboot exits instead of booting again.\n\n\
         --\n    Everything after this goes to init's argv.\n\n\
         Other NAME=VALUE words go into init's environment, other words into\n\
         its argv.\n"
    )
}

/// Runs `linux` with the process's arguments and returns its exit status.
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    run(&args)
}

/// `linux` with `args` (without `argv[0]`).
pub fn run(args: &[OsString]) -> ExitCode {
    let text = match cmdline::parse_os(args) {
        Ok(Invocation::Help) => help_text(),
        Ok(Invocation::Version) => format!("{RELEASE}\n"),
        Ok(Invocation::ShowConfig) => format!("{SHOWCONFIG}\n"),
        Ok(Invocation::Boot(cmd)) => {
            return match monitor::run(&cmd) {
                Ok(status) => exit_status(status),
                Err(e) => super::report("linux", &anyhow::Error::new(e), 1),
            }
        }
        Err(e) => return super::report("linux", &anyhow::Error::new(e), 1),
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::report(
            "linux",
            &anyhow::Error::new(e).context("writing to standard output"),
            1,
        ),
    }
}

/// The process exit status for the guest's `status`: its low 8 bits, what
/// `exit(2)` would keep of it.
fn exit_status(status: i32) -> ExitCode {
    ExitCode::from(u8::try_from(status & 0xff).unwrap_or(u8::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_names_every_transport_and_no_longer_says_eth_is_unattached() {
        let help = help_text();
        for t in ["daemon", "tuntap", "mcast", "ucast"] {
            assert!(help.contains(t), "--help lacks {t}");
        }
        assert!(!help.contains("not attached"), "{help}");
        assert!(!help.contains("served read-only"), "{help}");
    }

    #[test]
    fn every_option_word_in_the_help_is_one_the_parser_knows() {
        for line in help_text().lines().filter(|l| !l.starts_with([' ', '\t'])) {
            let Some(word) = line.split(['<', '[', '=']).next().filter(|w| !w.is_empty()) else {
                continue;
            };
            if word.starts_with("User Mode")
                || word.starts_with("Other ")
                || word.starts_with("its ")
            {
                continue;
            }
            let known = cmdline::OPTIONS
                .iter()
                .any(|o| o.trim_end_matches('=') == word)
                || word == "--";
            assert!(known, "--help names {word:?}, which cmdline::OPTIONS lacks");
        }
    }

    #[test]
    fn a_status_keeps_its_low_byte_as_exit_does() {
        assert_eq!(exit_status(134), ExitCode::from(134));
        assert_eq!(exit_status(0), ExitCode::SUCCESS);
        assert_eq!(exit_status(256 + 1), ExitCode::from(1));
    }
}
