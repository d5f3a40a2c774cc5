//! The root's mount flag and the journaling writer behind it.
//!
//! The root's writer is open whenever the disk is writable; whether the
//! guest may write is the host kernel's read-only flag on the FUSE
//! superblock (MS_RDONLY with `ro`, the default). The guest's
//! `mount -o remount,rw /` (what distributions' boot scripts run) lifts it
//! and `remount,ro` sets it again; a FUSE server is never told of either,
//! so a thread here reads the flag from the monitor's own mount table and
//! tells the writer, which keeps the superblock as the kernel would
//! (`ext3::write` mount accounting): a remount read-write counts a mount,
//! a remount read-only marks the filesystem clean. The same thread commits
//! the journal every five seconds (ext3's commit interval).
//!
//! ```text
//!   guest: mount -o remount,rw /  ──(held: commit)──> host: SB_RDONLY off
//!   monitor "jbd2" thread: /proc/self/mountinfo says rw -> writer.remount(rw)
//! ```
//!
//! A change reaching the writer before the thread notices is counted as
//! the mount too (the writer marks itself in use at its first commit).
#![forbid(unsafe_code)]

use super::RootWriter;
use crate::fs::InodeFs;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the journal is committed while the guest is idle (ext3's
/// default commit interval).
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(5);
/// How often the mount flag is read.
const POLL: Duration = Duration::from_millis(500);

/// Whether the superblock mounted at `mount_point` is read-only, from the
/// text of `/proc/self/mountinfo` (proc(5): the super options follow the
/// filesystem type and source after the ` - ` separator; the mount's own
/// options, field 6, may add `ro` to one mount only).
pub fn superblock_read_only(mountinfo: &str, mount_point: &str) -> Option<bool> {
    // The last mount on a path is the one seen there.
    crate::sys::mountinfo::parse(mountinfo)
        .iter()
        .rev()
        .filter(|m| m.point.as_os_str() == mount_point)
        .find_map(crate::sys::mountinfo::Mount::read_only)
}

/// Starts the thread that commits `fs` every [`COMMIT_INTERVAL`] and
/// follows the guest's remounts of the root mounted at `mount_point`
/// (starting out `read_only`).
pub fn follow(
    fs: Arc<dyn InodeFs>,
    writer: Option<RootWriter>,
    mount_point: String,
    read_only: bool,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("jbd2".into())
        .spawn(move || {
            let mut last_commit = Instant::now();
            let mut was_read_only = read_only;
            loop {
                std::thread::sleep(POLL);
                if let Some(w) = &writer {
                    let now = std::fs::read_to_string("/proc/self/mountinfo")
                        .ok()
                        .and_then(|t| superblock_read_only(&t, &mount_point));
                    if let Some(ro) = now.filter(|ro| *ro != was_read_only) {
                        was_read_only = ro;
                        let _ = w.remount(ro);
                    }
                }
                if last_commit.elapsed() >= COMMIT_INTERVAL {
                    last_commit = Instant::now();
                    let _ = fs.sync_fs();
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
95 94 0:52 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw,mode=755
96 95 0:53 / /tmp/root ro,relatime - fuse.ext3 /dev/ubda ro,user_id=0,group_id=0,default_permissions,allow_other
";

    #[test]
    fn the_superblock_options_not_the_mounts_say_whether_the_root_is_read_only() {
        assert_eq!(superblock_read_only(INFO, "/tmp/root"), Some(true));
        let rw = INFO.replace("/dev/ubda ro,", "/dev/ubda rw,");
        // The monitor's own mount keeps its `ro`; the guest lifted the
        // superblock's.
        assert_eq!(superblock_read_only(&rw, "/tmp/root"), Some(false));
        assert_eq!(superblock_read_only(INFO, "/tmp"), Some(false));
        assert_eq!(superblock_read_only(INFO, "/nowhere"), None);
        assert_eq!(superblock_read_only("garbage", "/tmp/root"), None);
    }
}
