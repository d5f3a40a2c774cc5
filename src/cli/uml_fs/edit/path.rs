//! The one path resolver of the editing commands, over any [`InodeFs`] (the
//! writer, so a command sees its own changes), with the kernel's rules of
//! path_resolution(7):
//!
//! - every component but the last must be a directory or a symbolic link
//!   that leads to one;
//! - a link is followed from the directory holding it, or from the image's
//!   root when its target is absolute;
//! - `..` is the parent of the directory actually reached (after links),
//!   `..` of the root is the root;
//! - at most [`MAX_SYMLINKS`] links are followed in one resolution, nested
//!   ones included, else `ELOOP`;
//! - the last component is followed or not as the caller says, as for the
//!   system calls (chmod(2) follows, unlink(2) and rename(2) do not); a
//!   trailing `/` always follows and asks for a directory.
//!
//! The answer is a [`Place`]: the directory holding the last name, the name,
//! and what it names if anything, so creating, replacing and removing use
//! the same resolution as changing an existing file.

use crate::ext3::path::MAX_SYMLINKS;
use crate::ext3::{FileType, Metadata, ROOT_INO};
use crate::fs::{Error as FsError, Ino, InodeFs};

/// Whether a symbolic link in the last component is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Last {
    /// Act on what the link leads to (chmod, chown, touch, write).
    Follow,
    /// Act on the link itself (rm, mv, ln's new name, mkdir).
    NoFollow,
}

/// Where a path leads.
#[derive(Debug, Clone)]
pub struct Place {
    /// The directory holding the last name.
    pub dir: Ino,
    /// The last name (`.` for the root itself).
    pub name: Vec<u8>,
    /// What the name is, when it exists.
    pub found: Option<Metadata>,
}

impl Place {
    /// The inode when it is a directory.
    pub fn as_dir(&self) -> Option<Ino> {
        self.found
            .as_ref()
            .filter(|m| m.file_type == FileType::Directory)
            .map(|m| m.ino)
    }

    /// True when the name is `.` or `..`, which no command may remove,
    /// rename or make.
    pub fn is_dot(&self) -> bool {
        self.name == b"." || self.name == b".."
    }
}

/// Resolves `path` (absolute, or relative to the root).
pub fn resolve(fs: &dyn InodeFs, path: &[u8], last: Last) -> Result<Place, FsError> {
    let mut hops = 0;
    resolve_at(fs, ROOT_INO, path, last, &mut hops)
}

/// Resolves `path` from the directory `start` (from the root when it is
/// absolute), counting followed links in `hops`.
pub fn resolve_at(
    fs: &dyn InodeFs,
    start: Ino,
    path: &[u8],
    last: Last,
    hops: &mut usize,
) -> Result<Place, FsError> {
    let mut dir = if path.first() == Some(&b'/') {
        ROOT_INO
    } else {
        start
    };
    let names: Vec<&[u8]> = path
        .split(|&c| c == b'/')
        .filter(|n| !n.is_empty())
        .collect();
    let Some((&name, walk)) = names.split_last() else {
        let found = fs.getattr(dir)?;
        return Ok(Place {
            dir,
            name: b".".to_vec(),
            found: Some(found),
        });
    };
    for &step in walk {
        dir = enter(fs, dir, step, hops)?;
    }
    let trailing = path.last() == Some(&b'/');
    let found = match fs.lookup(dir, name) {
        Ok(m) => Some(m),
        Err(FsError::NotFound) => None,
        Err(e) => return Err(e),
    };
    let place = match found {
        Some(m) if m.file_type == FileType::Symlink && (trailing || last == Last::Follow) => {
            let target = link_target(fs, m.ino, hops)?;
            resolve_at(fs, dir, &target, Last::Follow, hops)?
        }
        found => Place {
            dir,
            name: name.to_vec(),
            found,
        },
    };
    if trailing && place.found.is_some() && place.as_dir().is_none() {
        return Err(FsError::NotADirectory);
    }
    Ok(place)
}

