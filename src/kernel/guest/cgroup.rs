//! The guest's cgroups: where the invoking user has a cgroup delegated,
//! a child of it holds every guest process under a memory and a task
//! limit (issue 12), and the guest's own cgroup tree hangs below it
//! (issue 13: systemd needs one; [`super::cgroupns`]).
//!
//! ```text
//!   /proc/self/cgroup + /proc/self/mountinfo (pure parsers below)
//!        │
//!        ├─ cgroup v2  D = the monitor's cgroup, writable (delegated):
//!        │               D/linux-PID        the monitor (no internal
//!        │                                  processes in D once its
//!        │                                  subtree_control is set)
//!        │               D/linux-PID-guest  memory.max, memory.swap.max,
//!        │                                  pids.max where D has those
//!        │                                  controllers; subtree_control
//!        │                                  hands them on
//!        │               D/linux-PID-guest/root
//!        │                                  init joins it; the root of
//!        │                                  the guest's cgroup namespace
//!        └─ cgroup v1  for each of memory, pids not served by v2: the
//!                      monitor's cgroup in that hierarchy, if writable:
//!                        D/linux-PID-guest  memory.limit_in_bytes (and
//!                                           memsw), pids.max
//!                        D/linux-PID-guest/root   init joins it
//! ```
//!
//! Everything is made before the monitor unshares its namespaces (plain
//! host credentials); the `cgroup.procs` files of the guest roots stay
//! open, and the guest's init writes `0` to each before it runs anything
//! ([`crate::sys::guest::GuestPlan::cgroup_procs`]). The groups, and
//! whatever the guest made below them, are removed when the monitor is
//! done with them ([`Drop`]).
//!
//! The guest cannot raise its limits: they are set one level above the
//! root of its cgroup namespace, which is all a cgroup filesystem it
//! mounts shows, and cgroup namespaces do not let a process move to a
//! cgroup outside its root. Without a v2 group of its own the guest
//! shares the host's cgroup namespace, whose owner is not its user
//! namespace, so it may not mount any cgroup filesystem.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A resource controller the guest is limited by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    /// Memory (and swap).
    Memory,
    /// Tasks (processes and threads).
    Pids,
}

impl Controller {
    /// Both, in the order they are reported.
    pub const ALL: [Controller; 2] = [Controller::Memory, Controller::Pids];

    /// The kernel's name of the controller.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
        }
    }
}

/// `/proc/self/cgroup`, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcCgroup {
    /// The unified (v2) path, from the `0::PATH` line.
    pub unified: Option<String>,
    /// The v1 lines: controllers and path.
    pub v1: Vec<(Vec<String>, String)>,
}

impl ProcCgroup {
    /// Parses the text of `/proc/PID/cgroup` (`ID:CONTROLLERS:PATH`).
    pub fn parse(text: &str) -> ProcCgroup {
        let mut out = ProcCgroup::default();
        for line in text.lines().take(1000) {
            let mut f = line.splitn(3, ':');
            let (Some(id), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if id == "0" && ctrls.is_empty() {
                out.unified = Some(path.to_string());
            } else if !ctrls.is_empty() {
                let list = ctrls.split(',').map(str::to_string).collect();
                out.v1.push((list, path.to_string()));
            }
        }
        out
    }

    /// The v1 path of the hierarchy that has `controller`.
    pub fn v1_path(&self, controller: &str) -> Option<&str> {
        self.v1
            .iter()
            .find(|(c, _)| c.iter().any(|n| n == controller))
            .map(|(_, p)| p.as_str())
    }
}

/// A cgroup filesystem mount, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// The cgroup path at the root of the mount.
    pub root: String,
    /// Where it is mounted.
    pub point: PathBuf,
    /// `cgroup2` or `cgroup`.
    pub fstype: String,
    /// The super block options (for v1, the controllers).
    pub options: Vec<String>,
}

/// The cgroup mounts in the text of `/proc/PID/mountinfo`.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    crate::sys::mountinfo::parse(text)
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .map(|m| CgroupMount {
            root: m.root,
            point: m.point,
            fstype: m.fstype,
            options: m.super_options,
        })
        .collect()
}

/// The host directory of cgroup `path` under `mount`, if the mount shows
/// it.
pub fn host_dir(mount: &CgroupMount, path: &str) -> Option<PathBuf> {
    let root = mount.root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    if !(rest.is_empty() || rest.starts_with('/')) || rest.split('/').any(|c| c == "..") {
        return None;
    }
    match rest.trim_start_matches('/') {
        "" => Some(mount.point.clone()),
        rel => Some(mount.point.join(rel)),
    }
}

