//! The guest's own cgroup tree (issue 13, defect 5): systemd as init
//! wants a writable cgroup v2 hierarchy at `/sys/fs/cgroup`, as the real
//! kernel gives it. Here the guest's programs run on the host's kernel,
//! so the guest can have only a subtree of the host's hierarchy that the
//! invoking user may write: one delegated to the user, as the user's
//! systemd manager delegates one to a rootless container.
//!
//! ```text
//!   host: D (delegated v2) / linux-PID-guest / root      (super::cgroup)
//!                                              │
//!   init: writes 0 to root/cgroup.procs, unshare(CLONE_NEWCGROUP):
//!         root is now its "/"; after sysfs, a cgroup2 mount on
//!         /sys/fs/cgroup shows root and what the guest makes below it
//! ```
//!
//! With no such subtree the guest shares the host's cgroup namespace
//! and has no `/sys/fs/cgroup` (sysvinit and busybox guests do not care);
//! one boot line names what is missing and why systemd will not start.
//!
//! Init's environment gets `container=umlkit` (unless the command line
//! sets `container=`), the container manager's mark that systemd reads
//! (its CONTAINER_INTERFACE). It changes nothing systemd would otherwise
//! do here: from version 244 on, systemd takes a cgroup namespace for a
//! container ("container-other") anyway, and the user namespace already
//! rules out what containers skip (module loading, clock setting, raw
//! I/O). What it changes is the failure: where systemd cannot start
//! (no delegated subtree) it exits, and the guest ends with the kernel's
//! "Attempted to kill init!" panic, instead of freezing for good behind
//! a console in raw mode. Other inits ignore the variable.

use super::cgroup::{CgroupMount, ProcCgroup};
use super::limits::Limits;
use crate::sys::guest::{self, GuestPlan};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Why the monitor's cgroup v2 directory cannot be found.
pub fn no_v2_dir(pc: &ProcCgroup, mounts: &[CgroupMount]) -> NoV2Dir {
    match (&pc.unified, mounts.iter().any(|m| m.fstype == "cgroup2")) {
        (_, false) => NoV2Dir::NoMount,
        (None, true) => NoV2Dir::NoPath,
        (Some(p), true) => NoV2Dir::NotUnderMount(p.clone()),
    }
}

/// Why this process has no cgroup v2 directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoV2Dir {
    /// No cgroup2 filesystem is mounted.
    #[error("no cgroup2 hierarchy is mounted on the host")]
    NoMount,
    /// `/proc/self/cgroup` has no `0::` line.
    #[error("this process has no cgroup v2 path")]
    NoPath,
    /// The `0::` path lies under no cgroup2 mount.
    #[error("this process's cgroup v2 path {0} is not under a cgroup2 mount")]
    NotUnderMount(String),
}

/// The boot line: where the guest's cgroup tree is, or what is missing.
pub fn describe(namespace: Result<&Path, impl std::fmt::Display>) -> String {
    match namespace {
        Ok(dir) => format!(
            "cgroup: the guest's /sys/fs/cgroup is cgroup v2 {} (a cgroup namespace of its own)",
            dir.display()
        ),
        Err(why) => format!(
            "cgroup: no delegated cgroup v2 subtree ({why}): the guest gets no /sys/fs/cgroup, \
             and systemd will not boot (start linux in a cgroup v2 directory this user owns; \
             see linux(1), CGROUPS)"
        ),
    }
}

/// Init's `container=` entry.
pub const CONTAINER: &str = "container=umlkit";

/// Gives the guest's init its cgroup namespace and the cgroup2 mount on
/// `/sys/fs/cgroup` where it has a tree of its own, and [`CONTAINER`].
pub fn apply(plan: &mut GuestPlan, limits: &Limits, rootdir: &Path) -> io::Result<()> {
    if !plan
        .env
        .iter()
        .any(|e| e.as_bytes().starts_with(b"container="))
    {
        plan.env.push(guest::cstring(CONTAINER.as_bytes())?);
    }
    let own = limits.namespace().is_ok();
    plan.cgroup_ns = own;
    plan.cgroup_dir = match (own, &plan.sys_dir) {
        (true, Some(_)) => Some(guest::cstring(
            rootdir.join("sys/fs/cgroup").as_os_str().as_bytes(),
        )?),
        _ => None,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::guest::cgroup::parse_mountinfo;

    #[test]
    fn the_boot_line_names_the_guests_tree_or_what_is_missing() {
        assert_eq!(
            describe(Ok::<_, &str>(Path::new("/cg/u/linux-7-guest/root"))),
            "cgroup: the guest's /sys/fs/cgroup is cgroup v2 /cg/u/linux-7-guest/root \
             (a cgroup namespace of its own)"
        );
        let line = describe(Err("/sys/fs/cgroup/unified: not writable"));
        assert!(
            line.starts_with(
                "cgroup: no delegated cgroup v2 subtree (/sys/fs/cgroup/unified: not writable): \
                 the guest gets no /sys/fs/cgroup, and systemd will not boot"
            ),
            "{line}"
        );
    }

    #[test]
    fn a_missing_v2_directory_is_explained() {
        let v1_only = parse_mountinfo("1 2 0:3 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n");
        let pc = ProcCgroup::parse("8:pids:/\n");
        assert_eq!(
            no_v2_dir(&pc, &v1_only).to_string(),
            "no cgroup2 hierarchy is mounted on the host"
        );
        let v2 = parse_mountinfo("1 2 0:3 /a /cg rw - cgroup2 cgroup2 rw\n");
        assert_eq!(
            no_v2_dir(&pc, &v2).to_string(),
            "this process has no cgroup v2 path"
        );
        let pc = ProcCgroup::parse("0::/b\n");
        assert_eq!(
            no_v2_dir(&pc, &v2).to_string(),
            "this process's cgroup v2 path /b is not under a cgroup2 mount"
        );
    }
}