/// The directory that `name` in `dir` leads to.
fn enter(fs: &dyn InodeFs, dir: Ino, name: &[u8], hops: &mut usize) -> Result<Ino, FsError> {
    let m = fs.lookup(dir, name)?;
    match m.file_type {
        FileType::Directory => Ok(m.ino),
        FileType::Symlink => {
            let target = link_target(fs, m.ino, hops)?;
            let place = resolve_at(fs, dir, &target, Last::Follow, hops)?;
            match place.found {
                None => Err(FsError::NotFound),
                Some(_) => place.as_dir().ok_or(FsError::NotADirectory),
            }
        }
        _ => Err(FsError::NotADirectory),
    }
}

/// The target of the link `ino`, counting one more hop.
fn link_target(fs: &dyn InodeFs, ino: Ino, hops: &mut usize) -> Result<Vec<u8>, FsError> {
    *hops += 1;
    if *hops > MAX_SYMLINKS {
        return Err(FsError::SymlinkLoop);
    }
    let target = fs.readlink(ino)?;
    // Linux: an empty link leads nowhere.
    if target.is_empty() {
        return Err(FsError::NotFound);
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext3::{StatFs, Timestamp};
    use crate::fs::{DirEntry, FsResult};
    use std::collections::HashMap;

    /// A node: its type, its entries (directories), its target (links).
    type Node = (FileType, Vec<(Vec<u8>, Ino)>, Vec<u8>);

    /// A tree in memory.
    struct Tree {
        nodes: HashMap<Ino, Node>,
    }

    impl Tree {
        /// `/usr/{bin/sh,lib}`, `bin -> usr/bin`, `sbin -> /usr/bin`,
        /// `loop -> loop`, `empty -> ""`, `file`.
        fn merged_usr() -> Tree {
            use FileType::*;
            let d = |e: &[(&str, Ino)], parent: Ino, me: Ino| {
                let mut v = vec![(b".".to_vec(), me), (b"..".to_vec(), parent)];
                v.extend(e.iter().map(|(n, i)| (n.as_bytes().to_vec(), *i)));
                (Directory, v, Vec::new())
            };
            let l = |t: &str| (Symlink, Vec::new(), t.as_bytes().to_vec());
            let mut nodes = HashMap::new();
            let root = [
                ("usr", 10),
                ("bin", 20),
                ("sbin", 21),
                ("loop", 22),
                ("empty", 23),
                ("file", 24),
            ];
            nodes.insert(ROOT_INO, d(&root, ROOT_INO, ROOT_INO));
            nodes.insert(10, d(&[("bin", 11), ("lib", 12)], ROOT_INO, 10));
            nodes.insert(11, d(&[("sh", 13)], 10, 11));
            nodes.insert(12, d(&[], 10, 12));
            nodes.insert(13, (Regular, Vec::new(), Vec::new()));
            nodes.insert(20, l("usr/bin"));
            nodes.insert(21, l("/usr/bin"));
            nodes.insert(22, l("loop"));
            nodes.insert(23, l(""));
            nodes.insert(24, (Regular, Vec::new(), Vec::new()));
            Tree { nodes }
        }

        fn md(&self, ino: Ino) -> FsResult<Metadata> {
            let t = Timestamp::default();
            let (file_type, _, _) = self.nodes.get(&ino).ok_or(FsError::NotFound)?;
            Ok(Metadata {
                ino,
                file_type: *file_type,
                perm: 0o755,
                nlink: 1,
                uid: 0,
                gid: 0,
                size: 0,
                blocks: 0,
                atime: t,
                mtime: t,
                ctime: t,
                crtime: None,
                rdev: (0, 0),
                flags: 0,
                generation: 0,
            })
        }
    }

    impl InodeFs for Tree {
        fn lookup(&self, parent: Ino, name: &[u8]) -> FsResult<Metadata> {
            let (t, entries, _) = self.nodes.get(&parent).ok_or(FsError::NotFound)?;
            if *t != FileType::Directory {
                return Err(FsError::NotADirectory);
            }
            let ino = entries
                .iter()
                .find(|e| e.0 == name)
                .ok_or(FsError::NotFound)?
                .1;
            self.md(ino)
        }
        fn getattr(&self, ino: Ino) -> FsResult<Metadata> {
            self.md(ino)
        }
        fn read(&self, _: Ino, _: u64, _: &mut [u8]) -> FsResult<usize> {
            Err(FsError::Unsupported)
        }
        fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
            Ok(self.nodes.get(&ino).ok_or(FsError::NotFound)?.2.clone())
        }
        fn readdir(&self, _: Ino, _: u64, _: &mut dyn FnMut(DirEntry) -> bool) -> FsResult<()> {
            Err(FsError::Unsupported)
        }
        fn statfs(&self) -> FsResult<StatFs> {
            Err(FsError::Unsupported)
        }
        fn listxattr(&self, _: Ino) -> FsResult<Vec<Vec<u8>>> {
            Err(FsError::Unsupported)
        }
        fn getxattr(&self, _: Ino, _: &[u8]) -> FsResult<Vec<u8>> {
            Err(FsError::Unsupported)
        }
    }

    fn ino(path: &str, last: Last) -> Result<Option<Ino>, FsError> {
        let p = resolve(&Tree::merged_usr(), path.as_bytes(), last)?;
        Ok(p.found.map(|m| m.ino))
    }

    #[test]
    fn relative_and_absolute_directory_links_are_followed_in_the_middle() {
        assert_eq!(ino("/bin/sh", Last::NoFollow), Ok(Some(13)));
        assert_eq!(ino("sbin/sh", Last::NoFollow), Ok(Some(13)));
        assert_eq!(ino("/sbin/./sh", Last::NoFollow), Ok(Some(13)));
    }

    #[test]
    fn dotdot_after_a_link_is_the_parent_of_where_it_led() {
        assert_eq!(ino("/bin/../lib", Last::NoFollow), Ok(Some(12)));
        assert_eq!(ino("/../../usr/..", Last::NoFollow), Ok(Some(ROOT_INO)));
    }

    #[test]
    fn the_last_link_is_followed_only_when_asked() {
        assert_eq!(ino("/bin", Last::NoFollow), Ok(Some(20)));
        assert_eq!(ino("/bin", Last::Follow), Ok(Some(11)));
        assert_eq!(ino("/bin/", Last::NoFollow), Ok(Some(11)));
    }

    #[test]
    fn a_missing_last_name_gives_its_directory_for_creating_it() {
        let p = resolve(&Tree::merged_usr(), b"/sbin/new", Last::NoFollow).unwrap();
        assert_eq!((p.dir, p.name.as_slice(), p.found), (11, &b"new"[..], None));
        let root = resolve(&Tree::merged_usr(), b"/", Last::NoFollow).unwrap();
        assert!(root.is_dot() && root.as_dir() == Some(ROOT_INO));
    }

    #[test]
    fn bad_paths_give_the_kernels_errno() {
        assert_eq!(ino("/nope/x", Last::NoFollow), Err(FsError::NotFound));
        assert_eq!(ino("/file/x", Last::NoFollow), Err(FsError::NotADirectory));
        assert_eq!(ino("/file/", Last::NoFollow), Err(FsError::NotADirectory));
        assert_eq!(ino("/loop/x", Last::NoFollow), Err(FsError::SymlinkLoop));
        assert_eq!(ino("/loop", Last::Follow), Err(FsError::SymlinkLoop));
        assert_eq!(ino("/loop", Last::NoFollow), Ok(Some(22)));
        assert_eq!(ino("/empty/x", Last::NoFollow), Err(FsError::NotFound));
    }
}
