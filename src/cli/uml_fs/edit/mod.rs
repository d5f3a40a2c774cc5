//! `uml_fs` editing subcommands (put, mkdir, rm, mv, ln, chmod, chown,
//! touch, write): thin clients of the writer's [`InodeFs`] API. Every path
//! goes through one resolver ([`path`]), which follows symbolic links the
//! way the kernel does; each command chooses, as its system call does,
//! whether a final link is followed. The disk is opened writable (on a COW
//! view only the COW file changes; `COW,BACKING` creates a missing COW).
//! `--dry-run` runs the same code over an in-memory overlay of the disk and
//! prints what would change.

use crate::block::BlockDevice;
use crate::cow::{open_disk, DiskOptions};
use crate::ext3::write::{WriteOptions, Writer};
use crate::ext3::{FileType, Metadata};
use crate::fs::{Error as FsError, Ino, InodeFs, Owner, RenameFlags, SetAttr, SetTime};
use anyhow::{anyhow, bail, Context};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

mod args;
mod dry_run;
mod oneline;
mod path;

pub use args::EditCommand;
use args::{parse_mode, parse_owner};
use dry_run::DryRun;
pub use oneline::{one_line, open_error, reason};
use path::{Last, Place};

/// The editing session: the filesystem, the copy buffer, the dry-run flag.
struct Session<'a> {
    fs: &'a dyn InodeFs,
    /// The copy buffer (allocated once).
    buf: RefCell<Vec<u8>>,
    dry: bool,
}

fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn fs_error(what: &str, p: &[u8], e: FsError) -> anyhow::Error {
    anyhow!("{what} {}: {}", show(p), e)
}

/// `dir/name` for messages.
fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let dir = dir.strip_suffix(b"/").unwrap_or(dir);
    [dir, b"/", name].concat()
}

/// The last name of `path` (`ln` and `mv` into a directory use it).
fn base(path: &[u8]) -> &[u8] {
    path.split(|&c| c == b'/')
        .rfind(|n| !n.is_empty())
        .unwrap_or(b"")
}

fn is(m: &Metadata, t: FileType) -> bool {
    m.file_type == t
}

