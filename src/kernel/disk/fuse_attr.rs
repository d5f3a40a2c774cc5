//! Conversions between the filesystem's types (`crate::fs`) and FUSE's: inode
//! numbers (FUSE's root is 1, ext3's is 2), attributes, times, device
//! numbers and errno values. Pure.

use crate::fs::{self, FileType as VFileType, Metadata, SetTime, Timestamp};
use fuser::{Errno, FileAttr, FileType, INodeNo, TimeOrNow};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The filesystem's root inode.
const FS_ROOT: fs::Ino = 2;

/// FUSE inode to filesystem inode.
pub fn to_fs(ino: INodeNo) -> fs::Ino {
    match ino.0 {
        1 => FS_ROOT,
        n => fs::Ino::try_from(n).unwrap_or(0),
    }
}

/// Filesystem inode to FUSE inode.
pub fn to_fuse(ino: fs::Ino) -> INodeNo {
    INodeNo(if ino == FS_ROOT { 1 } else { u64::from(ino) })
}

/// The errno a guest sees for a filesystem error: the one place where
/// the interface's error kinds become errno values.
pub(crate) fn errno(e: fs::Error) -> Errno {
    use fs::Error as E;
    Errno::from_i32(match e {
        E::NotFound => libc::ENOENT,
        E::Exists => libc::EEXIST,
        E::NotEmpty => libc::ENOTEMPTY,
        E::NotADirectory => libc::ENOTDIR,
        E::IsADirectory => libc::EISDIR,
        E::NameTooLong => libc::ENAMETOOLONG,
        E::TooManyLinks => libc::EMLINK,
        E::NoSpace => libc::ENOSPC,
        E::FileTooLarge => libc::EFBIG,
        E::InvalidArgument => libc::EINVAL,
        E::NoAttribute => libc::ENODATA,
        E::OutOfRange => libc::ERANGE,
        E::ValueTooLarge => libc::E2BIG,
        E::ReadOnly => libc::EROFS,
        E::Unsupported => libc::EOPNOTSUPP,
        E::StaleInode => libc::ESTALE,
        E::SymlinkLoop => libc::ELOOP,
        E::NotPermitted => libc::EPERM,
        E::Corrupt(_) | E::Io(_) => libc::EIO,
    })
}

pub(crate) fn time(t: Timestamp) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(t.nsec.min(999_999_999)));
    match u64::try_from(t.sec) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s) + nanos,
        Err(_) => UNIX_EPOCH - Duration::from_secs(t.sec.unsigned_abs()) + nanos,
    }
}

pub(crate) fn set_time(t: Option<TimeOrNow>) -> Option<SetTime> {
    t.map(|t| match t {
        TimeOrNow::Now => SetTime::Now,
        TimeOrNow::SpecificTime(s) => SetTime::At(match s.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nsec: d.subsec_nanos(),
            },
            Err(e) => Timestamp {
                sec: -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
                nsec: 0,
            },
        }),
    })
}

pub(crate) fn kind(t: VFileType) -> FileType {
    match t {
        VFileType::Regular => FileType::RegularFile,
        VFileType::Directory => FileType::Directory,
        VFileType::Symlink => FileType::Symlink,
        VFileType::CharDevice => FileType::CharDevice,
        VFileType::BlockDevice => FileType::BlockDevice,
        VFileType::Fifo => FileType::NamedPipe,
        VFileType::Socket => FileType::Socket,
    }
}

/// The Linux `dev_t` encoding of (major, minor).
pub fn makedev(major: u32, minor: u32) -> u32 {
    ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12)
}

/// FUSE attributes of filesystem metadata.
pub fn attr(m: &Metadata) -> FileAttr {
    FileAttr {
        ino: to_fuse(m.ino),
        size: m.size,
        blocks: m.blocks,
        atime: time(m.atime),
        mtime: time(m.mtime),
        ctime: time(m.ctime),
        crtime: time(m.crtime.unwrap_or(m.ctime)),
        kind: kind(m.file_type),
        perm: m.perm,
        nlink: u32::from(m.nlink),
        uid: m.uid,
        gid: m.gid,
        rdev: makedev(m.rdev.0, m.rdev.1),
        blksize: 4096,
        flags: 0,
    }
}

/// The attributes sent with a negative entry (only the node id 0 counts).
pub(crate) fn negative_attr() -> FileAttr {
    FileAttr {
        ino: INodeNo(0),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuse_root_is_the_filesystems_inode_2() {
        assert_eq!(to_fs(INodeNo(1)), 2);
        assert_eq!(to_fuse(2), INodeNo(1));
        assert_eq!(to_fs(to_fuse(12)), 12);
    }

    #[test]
    fn device_numbers_use_the_linux_encoding() {
        assert_eq!(makedev(1, 3), 0x103);
        assert_eq!(
            makedev(136, 300),
            (136 << 8) | (300 & 0xff) | ((300 & !0xff) << 12)
        );
    }

    #[test]
    fn timestamps_before_1970_stay_before_1970() {
        let t = time(Timestamp { sec: -10, nsec: 0 });
        assert!(t < UNIX_EPOCH);
    }
}
