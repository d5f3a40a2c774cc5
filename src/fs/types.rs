//! The values the inode-level interface passes around: file types, time
//! stamps, `stat` and `statfs` results. They describe a POSIX file, not
//! an on-disk format; each filesystem converts its records into them.

/// The kind of file an inode describes (the type bits of `st_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    /// Regular file.
    Regular,
    /// Directory.
    Directory,
    /// Symbolic link.
    Symlink,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
}

impl FileType {
    /// The type of a mode's `S_IFMT` bits, `None` for an invalid type.
    pub fn from_mode(mode: u16) -> Option<FileType> {
        Some(match mode & 0xF000 {
            0x8000 => FileType::Regular,
            0x4000 => FileType::Directory,
            0xA000 => FileType::Symlink,
            0x2000 => FileType::CharDevice,
            0x6000 => FileType::BlockDevice,
            0x1000 => FileType::Fifo,
            0xC000 => FileType::Socket,
            _ => return None,
        })
    }

    /// The `S_IFMT` bits of this type.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => 0o100000,
            FileType::Directory => 0o040000,
            FileType::Symlink => 0o120000,
            FileType::CharDevice => 0o020000,
            FileType::BlockDevice => 0o060000,
            FileType::Fifo => 0o010000,
            FileType::Socket => 0o140000,
        }
    }

    /// The `ls -l` letter.
    pub fn letter(self) -> char {
        match self {
            FileType::Regular => '-',
            FileType::Directory => 'd',
            FileType::Symlink => 'l',
            FileType::CharDevice => 'c',
            FileType::BlockDevice => 'b',
            FileType::Fifo => 'p',
            FileType::Socket => 's',
        }
    }
}

/// A time stamp: seconds since the epoch and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Timestamp {
    /// Seconds since 1970.
    pub sec: i64,
    /// Nanoseconds.
    pub nsec: u32,
}

/// What `stat` tells about an inode.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Metadata {
    /// Inode number.
    pub ino: u32,
    /// File type.
    pub file_type: FileType,
    /// Permission bits including setuid, setgid and sticky.
    pub perm: u16,
    /// Hard link count.
    pub nlink: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Allocated 512-byte sectors.
    pub blocks: u64,
    /// Access time.
    pub atime: Timestamp,
    /// Modification time.
    pub mtime: Timestamp,
    /// Inode change time.
    pub ctime: Timestamp,
    /// Creation time, if recorded.
    pub crtime: Option<Timestamp>,
    /// Device number (major, minor) of device nodes, else (0, 0).
    pub rdev: (u32, u32),
    /// Inode flags (`i_flags` on ext2/3/4).
    pub flags: u32,
    /// Inode generation (`i_generation`).
    pub generation: u32,
}

impl Metadata {
    /// The full `st_mode`.
    pub fn mode(&self) -> u32 {
        self.file_type.mode_bits() | u32::from(self.perm)
    }
}

/// Filesystem totals, as `statfs(2)` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatFs {
    /// Block size.
    pub block_size: u32,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub free_blocks: u64,
    /// Free blocks for unprivileged users.
    pub available_blocks: u64,
    /// Total inodes.
    pub inodes: u64,
    /// Free inodes.
    pub free_inodes: u64,
    /// Longest name.
    pub name_max: u32,
}
