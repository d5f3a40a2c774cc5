//! Filling a machine's disk before it boots: its COW file is created over
//! the image (or reused), and the lab's files are written into it through
//! the journaling ext3 writer, as `uml_fs put` writes them: `shared/` and
//! `MACHINE/` merged into `/` (directories merged, files replaced, modes,
//! times and ownership kept; files the invoking user owns become root's,
//! since guest uid 0 is that user), and the init wrapper, the startup and
//! shutdown scripts into `/uml_lab/`.

use super::{Error, Result};
use crate::cow::{open_disk, DiskOptions};
use crate::ext3::write::{WriteOptions, Writer};
use crate::ext3::{FileType, Metadata, Timestamp, ROOT_INO};
use crate::fs::{self, Ino, InodeFs, Owner, SetAttr, SetTime};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A file to write into `/uml_lab/`: name, contents, mode.
pub type Generated = (String, Vec<u8>, u32);

/// What to put on a machine's disk.
#[derive(Debug, Default)]
pub struct Content<'a> {
    /// Host trees merged into `/`, in order (`shared/`, then `MACHINE/`).
    pub trees: Vec<&'a Path>,
    /// Files of `/uml_lab/`; others found there are removed.
    pub generated: Vec<Generated>,
}

/// The init the kernel would run on this image: the first of
/// `/sbin/init`, `/etc/init`, `/bin/init`, `/bin/sh` that exists.
const INITS: [&str; 4] = ["/sbin/init", "/etc/init", "/bin/init", "/bin/sh"];

fn fail(what: &str, path: &[u8], e: fs::Error) -> Error {
    Error::Invalid(format!("{what} {}: {e}", String::from_utf8_lossy(path)))
}

/// Creates `cow` over `image` when missing, writes `content` into it and
/// returns the image's own init (what [`INITS`] finds).
pub fn prepare(cow: &Path, image: &Path, content: &Content<'_>) -> Result<String> {
    let spec = format!("{},{}", cow.display(), image.display());
    let opts = DiskOptions {
        writable: true,
        create_cow: true,
        ..Default::default()
    };
    let disk = open_disk(&spec, &opts).map_err(|e| Error::Invalid(one_line(&e)))?;
    let w = Writer::open(disk, WriteOptions::default())
        .map_err(|e| Error::Invalid(format!("{}: {}", image.display(), one_line(&e))))?;
    let me = nix::unistd::geteuid().as_raw();
    let put = Put {
        fs: &w,
        me,
        buf: std::cell::RefCell::new(vec![0u8; 1 << 20]),
    };
    let r = put.all(content);
    let closed = w
        .unmount()
        .map_err(|e| fail("unmount", cow.as_os_str().as_bytes(), e));
    let init = r?;
    closed?;
    Ok(init)
}

fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let t = s.to_string();
        if !line.contains(&t) {
            line.push_str(": ");
            line.push_str(&t);
        }
        next = s.source();
    }
    line
}

struct Put<'a> {
    fs: &'a dyn InodeFs,
    me: u32,
    buf: std::cell::RefCell<Vec<u8>>,
}

