//! The guest's lifecycle as a pure function (spec kernel-cmdline.md §6):
//! how pid 1 ended, plus the command line, decides between halt, reboot
//! and which panic, with the kernel's texts and `linux.uml`'s exit
//! statuses. The monitor only observes and obeys.
//!
//! Seen from outside a pid namespace, a guest `reboot(2)` kills pid 1 with
//! SIGINT (HALT, POWER_OFF) or SIGHUP (RESTART); any other end of pid 1 is
//! the "Attempted to kill init!" panic.

use nix::errno::Errno;

/// The exit status of every panic: linux.uml aborts (SIGABRT, 128 + 6).
pub const PANIC_STATUS: i32 = 134;
/// The exit status after SIGINT or SIGTERM to the monitor.
pub const SIGNAL_STATUS: i32 = 1;
/// The defaults tried without `init=`, in the kernel's order.
pub const DEFAULT_INITS: [&str; 4] = ["/sbin/init", "/etc/init", "/bin/init", "/bin/sh"];
/// The panic when no init could be started.
pub const NO_WORKING_INIT: &str = "No working init found.  Try passing init= option to kernel. See Linux Documentation/admin-guide/init.rst for guidance.";
/// The console line of a halt or power-off.
pub const HALTED: &str = "reboot: System halted";
/// The console line of a restart.
pub const RESTARTING: &str = "reboot: Restarting system";

/// How pid 1 ended, as `waitpid` outside its namespace reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid1End {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

impl Pid1End {
    /// The wait status the kernel prints: code << 8, or the signal.
    pub fn wait_status(self) -> u32 {
        match self {
            Pid1End::Exited(code) => (u32::from(code as u8)) << 8,
            Pid1End::Signaled(sig) => u32::try_from(sig & 0x7f).unwrap_or(0),
        }
    }
}

/// What the monitor does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Print [`HALTED`], shut down, exit with `status` (`/proc/exitcode`).
    Halt {
        /// The exit status.
        status: i32,
    },
    /// Print [`RESTARTING`] and boot again in the same process.
    Reboot,
    /// Print [`RESTARTING`] and exit 0 (`noreboot`).
    RestartExit,
    /// Print `Kernel panic - not syncing: <message>`, exit [`PANIC_STATUS`].
    Panic {
        /// The panic message.
        message: String,
    },
}

impl Outcome {
    /// The monitor's exit status for this outcome, if it exits.
    pub fn exit_status(&self) -> Option<i32> {
        match self {
            Outcome::Halt { status } => Some(*status),
            Outcome::Reboot => None,
            Outcome::RestartExit => Some(0),
            Outcome::Panic { .. } => Some(PANIC_STATUS),
        }
    }

    /// The console lines printed for it.
    pub fn console_line(&self) -> String {
        match self {
            Outcome::Halt { .. } => HALTED.to_string(),
            Outcome::Reboot | Outcome::RestartExit => RESTARTING.to_string(),
            Outcome::Panic { message } => format!("Kernel panic - not syncing: {message}"),
        }
    }
}

/// Decides what pid 1's end means. `exitcode` is the guest's
/// `/proc/exitcode` value (0 unless the guest set one).
pub fn on_pid1_end(end: Pid1End, noreboot: bool, exitcode: i32) -> Outcome {
    match end {
        Pid1End::Signaled(s) if s == libc::SIGINT => Outcome::Halt { status: exitcode },
        Pid1End::Signaled(s) if s == libc::SIGHUP => {
            if noreboot {
                Outcome::RestartExit
            } else {
                Outcome::Reboot
            }
        }
        other => Outcome::Panic {
            message: format!(
                "Attempted to kill init! exitcode=0x{:08x}",
                other.wait_status()
            ),
        },
    }
}

/// The programs to try as init: the requested one alone, or the defaults.
pub fn init_candidates(requested: Option<&str>) -> Vec<String> {
    match requested {
        Some(r) => vec![r.to_string()],
        None => DEFAULT_INITS.iter().map(|s| s.to_string()).collect(),
    }
}

