//! A running lab's state directory (the lab's `.uml_lab/` by default):
//! everything `stop`, `clean`, `status`, `exec` and `console` need, so
//! they work after `uml_lab` itself crashed.
//!
//! ```text
//! STATE/lab.json          pids (with start times) of machines and switches
//! STATE/lock              held while a command changes the lab
//! STATE/run/MACHINE/      the guest's umid directory (mconsole socket, pid)
//! STATE/sw/DOMAIN.ctl     a collision domain's uml_switch socket (and .log)
//! STATE/sw/DOMAIN.cap     its capture socket (the relay of its pcap stream)
//! STATE/m/MACHINE/        disk.cow, console.log, con.in (FIFO: console
//!                         input), exec.in (FIFO: agent requests),
//!                         exec.out (agent replies)
//! ```

use super::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The longest path a Unix socket address holds.
pub const MAX_SOCKET_PATH: usize = 107;

/// The paths of a state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The state directory.
    pub dir: PathBuf,
}

impl Layout {
    /// The layout of `dir`.
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    /// `lab.json`.
    pub fn state_file(&self) -> PathBuf {
        self.dir.join("lab.json")
    }

    /// The lock file.
    pub fn lock_file(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// The guests' `uml_dir`.
    pub fn uml_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// The mconsole socket of `machine`.
    pub fn mconsole(&self, machine: &str) -> PathBuf {
        self.uml_dir().join(machine).join("mconsole")
    }

    /// The switch directory.
    pub fn switch_dir(&self) -> PathBuf {
        self.dir.join("sw")
    }

    /// The control socket of domain `domain`.
    pub fn switch_socket(&self, domain: &str) -> PathBuf {
        self.switch_dir().join(format!("{domain}.ctl"))
    }

    /// The capture socket of domain `domain` (served by its relay; see
    /// [`crate::lab::capture`]).
    pub fn capture_socket(&self, domain: &str) -> PathBuf {
        self.switch_dir().join(format!("{domain}.cap"))
    }

    /// The log of domain `domain`'s switch.
    pub fn switch_log(&self, domain: &str) -> PathBuf {
        self.switch_dir().join(format!("{domain}.log"))
    }

    /// The directory of `machine`.
    pub fn machine_dir(&self, machine: &str) -> PathBuf {
        self.dir.join("m").join(machine)
    }

    /// The COW file of `machine`.
    pub fn cow(&self, machine: &str) -> PathBuf {
        self.machine_dir(machine).join("disk.cow")
    }

    /// The console log of `machine`.
    pub fn console_log(&self, machine: &str) -> PathBuf {
        self.machine_dir(machine).join("console.log")
    }

    /// The console input FIFO of `machine`.
    pub fn console_in(&self, machine: &str) -> PathBuf {
        self.machine_dir(machine).join("con.in")
    }

    /// The agent's request FIFO of `machine`.
    pub fn exec_in(&self, machine: &str) -> PathBuf {
        self.machine_dir(machine).join("exec.in")
    }

    /// The agent's reply file of `machine`.
    pub fn exec_out(&self, machine: &str) -> PathBuf {
        self.machine_dir(machine).join("exec.out")
    }

    /// Refuses a state directory whose socket paths would not fit in a
    /// socket address (the longest names are 32 bytes).
    pub fn check_lengths(&self) -> Result<()> {
        let longest = [
            self.mconsole(&"x".repeat(32)),
            self.switch_socket(&"x".repeat(32)),
        ]
        .iter()
        .map(|p| p.as_os_str().len())
        .max()
        .unwrap_or(0);
        if longest > MAX_SOCKET_PATH {
            return Err(Error::Invalid(format!(
                "{}: state directory path too long for the lab's sockets ({longest} > {MAX_SOCKET_PATH} bytes); choose a shorter one with --state",
                self.dir.display()
            )));
        }
        Ok(())
    }
}

/// A process the lab started: its pid and its start time (field 22 of
/// `/proc/PID/stat`), so a recycled pid is never taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    /// The pid.
    pub pid: i32,
    /// Its start time, in clock ticks after boot.
    pub start: u64,
}

impl Proc {
    /// The record of running process `pid`, if it runs.
    pub fn of(pid: i32) -> Option<Proc> {
        start_time(pid).map(|start| Proc { pid, start })
    }

    /// True while the process runs (not a zombie, same start time).
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// Start time of `pid` from `/proc/PID/stat`; `None` when it is gone or
/// a zombie.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// Field 22 (starttime) of a `/proc/PID/stat` line, `None` for a zombie.
pub fn parse_stat(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state).
    if fields.first().is_some_and(|s| *s == "Z" || *s == "X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// A running machine's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineState {
    /// The monitor (`linux`) process.
    pub proc: Proc,
    /// `ethN -> domain` (or `tap:HOSTIP`).
    pub ifaces: BTreeMap<String, String>,
}

/// A running switch's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchState {
    /// The `uml_switch` process.
    pub proc: Proc,
    /// A hub.
    pub hub: bool,
    /// Its capture relay (`uml_lab capture-relay`), when it has one.
    #[serde(default)]
    pub relay: Option<Proc>,
}

/// `lab.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The lab directory.
    pub lab: PathBuf,
    /// Machines started and not yet stopped.
    pub machines: BTreeMap<String, MachineState>,
    /// Switches started and not yet stopped.
    pub switches: BTreeMap<String, SwitchState>,
}

impl State {
    /// Reads `lab.json` (empty when there is none).
    pub fn load(layout: &Layout) -> Result<State> {
        let path = layout.state_file();
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Invalid(format!("{}: corrupt state: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(Error::io(&path, "cannot read", e)),
        }
    }

    /// Writes `lab.json` atomically.
    pub fn save(&self, layout: &Layout) -> Result<()> {
        let path = layout.state_file();
        let tmp = layout.dir.join("lab.json.tmp");
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Invalid(format!("cannot encode the state: {e}")))?;
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, "cannot write", e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, "cannot write", e))
    }
}

/// The lab's lock, held while a command changes the lab (released when
/// dropped, or when the process dies).
pub struct Lock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

impl Lock {
    /// Takes the lock, waiting for another `uml_lab` to finish.
    pub fn take(layout: &Layout) -> Result<Lock> {
        let path = layout.lock_file();
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, "cannot open", e))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map(Lock)
            .map_err(|(_, e)| Error::io(&path, "cannot lock", e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_and_zombies_count_as_gone() {
        let line = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 10";
        assert_eq!(parse_stat(line), Some(12345));
        let z = line.replace(") S ", ") Z ");
        assert_eq!(parse_stat(&z), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = Proc::of(std::process::id() as i32).unwrap();
        assert!(me.alive());
        assert!(!Proc {
            start: me.start + 1,
            ..me
        }
        .alive());
    }

    #[test]
    fn a_long_state_directory_is_refused() {
        assert!(Layout::new(Path::new("/s")).check_lengths().is_ok());
        let long = Layout::new(&Path::new("/").join("d".repeat(80)));
        assert!(long
            .check_lengths()
            .unwrap_err()
            .to_string()
            .contains("too long"));
    }
}