impl Session<'_> {
    fn say(&self, msg: String) {
        if self.dry {
            // A closed pipe only ends the listing; the disk is not touched.
            let _ = writeln!(io::stdout(), "{msg}");
        }
    }

    fn resolve(&self, what: &str, path: &[u8], last: Last) -> anyhow::Result<Place> {
        path::resolve(self.fs, path, last).map_err(|e| fs_error(what, path, e))
    }

    /// The existing inode `path` leads to.
    fn existing(&self, what: &str, path: &[u8], last: Last) -> anyhow::Result<Metadata> {
        self.resolve(what, path, last)?
            .found
            .ok_or_else(|| fs_error(what, path, FsError::NotFound))
    }

    /// `name` in `dir`, when it exists.
    fn entry(&self, dir: Ino, name: &[u8], shown: &[u8]) -> anyhow::Result<Option<Metadata>> {
        match self.fs.lookup(dir, name) {
            Ok(m) => Ok(Some(m)),
            Err(FsError::NotFound) => Ok(None),
            Err(e) => Err(fs_error("lookup", shown, e)),
        }
    }

    /// Where `path` puts a new entry: inside it, under `name`, when it
    /// leads to a directory (following a final link); else the path itself
    /// (its final link not followed, so that link is what gets replaced).
    fn target(&self, what: &str, path: &[u8], name: &[u8]) -> anyhow::Result<(Place, Vec<u8>)> {
        // A link that loops is not a directory: it is replaced, as
        // rename(2) would replace it.
        let followed = match path::resolve(self.fs, path, Last::Follow) {
            Err(FsError::SymlinkLoop) => None,
            r => r.map_err(|e| fs_error(what, path, e))?.as_dir(),
        };
        if let Some(dir) = followed {
            if name.is_empty() || name == b"." || name == b".." {
                bail!(
                    "{what} {}: no name to give it in that directory",
                    show(path)
                );
            }
            let found = self.entry(dir, name, path)?;
            let place = Place {
                dir,
                name: name.to_vec(),
                found,
            };
            return Ok((place, join(path, name)));
        }
        Ok((self.resolve(what, path, Last::NoFollow)?, path.to_vec()))
    }

    /// The directory `name` in `dir`, made when missing. An existing
    /// directory, or a link to one, is used as it is (as `mkdir -p` does).
    fn dir_at(&self, place: &Place, owner: Owner, shown: &[u8]) -> anyhow::Result<Ino> {
        match &place.found {
            None => {
                self.say(format!("mkdir {}", show(shown)));
                let md = self
                    .fs
                    .mkdir(place.dir, &place.name, 0o755, owner)
                    .map_err(|e| fs_error("mkdir", shown, e))?;
                Ok(md.ino)
            }
            Some(m) if is(m, FileType::Directory) => Ok(m.ino),
            Some(m) if is(m, FileType::Symlink) => {
                let mut hops = 0;
                path::resolve_at(self.fs, place.dir, &place.name, Last::Follow, &mut hops)
                    .map_err(|e| fs_error("mkdir", shown, e))?
                    .as_dir()
                    .ok_or_else(|| fs_error("mkdir", shown, FsError::Exists))
            }
            Some(_) => Err(fs_error("mkdir", shown, FsError::Exists)),
        }
    }

    fn mkdir(&self, path: &[u8], parents: bool, owner: Owner) -> anyhow::Result<Ino> {
        if !parents {
            let p = self.resolve("mkdir", path, Last::NoFollow)?;
            if p.found.is_some() {
                return Err(fs_error("mkdir", path, FsError::Exists));
            }
            return self.dir_at(&p, owner, path);
        }
        let p = match path::resolve(self.fs, path, Last::NoFollow) {
            Ok(p) => p,
            Err(FsError::NotFound) => {
                // A missing directory on the way: make the parent first.
                let mut trimmed = path;
                while let Some(t) = trimmed.strip_suffix(b"/") {
                    trimmed = t;
                }
                let cut = trimmed
                    .iter()
                    .rposition(|&c| c == b'/')
                    .map_or(0, |i| i + 1);
                let (parent, name) = trimmed.split_at(cut);
                let parent = match parent {
                    [] | [b'/'] => parent,
                    p => &p[..p.len() - 1],
                };
                if name.is_empty() {
                    return Err(fs_error("mkdir", path, FsError::NotFound));
                }
                self.mkdir(parent, true, owner)?;
                self.resolve("mkdir", path, Last::NoFollow)?
            }
            Err(e) => return Err(fs_error("mkdir", path, e)),
        };
        self.dir_at(&p, owner, path)
    }

    fn rm(&self, path: &[u8], recursive: bool) -> anyhow::Result<()> {
        let p = self.resolve("rm", path, Last::NoFollow)?;
        if p.is_dot() {
            bail!("rm {}: refusing to remove '.', '..' or '/'", show(path));
        }
        let m = p
            .found
            .as_ref()
            .ok_or_else(|| fs_error("rm", path, FsError::NotFound))?;
        self.remove(p.dir, &p.name, m, path, recursive)
    }

    /// Removes `name` (which is `m`) from `dir`, and with `recursive` a
    /// directory's contents first.
    fn remove(
        &self,
        dir: Ino,
        name: &[u8],
        m: &Metadata,
        shown: &[u8],
        recursive: bool,
    ) -> anyhow::Result<()> {
        if !is(m, FileType::Directory) {
            self.say(format!("rm {}", show(shown)));
            return self
                .fs
                .unlink(dir, name)
                .map_err(|e| fs_error("rm", shown, e));
        }
        if !recursive {
            bail!("rm {}: is a directory (use -r)", show(shown));
        }
        let mut names = Vec::new();
        self.fs
            .readdir(m.ino, 0, &mut |e| {
                if e.name != b"." && e.name != b".." {
                    names.push(e.name);
                }
                true
            })
            .map_err(|e| fs_error("rm", shown, e))?;
        for n in names {
            let child = join(shown, &n);
            if let Some(cm) = self.entry(m.ino, &n, &child)? {
                self.remove(m.ino, &n, &cm, &child, true)?;
            }
        }
        self.say(format!("rmdir {}", show(shown)));
        self.fs
            .rmdir(dir, name)
            .map_err(|e| fs_error("rmdir", shown, e))
    }

    /// The regular file at `place`, emptied, or made when missing; another
    /// kind of file there is replaced, a directory is an error.
    fn file_at(
        &self,
        what: &str,
        place: &Place,
        mode: u32,
        owner: Owner,
        shown: &[u8],
    ) -> anyhow::Result<Ino> {
        if let Some(m) = &place.found {
            if is(m, FileType::Regular) {
                self.say(format!("truncate {}", show(shown)));
                let c = SetAttr {
                    size: Some(0),
                    ..Default::default()
                };
                self.fs
                    .setattr(m.ino, &c)
                    .map_err(|e| fs_error("truncate", shown, e))?;
                return Ok(m.ino);
            }
            if is(m, FileType::Directory) || place.is_dot() {
                return Err(fs_error(what, shown, FsError::IsADirectory));
            }
            self.remove(place.dir, &place.name, m, shown, false)?;
        }
        self.say(format!("create {}", show(shown)));
        Ok(self
            .fs
            .create(place.dir, &place.name, mode, owner)
            .map_err(|e| fs_error("create", shown, e))?
            .ino)
    }

    fn write_from(&self, ino: Ino, path: &[u8], src: &mut dyn Read) -> anyhow::Result<u64> {
        let mut buf = self.buf.borrow_mut();
        if buf.is_empty() {
            buf.resize(1 << 20, 0);
        }
        let mut off = 0u64;
        loop {
            let n = src.read(&mut buf).context("reading the input")?;
            if n == 0 {
                break;
            }
            let mut done = 0;
            while done < n {
                let w = self
                    .fs
                    .write(ino, off, &buf[done..n])
                    .map_err(|e| fs_error("write", path, e))?;
                if w == 0 {
                    bail!("write {}: no space left on device", show(path));
                }
                done += w;
                off += w as u64;
            }
        }
        self.say(format!("write {} ({off} bytes)", show(path)));
        Ok(off)
    }

    /// Copies the host file or tree `host` to `place` (shown as `shown`).
    fn put(
        &self,
        host: &Path,
        place: &Place,
        shown: &[u8],
        owner: Option<(u32, Option<u32>)>,
        links: &mut HashMap<(u64, u64), Ino>,
    ) -> anyhow::Result<()> {
        let md = std::fs::symlink_metadata(host).with_context(|| format!("{}", host.display()))?;
        let who = Owner {
            uid: owner.map_or(md.uid(), |o| o.0),
            gid: owner.map_or(md.gid(), |o| o.1.unwrap_or(md.gid())),
        };
        let ft = md.file_type();
        let linked = md.nlink() > 1 && !ft.is_dir();
        if let Some(&ino) = links.get(&(md.dev(), md.ino())).filter(|_| linked) {
            self.make_room(place, shown)?;
            self.say(format!("link {}", show(shown)));
            self.fs
                .link(ino, place.dir, &place.name)
                .map_err(|e| fs_error("link", shown, e))?;
            return Ok(());
        }
        let ino = if ft.is_dir() {
            let ino = self.dir_at(place, who, shown)?;
            let mut entries: Vec<_> = std::fs::read_dir(host)
                .with_context(|| format!("{}", host.display()))?
                .collect::<Result<_, _>>()
                .with_context(|| format!("{}", host.display()))?;
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let name = e.file_name();
                let child = join(shown, name.as_bytes());
                let found = self.entry(ino, name.as_bytes(), &child)?;
                let at = Place {
                    dir: ino,
                    name: name.as_bytes().to_vec(),
                    found,
                };
                self.put(&e.path(), &at, &child, owner, links)?;
            }
            ino
        } else if ft.is_file() {
            let ino = self.file_at("put", place, md.mode() & 0o7777, who, shown)?;
            let mut f = std::fs::File::open(host).with_context(|| format!("{}", host.display()))?;
            self.write_from(ino, shown, &mut f)?;
            ino
        } else {
            self.make_room(place, shown)?;
            self.say(format!("create {}", show(shown)));
            let r = if ft.is_symlink() {
                let t = std::fs::read_link(host).with_context(|| format!("{}", host.display()))?;
                self.fs
                    .symlink(place.dir, &place.name, t.as_os_str().as_bytes(), who)
            } else {
                self.fs
                    .mknod(place.dir, &place.name, md.mode(), md.rdev(), who)
            };
            r.map_err(|e| fs_error("create", shown, e))?.ino
        };
        if !ft.is_symlink() {
            let c = SetAttr {
                mode: Some(md.mode() & 0o7777),
                uid: Some(who.uid),
                gid: Some(who.gid),
                atime: Some(SetTime::At(crate::ext3::Timestamp {
                    sec: md.atime(),
                    nsec: md.atime_nsec() as u32,
                })),
                mtime: Some(SetTime::At(crate::ext3::Timestamp {
                    sec: md.mtime(),
                    nsec: md.mtime_nsec() as u32,
                })),
                size: None,
            };
            self.fs
                .setattr(ino, &c)
                .map_err(|e| fs_error("setattr", shown, e))?;
        }
        if linked {
            links.insert((md.dev(), md.ino()), ino);
        }
        Ok(())
    }

    /// Removes what is at `place` so that a non-directory can take its
    /// name; a directory stays (and the caller's create fails).
    fn make_room(&self, place: &Place, shown: &[u8]) -> anyhow::Result<()> {
        match &place.found {
            Some(m) if is(m, FileType::Directory) || place.is_dot() => {
                Err(fs_error("put", shown, FsError::IsADirectory))
            }
            Some(m) => self.remove(place.dir, &place.name, m, shown, false),
            None => Ok(()),
        }
    }

    fn setattr(&self, what: &str, path: &[u8], c: &SetAttr) -> anyhow::Result<()> {
        let m = self.existing(what, path, Last::Follow)?;
        self.fs
            .setattr(m.ino, c)
            .map(drop)
            .map_err(|e| fs_error(what, path, e))
    }

    fn run(&self, cmd: &EditCommand) -> anyhow::Result<()> {
        let root = Owner { uid: 0, gid: 0 };
        let b = |p: &OsString| p.as_bytes().to_vec();
        match cmd {
            EditCommand::Put {
                owner,
                host_path,
                path,
                ..
            } => {
                let owner = owner.as_deref().map(parse_owner).transpose()?;
                let name = host_path.file_name().map_or(&[][..], |n| n.as_bytes());
                let (place, shown) = self.target("put", &b(path), name)?;
                self.put(host_path, &place, &shown, owner, &mut HashMap::new())
            }
            EditCommand::Mkdir { parents, paths, .. } => {
                for p in paths {
                    self.mkdir(&b(p), *parents, root)?;
                }
                Ok(())
            }
            EditCommand::Rm {
                recursive, paths, ..
            } => {
                for p in paths {
                    self.rm(&b(p), *recursive)?;
                }
                Ok(())
            }
            EditCommand::Mv { src, dest, .. } => {
                let src = b(src);
                let from = self.resolve("mv", &src, Last::NoFollow)?;
                if from.is_dot() {
                    bail!("mv {}: cannot move '.', '..' or '/'", show(&src));
                }
                if from.found.is_none() {
                    return Err(fs_error("mv", &src, FsError::NotFound));
                }
                let (to, shown) = self.target("mv", &b(dest), &from.name)?;
                if to.is_dot() {
                    bail!("mv {}: cannot replace '.', '..' or '/'", show(&shown));
                }
                self.say(format!("rename {} -> {}", show(&src), show(&shown)));
                self.fs
                    .rename(
                        from.dir,
                        &from.name,
                        to.dir,
                        &to.name,
                        RenameFlags::default(),
                    )
                    .map_err(|e| fs_error("mv", &src, e))
            }
            EditCommand::Ln {
                symbolic,
                target,
                link,
                ..
            } => {
                let (at, shown) = self.target("ln", &b(link), base(&b(target)))?;
                if at.found.is_some() || at.is_dot() {
                    return Err(fs_error("ln", &shown, FsError::Exists));
                }
                self.say(format!("link {} -> {}", show(&shown), show(&b(target))));
                let r = if *symbolic {
                    self.fs.symlink(at.dir, &at.name, &b(target), root)
                } else {
                    // Like GNU ln (-P): a link to a symlink links the symlink.
                    let t = self.existing("ln", &b(target), Last::NoFollow)?;
                    self.fs.link(t.ino, at.dir, &at.name)
                };
                r.map(drop).map_err(|e| fs_error("ln", &shown, e))
            }
            EditCommand::Chmod { mode, paths, .. } => {
                let m = parse_mode(mode).ok_or_else(|| anyhow!("bad mode {mode:?}"))?;
                let c = SetAttr {
                    mode: Some(m),
                    ..Default::default()
                };
                for p in paths {
                    self.say(format!("chmod {m:o} {}", show(&b(p))));
                    self.setattr("chmod", &b(p), &c)?;
                }
                Ok(())
            }
            EditCommand::Chown { owner, paths, .. } => {
                let (uid, gid) = parse_owner(owner)?;
                let c = SetAttr {
                    uid: Some(uid),
                    gid,
                    ..Default::default()
                };
                for p in paths {
                    self.say(format!("chown {owner} {}", show(&b(p))));
                    self.setattr("chown", &b(p), &c)?;
                }
                Ok(())
            }
            EditCommand::Touch { paths, .. } => {
                let c = SetAttr {
                    atime: Some(SetTime::Now),
                    mtime: Some(SetTime::Now),
                    ..Default::default()
                };
                for p in paths {
                    let p = b(p);
                    let place = self.resolve("touch", &p, Last::Follow)?;
                    let ino = match &place.found {
                        Some(m) => m.ino,
                        None => {
                            self.say(format!("create {}", show(&p)));
                            self.fs
                                .create(place.dir, &place.name, 0o644, root)
                                .map_err(|e| fs_error("touch", &p, e))?
                                .ino
                        }
                    };
                    self.say(format!("touch {}", show(&p)));
                    self.fs
                        .setattr(ino, &c)
                        .map_err(|e| fs_error("touch", &p, e))?;
                }
                Ok(())
            }
            EditCommand::Write { path, .. } => {
                let p = b(path);
                let place = self.resolve("write", &p, Last::Follow)?;
                let ino = self.file_at("write", &place, 0o644, root, &p)?;
                self.write_from(ino, &p, &mut io::stdin().lock())?;
                Ok(())
            }
        }
    }
}