/// What the init search printed and whether it ends in a panic, given the
/// errors of the candidates that failed, in order (the one after them, if
/// any, started).
pub fn init_search(requested: Option<&str>, failures: &[Errno]) -> (Vec<String>, Option<Outcome>) {
    let candidates = init_candidates(requested);
    let mut lines = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        lines.push(format!("Run {c} as init process"));
        let Some(&e) = failures.get(i) else {
            return (lines, None);
        };
        let code = e as i32;
        if requested.is_some() {
            let message = format!("Requested init {c} failed (error -{code}).");
            return (lines, Some(Outcome::Panic { message }));
        }
        if e != Errno::ENOENT {
            lines.push(format!(
                "Starting init: {c} exists but couldn't execute it (error -{code})"
            ));
        }
    }
    (
        lines,
        Some(Outcome::Panic {
            message: NO_WORKING_INIT.to_string(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halt_and_poweroff_exit_with_the_guests_exitcode() {
        let o = on_pid1_end(Pid1End::Signaled(libc::SIGINT), false, 0);
        assert_eq!(o, Outcome::Halt { status: 0 });
        assert_eq!(o.console_line(), "reboot: System halted");
        assert_eq!(
            on_pid1_end(Pid1End::Signaled(libc::SIGINT), false, 7).exit_status(),
            Some(7)
        );
    }

    #[test]
    fn restart_reboots_unless_noreboot() {
        assert_eq!(
            on_pid1_end(Pid1End::Signaled(libc::SIGHUP), false, 0),
            Outcome::Reboot
        );
        let o = on_pid1_end(Pid1End::Signaled(libc::SIGHUP), true, 0);
        assert_eq!(o, Outcome::RestartExit);
        assert_eq!(o.exit_status(), Some(0));
        assert_eq!(o.console_line(), "reboot: Restarting system");
    }

    #[test]
    fn init_exiting_is_the_kill_init_panic_with_the_wait_status() {
        let o = on_pid1_end(Pid1End::Exited(3), false, 0);
        assert_eq!(
            o.console_line(),
            "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300"
        );
        assert_eq!(o.exit_status(), Some(134));
        let o = on_pid1_end(Pid1End::Signaled(libc::SIGSEGV), false, 0);
        assert!(o.console_line().ends_with("exitcode=0x0000000b"));
        let o = on_pid1_end(Pid1End::Exited(0), false, 0);
        assert!(o.console_line().ends_with("exitcode=0x00000000"));
    }

    #[test]
    fn default_init_search_tries_four_paths_then_panics() {
        let (lines, o) = init_search(None, &[Errno::ENOENT; 4]);
        assert_eq!(
            lines,
            [
                "Run /sbin/init as init process",
                "Run /etc/init as init process",
                "Run /bin/init as init process",
                "Run /bin/sh as init process"
            ]
        );
        assert_eq!(
            o.unwrap().console_line(),
            format!("Kernel panic - not syncing: {NO_WORKING_INIT}")
        );
    }

    #[test]
    fn a_default_that_exists_but_fails_is_reported_and_the_search_goes_on() {
        let (lines, o) = init_search(None, &[Errno::ENOEXEC]);
        assert_eq!(
            lines,
            [
                "Run /sbin/init as init process",
                "Starting init: /sbin/init exists but couldn't execute it (error -8)",
                "Run /etc/init as init process"
            ]
        );
        assert_eq!(o, None, "the second candidate started");
    }

    #[test]
    fn a_requested_init_that_fails_panics_at_once() {
        let (lines, o) = init_search(Some("/nonexistent"), &[Errno::ENOENT]);
        assert_eq!(lines, ["Run /nonexistent as init process"]);
        assert_eq!(
            o.unwrap().console_line(),
            "Kernel panic - not syncing: Requested init /nonexistent failed (error -2)."
        );
        let (_, o) = init_search(Some("/init"), &[]);
        assert_eq!(o, None);
    }
}