/// The monitor's v2 cgroup directory.
pub fn v2_dir(pc: &ProcCgroup, mounts: &[CgroupMount]) -> Option<PathBuf> {
    let path = pc.unified.as_deref()?;
    mounts
        .iter()
        .filter(|m| m.fstype == "cgroup2")
        .find_map(|m| host_dir(m, path))
}

/// The monitor's cgroup directory in the v1 hierarchy of `controller`.
pub fn v1_dir(pc: &ProcCgroup, mounts: &[CgroupMount], controller: &str) -> Option<PathBuf> {
    let path = pc.v1_path(controller)?;
    mounts
        .iter()
        .filter(|m| m.fstype == "cgroup" && m.options.iter().any(|o| o == controller))
        .find_map(|m| host_dir(m, path))
}

/// The limits one guest group carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbers {
    /// Bytes of memory (swap included).
    pub memory: u64,
    /// `pids.max`; `None` writes `max`.
    pub pids: Option<u64>,
}

/// Writes a cgroup file; errors name the text and the file.
fn write_file(path: &Path, text: &str) -> io::Result<()> {
    let written = OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    written.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("write {text:?} to {}: {e}", path.display()),
        )
    })
}

/// Why a guest cgroup could not be made. Cloneable (the sources are
/// shared): one failure is reported for every controller it cost.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CgroupError {
    /// This user may not make cgroups in the delegated directory.
    #[error("{}: not writable", .0.display())]
    NotWritable(PathBuf),
    /// Making, opening or reading a cgroup file failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// `mkdir`, `open` or `read`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        source: Arc<io::Error>,
    },
    /// Writing a limit or control file failed (the message names the file
    /// and the text).
    #[error("{0}")]
    Write(#[source] Arc<io::Error>),
    /// A controller could not be enabled in the delegated cgroup.
    #[error("{source} (another process in {}?)", parent.display())]
    Enable {
        /// The delegated cgroup.
        parent: PathBuf,
        /// The write's error.
        source: Arc<io::Error>,
    },
}

fn ctx(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |e| CgroupError::Io {
        op,
        path,
        source: Arc::new(e),
    }
}

fn write_err(e: io::Error) -> CgroupError {
    CgroupError::Write(Arc::new(e))
}

/// True when this user may create cgroups in `dir` and move processes
/// into its `cgroup.procs`.
fn writable(dir: &Path) -> bool {
    use nix::unistd::{access, AccessFlags};
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK).is_ok()
        && access(&dir.join("cgroup.procs"), AccessFlags::W_OK).is_ok()
}

/// Removes an emptied cgroup, waiting a little for its last tasks to be
/// released (a dead pid namespace's tasks go away shortly after its init
/// has been reaped).
fn remove_dir(dir: &Path) {
    let start = Instant::now();
    while fs::remove_dir(dir).is_err() && dir.exists() {
        if start.elapsed() > Duration::from_secs(2) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes a cgroup and every cgroup below it, deepest first (bounded:
/// a guest may have made a deep tree).
fn remove_tree(dir: &Path) {
    fn walk(d: &Path, depth: u32, out: &mut Vec<PathBuf>) {
        if depth > 64 {
            return;
        }
        for e in fs::read_dir(d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), depth + 1, out);
                out.push(e.path());
            }
        }
    }
    let mut all = Vec::new();
    walk(dir, 0, &mut all);
    all.push(dir.to_path_buf());
    for d in all {
        remove_dir(&d);
    }
}

/// The child of a guest group that the guest's init joins: the root of
/// the guest's cgroup namespace, one level below its limits.
pub const GUEST_ROOT: &str = "root";

/// A child cgroup made for the guest (its limits), and in it the guest's
/// root ([`GUEST_ROOT`]) with its `cgroup.procs` open.
#[derive(Debug)]
pub struct GuestGroup {
    /// The directory.
    pub dir: PathBuf,
    /// `cgroup v1` or `cgroup v2`, for the boot line.
    pub version: u8,
    procs: File,
}

