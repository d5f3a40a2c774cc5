//! The monitor's side of hostfs: the host's tree kept where the monitor
//! can reach it, and the answer to a guest's held `mount -t hostfs`.
//!
//! The monitor's mount namespace covers the host's `/tmp` with its staging
//! tmpfs, so before that mount [`capture`] cuts a copy of the host's whole
//! tree, and [`HostFs::new`] attaches it under the staging directory (a
//! tree can be copied again only from a namespace it is attached in). The
//! guest never sees it: its init pivots away from the monitor's tree.
#![forbid(unsafe_code)]

use super::{request_path, tree_flags, Config, FSTYPE};
use crate::kernel::disk::durable::Caller;
use crate::sys::fs::{open_beneath, Beneath};
use crate::sys::mount;
use crate::sys::seccomp::{Held, Listener};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A detached copy of the host's mount tree, taken in the monitor's fresh
/// mount namespace before it mounts anything of its own.
pub fn capture() -> io::Result<OwnedFd> {
    let root = File::open("/")?;
    mount::clone_tree(root.as_fd())
}

/// What hostfs mounts are made from.
pub struct HostFs {
    /// The host's `/` (`O_PATH`), or why it is not reachable.
    host: Result<OwnedFd, i32>,
    /// The `hostfs=` option, its root made absolute.
    config: Config,
}

fn errno(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

impl HostFs {
    /// Attaches the `captured` host tree on `at` (made here) and keeps
    /// it for the mounts `config` allows. A relative `hostfs=` root is
    /// taken from `cwd`, the monitor's directory at start (as UML's
    /// process resolves it).
    pub fn new(captured: io::Result<OwnedFd>, at: &Path, mut config: Config, cwd: &Path) -> Self {
        use std::os::unix::fs::OpenOptionsExt;
        let host = captured.and_then(|tree| {
            std::fs::create_dir(at)?;
            let c = CString::new(at.as_os_str().as_bytes())
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
            mount::attach_tree(tree.as_fd(), &c)?;
            let dir = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                .open(at)?;
            Ok(OwnedFd::from(dir))
        });
        if let Some(root) = config.root.take() {
            config.root = Some(if root.is_absolute() {
                root
            } else {
                cwd.join(root)
            });
        }
        HostFs {
            host: host.map_err(errno),
            config,
        }
    }

    /// The boot-log line when hostfs cannot work.
    pub fn problem(&self) -> Option<String> {
        self.host.as_ref().err().map(|e| {
            format!(
                "hostfs: the host's directories are not reachable: {}",
                io::Error::from_raw_os_error(*e)
            )
        })
    }

    /// Answers a held `mount(2)` if its type is `hostfs`: `None` for
    /// other mounts (the caller lets them run).
    pub fn handle(&self, listener: &Listener, held: &Held) -> Option<Result<(), i32>> {
        let [_, target, fstype, flags, data, _] = held.args;
        if fstype == 0 {
            return None;
        }
        let fstype = listener.read_string_from_caller(held, fstype, 64).ok()?;
        (fstype == FSTYPE).then(|| self.mount(listener, held, target, flags, data))
    }

    /// Opens the directory a request names, beneath the `hostfs=` root
    /// (resolved as the host would), or anywhere without one. `EACCES`
    /// for a path that would leave the root.
    fn open_dir(&self, host: &OwnedFd, rel: &CStr) -> Result<OwnedFd, i32> {
        let opened = match &self.config.root {
            None => open_beneath(host.as_fd(), rel, Beneath::InRoot),
            Some(root) => {
                let root_rel = request_path(Some(root.as_os_str().as_bytes()))?;
                open_beneath(host.as_fd(), &root_rel, Beneath::InRoot)
                    .and_then(|r| open_beneath(r.as_fd(), rel, Beneath::Under))
            }
        };
        let dir = opened.map_err(|e| match errno(e) {
            libc::EXDEV => libc::EACCES,
            e => e,
        })?;
        let st = nix::sys::stat::fstat(dir.as_raw_fd()).map_err(|e| e as i32)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(libc::ENOTDIR);
        }
        Ok(dir)
    }

    fn mount(
        &self,
        listener: &Listener,
        held: &Held,
        target: u64,
        flags: u64,
        data: u64,
    ) -> Result<(), i32> {
        let host = self.host.as_ref().map_err(|_| libc::ENODEV)?;
        let set = tree_flags(flags).ok_or(libc::EINVAL)?;
        let data = match data {
            0 => None,
            a => Some(
                listener
                    .read_string_from_caller(held, a, 4096)
                    .map_err(errno)?,
            ),
        };
        let rel = request_path(data.as_deref())?;
        let target = listener
            .read_string_from_caller(held, target, 4096)
            .map_err(errno)?;
        let caller = Caller::of(held.pid).map_err(errno)?;
        let target = caller.path(target).ok_or(libc::ENOENT)?;
        let target = CString::new(target).map_err(|_| libc::EINVAL)?;
        // Still held: the descriptors and the status are the caller's.
        if !listener.still_held(held.id) {
            return Err(libc::ESRCH);
        }
        // The guest's root, as in UML (hostfs is no filesystem a user
        // namespace of the guest's own may mount).
        if !caller.is_guest_root() {
            return Err(libc::EPERM);
        }
        let dir = self.open_dir(host, &rel)?;
        let tree = mount::clone_tree(dir.as_fd()).map_err(errno)?;
        mount::set_tree_flags(tree.as_fd(), set).map_err(errno)?;
        caller.run_inside("hostfs", move || mount::attach_tree(tree.as_fd(), &target))
    }
}

/// Where [`HostFs::new`] attaches the host's tree in the staging directory.
pub fn staging_path(stage: &Path) -> PathBuf {
    stage.join("host")
}
