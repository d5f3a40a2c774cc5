//! The guest's user and group ids: guest 0 is the invoking user, and where
//! `newuidmap`/`newgidmap` and a subordinate range exist, guest 1..65535
//! map onto that range (issue 8, "Processes"). The map is written from a
//! helper process forked before the monitor unshares, because only a
//! process in the parent namespace may write a map wider than one id.

use crate::sys::guest::fork_helper;
use nix::unistd::Pid;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The most subordinate ids mapped (guest ids 1..=65535).
pub const SUB_COUNT: u32 = 65535;

/// A subordinate id range from /etc/subuid or /etc/subgid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRange {
    /// First host id.
    pub start: u32,
    /// How many.
    pub count: u32,
}

/// The first range for `name` or `id` in a subuid/subgid file's text.
pub fn find_range(text: &str, name: &str, id: u32) -> Option<SubRange> {
    text.lines().take(100_000).find_map(|line| {
        let mut f = line.trim().splitn(3, ':');
        let who = f.next()?;
        let start = f.next()?.trim().parse().ok()?;
        let count: u32 = f.next()?.trim().parse().ok()?;
        let id_text = id.to_string();
        ((who == name || who == id_text) && count > 0).then_some(SubRange {
            start,
            count: count.min(SUB_COUNT),
        })
    })
}

/// How the ids ended up mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// Host root: the identity over the whole range.
    Identity,
    /// `0 UID 1` plus `1 SUBUID COUNT` (and the same for groups).
    Full {
        /// Subordinate user ids.
        uids: SubRange,
        /// Subordinate group ids.
        gids: SubRange,
    },
    /// Only guest 0 is mapped.
    RootOnly,
}

impl Mapping {
    /// The boot-log line.
    pub fn describe(&self, uid: u32) -> String {
        match self {
            Mapping::Identity => "User namespace: guest ids are the host's (run by root)".into(),
            Mapping::Full { uids, .. } => format!(
                "User namespace: guest uid 0 is host uid {uid}, guest uids 1-{} are host uids {}-{}",
                uids.count,
                uids.start,
                uids.start + (uids.count - 1)
            ),
            Mapping::RootOnly => format!(
                "User namespace: only guest uid 0 is mapped (host uid {uid}): no newuidmap or no subordinate ids; chown and setgroups will fail"
            ),
        }
    }
}

fn in_path(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// What the helper will try: a plan made before the fork.
#[derive(Debug, Clone)]
pub struct Plan {
    uid: u32,
    gid: u32,
    wide: Option<(PathBuf, PathBuf, SubRange, SubRange)>,
}

/// Decides the mapping attempt for the invoking user.
pub fn plan() -> Plan {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default();
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let wide = match (in_path("newuidmap"), in_path("newgidmap")) {
        (Some(u), Some(g)) if uid != 0 => {
            let uids = find_range(&read("/etc/subuid"), &name, uid);
            let gids = find_range(&read("/etc/subgid"), &name, gid);
            uids.zip(gids).map(|(a, b)| (u, g, a, b))
        }
        _ => None,
    };
    Plan { uid, gid, wide }
}

/// A forked helper waiting to write the monitor's maps.
pub struct Helper {
    pid: Pid,
    go: OwnedFd,
    plan: Plan,
}

/// Forks the helper. Call while the process is single-threaded, before
/// unsharing the user namespace.
pub fn start(plan: Plan) -> io::Result<Helper> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let parent = nix::unistd::getpid();
    let p = plan.clone();
    let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
    let pid = fork_helper(|| {
        // The child's copy of the write end must go, so that a monitor
        // that dies makes the read below end.
        let _ = nix::unistd::close(wfd);
        let mut byte = [0u8; 1];
        match nix::unistd::read(rfd, &mut byte) {
            Ok(1) => helper_main(parent, &p),
            _ => 2,
        }
    })?;
    drop(r);
    Ok(Helper { pid, go: w, plan })
}

fn write_file(path: &Path, text: &str) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .is_ok()
}

/// Exit 0: identity map written; 3: wide map written; 1: nothing done.
fn helper_main(parent: Pid, plan: &Plan) -> i32 {
    let proc = PathBuf::from(format!("/proc/{parent}"));
    if plan.uid == 0 {
        let ok = write_file(&proc.join("uid_map"), "0 0 4294967295\n")
            && write_file(&proc.join("gid_map"), "0 0 4294967295\n");
        return if ok { 0 } else { 1 };
    }
    let Some((newuidmap, newgidmap, uids, gids)) = &plan.wide else {
        return 1;
    };
    let run = |prog: &Path, own: u32, r: &SubRange| {
        Command::new(prog)
            .arg(parent.to_string())
            .args([
                "0",
                &own.to_string(),
                "1",
                "1",
                &r.start.to_string(),
                &r.count.to_string(),
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if run(newuidmap, plan.uid, uids) && run(newgidmap, plan.gid, gids) {
        3
    } else {
        1
    }
}

impl Helper {
    /// Lets the helper write the maps (after the unshare), waits for it,
    /// and writes the one-id map itself when the helper could not.
    pub fn finish(self) -> io::Result<Mapping> {
        let mut f = std::fs::File::from(self.go);
        let _ = f.write_all(b"g");
        drop(f);
        let status = nix::sys::wait::waitpid(self.pid, None)?;
        let code = match status {
            nix::sys::wait::WaitStatus::Exited(_, c) => c,
            _ => 1,
        };
        match (code, &self.plan.wide) {
            (0, _) => return Ok(Mapping::Identity),
            (3, Some((_, _, uids, gids))) => {
                return Ok(Mapping::Full {
                    uids: *uids,
                    gids: *gids,
                })
            }
            _ => {}
        }
        let own = |p: &str, text: String| -> io::Result<()> {
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)?
                .write_all(text.as_bytes())
        };
        own("/proc/self/setgroups", "deny".into())?;
        own("/proc/self/uid_map", format!("0 {} 1\n", self.plan.uid))?;
        own("/proc/self/gid_map", format!("0 {} 1\n", self.plan.gid))?;
        Ok(Mapping::RootOnly)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_are_found_by_name_or_id_and_capped() {
        let text = "alice:100000:65536\n1001:200000:10\nbad line\nbob:x:1\n";
        assert_eq!(
            find_range(text, "alice", 1000),
            Some(SubRange {
                start: 100000,
                count: 65535
            })
        );
        assert_eq!(
            find_range(text, "carol", 1001),
            Some(SubRange {
                start: 200000,
                count: 10
            })
        );
        assert_eq!(find_range(text, "bob", 5), None);
    }

    #[test]
    fn the_boot_line_says_when_only_root_is_mapped() {
        assert!(Mapping::RootOnly
            .describe(1000)
            .contains("only guest uid 0"));
        let full = Mapping::Full {
            uids: SubRange {
                start: 100000,
                count: 65535,
            },
            gids: SubRange {
                start: 100000,
                count: 65535,
            },
        };
        assert!(full.describe(1000).contains("host uids 100000-165534"));
    }
}