fn device_of(cmd: &EditCommand) -> (&str, bool) {
    match cmd {
        EditCommand::Put { device, opts, .. }
        | EditCommand::Mkdir { device, opts, .. }
        | EditCommand::Rm { device, opts, .. }
        | EditCommand::Mv { device, opts, .. }
        | EditCommand::Ln { device, opts, .. }
        | EditCommand::Chmod { device, opts, .. }
        | EditCommand::Chown { device, opts, .. }
        | EditCommand::Touch { device, opts, .. }
        | EditCommand::Write { device, opts, .. } => (device, opts.dry_run),
    }
}

fn edit_on<D: BlockDevice>(dev: D, spec: &str, cmd: &EditCommand, dry: bool) -> anyhow::Result<()> {
    let w = Writer::open(dev, WriteOptions::default())
        .map_err(|e| anyhow!("{spec}: {}", one_line(&e)))?;
    let s = Session {
        buf: Default::default(),
        fs: &w,
        dry,
    };
    let r = s.run(cmd);
    let closed = w.unmount().map_err(|e| anyhow!("{spec}: unmount: {}", e));
    r?;
    closed
}

/// Runs one editing command; an error is one line naming each cause once.
pub fn run(cmd: &EditCommand) -> anyhow::Result<()> {
    edit(cmd).map_err(|e| anyhow!("{}", one_line(e.as_ref())))
}

fn edit(cmd: &EditCommand) -> anyhow::Result<()> {
    cmd.check()?;
    let (spec, dry) = device_of(cmd);
    if dry {
        let disk = open_disk(spec, &DiskOptions::default()).map_err(|e| open_error(e, false))?;
        let dev = DryRun {
            inner: disk,
            blocks: Mutex::new(BTreeMap::new()),
        };
        return edit_on(dev, spec, cmd, true);
    }
    let opts = DiskOptions {
        writable: true,
        create_cow: true,
        ..Default::default()
    };
    let disk = open_disk(spec, &opts).map_err(|e| open_error(e, true))?;
    edit_on(disk, spec, cmd, false)
}