impl GuestGroup {
    /// `mkdir parent/name`, then `limits` writes the limit files, then
    /// `mkdir parent/name/root`.
    fn make(
        parent: &Path,
        name: &str,
        version: u8,
        limits: impl FnOnce(&Path) -> Result<(), CgroupError>,
    ) -> Result<GuestGroup, CgroupError> {
        let dir = parent.join(name);
        fs::create_dir(&dir).map_err(ctx(&dir, "mkdir"))?;
        let made = limits(&dir).and_then(|()| {
            let root = dir.join(GUEST_ROOT);
            fs::create_dir(&root).map_err(ctx(&root, "mkdir"))?;
            let p = root.join("cgroup.procs");
            OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(ctx(&p, "open"))
        });
        match made {
            Ok(procs) => Ok(GuestGroup {
                dir,
                version,
                procs,
            }),
            Err(e) => {
                let _ = fs::remove_dir(dir.join(GUEST_ROOT));
                let _ = fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// The open `cgroup.procs` of the guest's root (for its init).
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// The guest's root: the root of its cgroup namespace.
    pub fn root(&self) -> PathBuf {
        self.dir.join(GUEST_ROOT)
    }
}

impl Drop for GuestGroup {
    fn drop(&mut self) {
        remove_tree(&self.dir);
    }
}

/// A v1 guest group for `controller` in the monitor's (writable) cgroup
/// `parent`.
pub fn make_v1(
    parent: &Path,
    name: &str,
    controller: Controller,
    n: Numbers,
) -> Result<GuestGroup, CgroupError> {
    if !writable(parent) {
        return Err(CgroupError::NotWritable(parent.to_path_buf()));
    }
    GuestGroup::make(parent, name, 1, |dir| match controller {
        Controller::Memory => {
            let limit = dir.join("memory.limit_in_bytes");
            write_file(&limit, &n.memory.to_string()).map_err(write_err)?;
            // memsw (memory + swap) exists with swap accounting; it may not
            // be below limit_in_bytes, so it comes second.
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                write_file(&memsw, &n.memory.to_string()).map_err(write_err)?;
            }
            Ok(())
        }
        Controller::Pids => {
            write_file(&dir.join("pids.max"), &pids_text(n.pids)).map_err(write_err)
        }
    })
}

fn pids_text(p: Option<u64>) -> String {
    p.map_or_else(|| "max".to_string(), |v| v.to_string())
}

/// The v2 arrangement: the monitor moved into a leaf, controllers enabled
/// in the delegated cgroup, and the guest's group beside the leaf.
#[derive(Debug)]
pub struct V2 {
    parent: PathBuf,
    leaf: PathBuf,
    enabled: Vec<Controller>,
    /// The guest's group (removed first, by [`Drop`]).
    pub guest: Option<GuestGroup>,
}

/// The controllers of `dir/cgroup.controllers` among [`Controller::ALL`].
pub fn v2_controllers(dir: &Path) -> Vec<Controller> {
    let text = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let names: Vec<&str> = text.split_whitespace().collect();
    Controller::ALL
        .into_iter()
        .filter(|c| names.contains(&c.name()))
        .collect()
}

/// Sets up v2 limits for `wanted` (controllers `parent` has; none is
/// fine: the guest still gets a tree of its own) under the monitor's
/// cgroup `parent`, moving the monitor into `parent/leaf`. The guest
/// group's `subtree_control` hands `wanted` on to the guest's root.
pub fn make_v2(
    parent: &Path,
    leaf: &str,
    guest: &str,
    wanted: &[Controller],
    n: Numbers,
) -> Result<V2, CgroupError> {
    use nix::unistd::{access, AccessFlags};
    let subtree = parent.join("cgroup.subtree_control");
    if !writable(parent) || access(&subtree, AccessFlags::W_OK).is_err() {
        return Err(CgroupError::NotWritable(parent.to_path_buf()));
    }
    let leaf = parent.join(leaf);
    fs::create_dir(&leaf).map_err(ctx(&leaf, "mkdir"))?;
    let mut v2 = V2 {
        parent: parent.to_path_buf(),
        leaf,
        enabled: Vec::new(),
        guest: None,
    };
    // No internal processes: the monitor leaves `parent` first.
    write_file(&v2.leaf.join("cgroup.procs"), "0").map_err(write_err)?;
    let on = fs::read_to_string(&subtree).map_err(ctx(&subtree, "read"))?;
    for c in wanted {
        if !on.split_whitespace().any(|w| w == c.name()) {
            write_file(&subtree, &format!("+{}", c.name())).map_err(|e| CgroupError::Enable {
                parent: parent.to_path_buf(),
                source: Arc::new(e),
            })?;
            v2.enabled.push(*c);
        }
    }
    let g = GuestGroup::make(parent, guest, 2, |dir| {
        for c in wanted {
            match c {
                Controller::Memory => {
                    write_file(&dir.join("memory.max"), &n.memory.to_string())
                        .map_err(write_err)?;
                    let swap = dir.join("memory.swap.max");
                    if swap.exists() {
                        write_file(&swap, "0").map_err(write_err)?;
                    }
                }
                Controller::Pids => {
                    write_file(&dir.join("pids.max"), &pids_text(n.pids)).map_err(write_err)?
                }
            }
        }
        // The guest's own manager (systemd) may share these out further;
        // the limits above stay out of its reach.
        let sub = dir.join("cgroup.subtree_control");
        for c in wanted {
            write_file(&sub, &format!("+{}", c.name())).map_err(write_err)?;
        }
        Ok(())
    })?;
    v2.guest = Some(g);
    Ok(v2)
}

impl Drop for V2 {
    /// Best effort: the guest's group goes, the controllers this monitor
    /// enabled are disabled again, the monitor moves back and its leaf
    /// goes.
    fn drop(&mut self) {
        drop(self.guest.take());
        let subtree = self.parent.join("cgroup.subtree_control");
        for c in &self.enabled {
            let _ = write_file(&subtree, &format!("-{}", c.name()));
        }
        if write_file(&self.parent.join("cgroup.procs"), "0").is_ok() {
            remove_dir(&self.leaf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/176e\n2:cpu,cpuacct:/\n0::/\n";

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn proc_cgroup_separates_the_unified_line_from_v1_hierarchies() {
        let pc = ProcCgroup::parse(HYBRID);
        assert_eq!(pc.unified.as_deref(), Some("/"));
        assert_eq!(pc.v1_path("memory"), Some("/process_api/176e"));
        assert_eq!(pc.v1_path("pids"), Some("/"));
        assert_eq!(pc.v1_path("cpuacct"), Some("/"));
        assert_eq!(pc.v1_path("blkio"), None);
    }

    #[test]
    fn v1_directories_join_the_mount_point_and_the_path() {
        let pc = ProcCgroup::parse(HYBRID);
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m.len(), 3, "tmpfs is not a cgroup mount");
        assert_eq!(
            v1_dir(&pc, &m, "memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/176e"))
        );
        assert_eq!(
            v1_dir(&pc, &m, "pids"),
            Some(PathBuf::from("/sys/fs/cgroup/pids"))
        );
        assert_eq!(
            v2_dir(&pc, &m),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn a_pure_v2_host_gives_the_users_delegated_cgroup() {
        let pc = ProcCgroup::parse(
            "0::/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope\n",
        );
        let m = parse_mountinfo(
            "25 30 0:23 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        assert!(pc.v1.is_empty());
        assert_eq!(
            v2_dir(&pc, &m),
            Some(PathBuf::from(
                "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/run-r1.scope"
            ))
        );
        assert_eq!(v1_dir(&pc, &m, "memory"), None);
    }

    #[test]
    fn a_mount_rooted_below_the_path_or_beside_it_shows_nothing() {
        let m = CgroupMount {
            root: "/a/b".into(),
            point: "/cg".into(),
            fstype: "cgroup2".into(),
            options: vec![],
        };
        assert_eq!(host_dir(&m, "/a/b/c"), Some(PathBuf::from("/cg/c")));
        assert_eq!(host_dir(&m, "/a/b"), Some(PathBuf::from("/cg")));
        // Printed in the boot line: no trailing slash.
        let top = CgroupMount {
            root: "/".into(),
            ..m.clone()
        };
        assert_eq!(host_dir(&top, "/").unwrap().to_str(), Some("/cg"));
        assert_eq!(host_dir(&m, "/a"), None);
        assert_eq!(host_dir(&m, "/a/bc"), None);
        assert_eq!(host_dir(&m, "/a/b/../x"), None);
    }

    const N: Numbers = Numbers {
        memory: 32 << 20,
        pids: Some(128),
    };

    #[test]
    fn a_v1_parent_without_limit_files_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.procs"), "").unwrap();
        let e = make_v1(dir.path(), "linux-1-guest", Controller::Pids, N).unwrap_err();
        assert!(e.to_string().contains("pids.max"), "{e}");
        assert!(!dir.path().join("linux-1-guest").exists());
        let none = tempfile::tempdir().unwrap();
        let e = make_v1(none.path(), "g", Controller::Memory, N).unwrap_err();
        assert!(e.to_string().ends_with(": not writable"), "{e}");
    }

    #[test]
    fn a_failed_v2_setup_moves_the_monitor_back_and_removes_its_leaf() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["cgroup.procs", "cgroup.subtree_control"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        // A plain directory has no cgroup.procs: the move into the leaf
        // fails, and the undo writes "0" to the parent's.
        let e = make_v2(dir.path(), "linux-1", "linux-1-guest", &Controller::ALL, N).unwrap_err();
        assert!(e.to_string().contains("linux-1/cgroup.procs"), "{e}");
        assert!(!dir.path().join("linux-1").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cgroup.procs")).unwrap(),
            "0"
        );
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        let m = parse_mountinfo(
            "1 2 0:3 / /mnt/cg\\040v2 rw - cgroup2 none rw\nbad line\n1 2 0:3 / /x rw - ext4 /dev/sda rw\n",
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].point, PathBuf::from("/mnt/cg v2"));
    }
}