impl Put<'_> {
    fn all(&self, content: &Content<'_>) -> Result<String> {
        for tree in &content.trees {
            self.merge_dir(tree, ROOT_INO, b"")?;
        }
        let dir = self.dir(ROOT_INO, b"uml_lab", Owner { uid: 0, gid: 0 }, b"/uml_lab")?;
        let mut old = Vec::new();
        self.fs
            .readdir(dir, 0, &mut |e| {
                if e.name != b"." && e.name != b".." {
                    old.push(e.name);
                }
                true
            })
            .map_err(|e| fail("readdir", b"/uml_lab", e))?;
        for name in old {
            if !content
                .generated
                .iter()
                .any(|(n, _, _)| n.as_bytes() == name.as_slice())
            {
                self.fs
                    .unlink(dir, &name)
                    .map_err(|e| fail("rm", &[b"/uml_lab/", name.as_slice()].concat(), e))?;
            }
        }
        for (name, data, mode) in &content.generated {
            let shown = format!("/uml_lab/{name}");
            let ino = self.file(
                dir,
                name.as_bytes(),
                *mode,
                Owner { uid: 0, gid: 0 },
                shown.as_bytes(),
            )?;
            self.write(ino, shown.as_bytes(), &mut &data[..])?;
            self.fs
                .setattr(
                    ino,
                    &SetAttr {
                        mode: Some(*mode),
                        ..Default::default()
                    },
                )
                .map_err(|e| fail("chmod", shown.as_bytes(), e))?;
        }
        Ok(self.find_init())
    }

    fn find_init(&self) -> String {
        for init in INITS {
            let mut ino = ROOT_INO;
            let mut found = true;
            for part in init.split('/').filter(|p| !p.is_empty()) {
                match self.fs.lookup(ino, part.as_bytes()) {
                    Ok(m) => ino = m.ino,
                    Err(_) => {
                        found = false;
                        break;
                    }
                }
            }
            if found {
                return init.to_string();
            }
        }
        INITS[0].to_string()
    }

    fn entry(&self, dir: Ino, name: &[u8], shown: &[u8]) -> Result<Option<Metadata>> {
        match self.fs.lookup(dir, name) {
            Ok(m) => Ok(Some(m)),
            Err(fs::Error::NotFound) => Ok(None),
            Err(e) => Err(fail("lookup", shown, e)),
        }
    }

    /// The directory `name` in `dir`, made when missing.
    fn dir(&self, dir: Ino, name: &[u8], owner: Owner, shown: &[u8]) -> Result<Ino> {
        match self.entry(dir, name, shown)? {
            Some(m) if m.file_type == FileType::Directory => Ok(m.ino),
            Some(m) => {
                self.remove(dir, name, &m, shown)?;
                self.mkdir(dir, name, owner, shown)
            }
            None => self.mkdir(dir, name, owner, shown),
        }
    }

    fn mkdir(&self, dir: Ino, name: &[u8], owner: Owner, shown: &[u8]) -> Result<Ino> {
        self.fs
            .mkdir(dir, name, 0o755, owner)
            .map(|m| m.ino)
            .map_err(|e| fail("mkdir", shown, e))
    }

    /// Removes a non-directory (a directory in the way is an error).
    fn remove(&self, dir: Ino, name: &[u8], m: &Metadata, shown: &[u8]) -> Result<()> {
        if m.file_type == FileType::Directory {
            return Err(fail("put", shown, fs::Error::IsADirectory));
        }
        self.fs.unlink(dir, name).map_err(|e| fail("rm", shown, e))
    }

    /// The regular file `name` in `dir`, emptied or made.
    fn file(&self, dir: Ino, name: &[u8], mode: u32, owner: Owner, shown: &[u8]) -> Result<Ino> {
        if let Some(m) = self.entry(dir, name, shown)? {
            if m.file_type == FileType::Regular {
                let c = SetAttr {
                    size: Some(0),
                    ..Default::default()
                };
                self.fs
                    .setattr(m.ino, &c)
                    .map_err(|e| fail("truncate", shown, e))?;
                return Ok(m.ino);
            }
            self.remove(dir, name, &m, shown)?;
        }
        self.fs
            .create(dir, name, mode, owner)
            .map(|m| m.ino)
            .map_err(|e| fail("create", shown, e))
    }

    fn write(&self, ino: Ino, shown: &[u8], src: &mut dyn std::io::Read) -> Result<()> {
        let mut buf = self.buf.borrow_mut();
        let mut off = 0u64;
        loop {
            let n = src.read(&mut buf).map_err(|e| {
                Error::Invalid(format!("reading {}: {e}", String::from_utf8_lossy(shown)))
            })?;
            if n == 0 {
                return Ok(());
            }
            let mut done = 0;
            while done < n {
                let w = self
                    .fs
                    .write(ino, off, &buf[done..n])
                    .map_err(|e| fail("write", shown, e))?;
                if w == 0 {
                    return Err(fail("write", shown, fs::Error::NoSpace));
                }
                done += w;
                off += u64::try_from(w).unwrap_or(u64::MAX);
            }
        }
    }

    fn owner(&self, md: &std::fs::Metadata) -> Owner {
        let map = |id: u32| if md.uid() == self.me { 0 } else { id };
        Owner {
            uid: map(md.uid()),
            gid: map(md.gid()),
        }
    }

    /// Merges the host directory `host` into the guest directory `ino`.
    fn merge_dir(&self, host: &Path, ino: Ino, shown: &[u8]) -> Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(host)
            .map_err(|e| Error::io(host, "cannot list", e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::io(host, "cannot list", e))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let child = [shown, b"/", name.as_bytes()].concat();
            self.put(&e.path(), ino, name.as_bytes(), &child)?;
        }
        Ok(())
    }

    fn put(&self, host: &Path, dir: Ino, name: &[u8], shown: &[u8]) -> Result<()> {
        let md = std::fs::symlink_metadata(host).map_err(|e| Error::io(host, "cannot stat", e))?;
        let who = self.owner(&md);
        let ft = md.file_type();
        let ino = if ft.is_dir() {
            let ino = self.dir(dir, name, who, shown)?;
            self.merge_dir(host, ino, shown)?;
            ino
        } else if ft.is_file() {
            let ino = self.file(dir, name, md.mode() & 0o7777, who, shown)?;
            let mut f = std::fs::File::open(host).map_err(|e| Error::io(host, "cannot open", e))?;
            self.write(ino, shown, &mut f)?;
            ino
        } else {
            if let Some(m) = self.entry(dir, name, shown)? {
                self.remove(dir, name, &m, shown)?;
            }
            let r = if ft.is_symlink() {
                let t =
                    std::fs::read_link(host).map_err(|e| Error::io(host, "cannot read link", e))?;
                self.fs.symlink(dir, name, t.as_os_str().as_bytes(), who)
            } else {
                self.fs.mknod(dir, name, md.mode(), md.rdev(), who)
            };
            r.map_err(|e| fail("create", shown, e))?.ino
        };
        if !ft.is_symlink() {
            let ts = |sec: i64, nsec: i64| {
                SetTime::At(Timestamp {
                    sec,
                    nsec: u32::try_from(nsec).unwrap_or(0),
                })
            };
            let c = SetAttr {
                mode: Some(md.mode() & 0o7777),
                uid: Some(who.uid),
                gid: Some(who.gid),
                atime: Some(ts(md.atime(), md.atime_nsec())),
                mtime: Some(ts(md.mtime(), md.mtime_nsec())),
                size: None,
            };
            self.fs
                .setattr(ino, &c)
                .map_err(|e| fail("setattr", shown, e))?;
        }
        Ok(())
    }
}
