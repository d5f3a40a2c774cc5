//! `uml_fs` editing subcommands (put, mkdir, rm, mv, ln, chmod, chown,
//! touch, write): thin clients of the writer's [`InodeFs`] API. The disk is
//! opened writable (on a COW view only the COW file changes; `COW,BACKING`
//! creates a missing COW). `--dry-run` runs the same code over an
//! in-memory overlay of the disk and prints what would change.

use crate::block::BlockDevice;
use crate::cow::{open_disk, DiskOptions};
use crate::ext3::write::{WriteOptions, Writer};
use crate::vfs::{InodeFs, Owner, RenameFlags, SetAttr, SetTime};
use anyhow::{anyhow, bail, Context};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Mutex;

mod args;
mod dry_run;

pub use args::EditCommand;
use dry_run::DryRun;

/// The editing session: the writer plus the dry-run log.
struct Session<'a> {
    fs: &'a dyn InodeFs,
    /// Directory path -> inode, for `lookup` (cleared on rename and rmdir).
    parents: std::cell::RefCell<HashMap<Vec<u8>, u32>>,
    /// The copy buffer (allocated once).
    buf: std::cell::RefCell<Vec<u8>>,
    resolve: &'a dyn Fn(&[u8], bool) -> Option<u32>,
    dry: bool,
}

fn split(path: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let p: &[u8] = {
        let mut p = path;
        while p.len() > 1 && p.ends_with(b"/") {
            p = &p[..p.len() - 1];
        }
        p
    };
    match p.iter().rposition(|&c| c == b'/') {
        Some(i) => (
            if i == 0 {
                b"/".to_vec()
            } else {
                p[..i].to_vec()
            },
            p[i + 1..].to_vec(),
        ),
        None => (b"/".to_vec(), p.to_vec()),
    }
}

fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn errno(what: &str, p: &[u8], e: nix::errno::Errno) -> anyhow::Error {
    anyhow!("{what} {}: {}", show(p), e.desc())
}

fn parse_owner(s: &str) -> anyhow::Result<(u32, Option<u32>)> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u
        .parse()
        .with_context(|| format!("bad uid {u:?} (numeric ids only)"))?;
    let gid = g
        .map(|g| {
            g.parse()
                .with_context(|| format!("bad gid {g:?} (numeric ids only)"))
        })
        .transpose()?;
    Ok((uid, gid))
}

impl Session<'_> {
    fn say(&self, msg: String) {
        if self.dry {
            println!("{msg}");
        }
    }

    /// Walks `path` through the writer's name cache (no symlinks followed).
    fn walk(&self, path: &[u8]) -> Option<u32> {
        let mut ino = crate::ext3::ROOT_INO;
        for part in path
            .split(|&c| c == b'/')
            .filter(|p| !p.is_empty() && *p != b".")
        {
            ino = self.fs.lookup(ino, part).ok()?.ino;
        }
        Some(ino)
    }

    /// The inode at `path`; parent directories are remembered, so a
    /// tree copy does not walk from the root for every file.
    fn lookup(&self, path: &[u8]) -> Option<u32> {
        let (parent, name) = split(path);
        if name.is_empty() || name == b"." || name == b".." {
            return self.walk(path);
        }
        let cached = self.parents.borrow().get(&parent).copied();
        let pino = match cached {
            Some(p) => p,
            None => {
                let p = self.walk(&parent)?;
                self.parents.borrow_mut().insert(parent, p);
                p
            }
        };
        Some(self.fs.lookup(pino, &name).ok()?.ino)
    }

    /// The directory at `path`, following symlinks.
    fn dir(&self, path: &[u8]) -> anyhow::Result<u32> {
        if let Some(ino) = self.lookup(path) {
            if self
                .fs
                .getattr(ino)
                .is_ok_and(|m| m.mode() & 0o170000 == 0o040000)
            {
                return Ok(ino);
            }
        }
        let ino = (self.resolve)(path, true)
            .ok_or_else(|| anyhow!("{}: no such directory", show(path)))?;
        Ok(ino)
    }

    fn mkdir(&self, path: &[u8], parents: bool, owner: Owner) -> anyhow::Result<u32> {
        if let Some(ino) = self.lookup(path) {
            if parents
                && self
                    .fs
                    .getattr(ino)
                    .map(|m| m.mode() & 0o170000 == 0o040000)
                    .unwrap_or(false)
            {
                return Ok(ino);
            }
            bail!("mkdir {}: file exists", show(path));
        }
        let (parent, name) = split(path);
        let pino = match self.lookup(&parent) {
            Some(p) => p,
            None if parents => self.mkdir(&parent, true, owner)?,
            None => bail!("mkdir {}: no such directory {}", show(path), show(&parent)),
        };
        self.say(format!("mkdir {}", show(path)));
        let md = self
            .fs
            .mkdir(pino, &name, 0o755, owner)
            .map_err(|e| errno("mkdir", path, e))?;
        Ok(md.ino)
    }

    fn rm(&self, path: &[u8], recursive: bool) -> anyhow::Result<()> {
        let ino = self
            .lookup(path)
            .ok_or_else(|| anyhow!("rm {}: no such file", show(path)))?;
        let (parent, name) = split(path);
        let pino = self.dir(&parent)?;
        let is_dir = self
            .fs
            .getattr(ino)
            .map_err(|e| errno("rm", path, e))?
            .mode()
            & 0o170000
            == 0o040000;
        if is_dir {
            if !recursive {
                bail!("rm {}: is a directory (use -r)", show(path));
            }
            let mut names = Vec::new();
            self.fs
                .readdir(ino, 0, &mut |e| {
                    if e.name != b"." && e.name != b".." {
                        names.push(e.name);
                    }
                    true
                })
                .map_err(|e| errno("rm", path, e))?;
            for n in names {
                let child = [path, b"/", &n].concat();
                self.rm(&child, true)?;
            }
            self.say(format!("rmdir {}", show(path)));
            self.parents.borrow_mut().clear();
            self.fs
                .rmdir(pino, &name)
                .map_err(|e| errno("rmdir", path, e))
        } else {
            self.say(format!("rm {}", show(path)));
            self.fs
                .unlink(pino, &name)
                .map_err(|e| errno("rm", path, e))
        }
    }

    /// Creates or truncates the regular file at `path`; returns its inode.
    fn open_file(&self, path: &[u8], mode: u32, owner: Owner) -> anyhow::Result<u32> {
        if let Some(ino) = self.lookup(path) {
            let md = self.fs.getattr(ino).map_err(|e| errno("write", path, e))?;
            if md.mode() & 0o170000 == 0o100000 {
                self.say(format!("truncate {}", show(path)));
                let c = SetAttr {
                    size: Some(0),
                    ..Default::default()
                };
                self.fs
                    .setattr(ino, &c)
                    .map_err(|e| errno("truncate", path, e))?;
                return Ok(ino);
            }
            self.rm(path, false)?;
        }
        let (parent, name) = split(path);
        let pino = self.dir(&parent)?;
        self.say(format!("create {}", show(path)));
        Ok(self
            .fs
            .create(pino, &name, mode, owner)
            .map_err(|e| errno("create", path, e))?
            .ino)
    }

    fn write_from(&self, ino: u32, path: &[u8], src: &mut dyn Read) -> anyhow::Result<u64> {
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
                    .map_err(|e| errno("write", path, e))?;
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

    fn put(
        &self,
        host: &Path,
        path: &[u8],
        owner: Option<(u32, Option<u32>)>,
        links: &mut HashMap<(u64, u64), u32>,
    ) -> anyhow::Result<()> {
        let md = std::fs::symlink_metadata(host).with_context(|| format!("{}", host.display()))?;
        let who = Owner {
            uid: owner.map_or(md.uid(), |o| o.0),
            gid: owner.map_or(md.gid(), |o| o.1.unwrap_or(md.gid())),
        };
        let ft = md.file_type();
        let (parent, name) = split(path);
        if md.nlink() > 1 && !ft.is_dir() {
            if let Some(&ino) = links.get(&(md.dev(), md.ino())) {
                if self.lookup(path).is_some() {
                    self.rm(path, false)?;
                }
                let pino = self.dir(&parent)?;
                self.say(format!("link {}", show(path)));
                self.fs
                    .link(ino, pino, &name)
                    .map_err(|e| errno("link", path, e))?;
                return Ok(());
            }
        }
        let ino = if ft.is_dir() {
            let ino = self.mkdir(path, true, who)?;
            let mut entries: Vec<_> = std::fs::read_dir(host)
                .with_context(|| format!("{}", host.display()))?
                .collect::<Result<_, _>>()?;
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let child = [path, b"/", e.file_name().as_bytes()].concat();
                let child = if path == b"/" {
                    child[1..].to_vec()
                } else {
                    child
                };
                self.put(&e.path(), &child, owner, links)?;
            }
            ino
        } else if ft.is_file() {
            let ino = self.open_file(path, md.mode() & 0o7777, who)?;
            let mut f = std::fs::File::open(host).with_context(|| format!("{}", host.display()))?;
            self.write_from(ino, path, &mut f)?;
            ino
        } else {
            if self.lookup(path).is_some() {
                self.rm(path, false)?;
            }
            let pino = self.dir(&parent)?;
            self.say(format!("create {}", show(path)));
            let r = if ft.is_symlink() {
                let t = std::fs::read_link(host)?;
                self.fs.symlink(pino, &name, t.as_os_str().as_bytes(), who)
            } else {
                let _ =
                    ft.is_fifo() || ft.is_socket() || ft.is_char_device() || ft.is_block_device();
                self.fs.mknod(pino, &name, md.mode(), md.rdev(), who)
            };
            r.map_err(|e| errno("create", path, e))?.ino
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
                .map_err(|e| errno("setattr", path, e))?;
        }
        if md.nlink() > 1 && !ft.is_dir() {
            links.insert((md.dev(), md.ino()), ino);
        }
        Ok(())
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
                let mut dest = b(path);
                if let Some(ino) = (self.resolve)(&dest, true) {
                    let is_dir = self
                        .fs
                        .getattr(ino)
                        .map(|m| m.mode() & 0o170000 == 0o040000)
                        .unwrap_or(false);
                    if is_dir {
                        let base = host_path
                            .file_name()
                            .ok_or_else(|| anyhow!("{}: no file name", host_path.display()))?;
                        dest = [dest.as_slice(), b"/", base.as_bytes()].concat();
                    }
                }
                self.put(host_path, &dest, owner, &mut HashMap::new())
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
                let (sp, sn) = split(&b(src));
                let mut d = b(dest);
                if let Some(ino) = (self.resolve)(&d, true) {
                    if self
                        .fs
                        .getattr(ino)
                        .map(|m| m.mode() & 0o170000 == 0o040000)
                        .unwrap_or(false)
                    {
                        d = [d.as_slice(), b"/", &sn].concat();
                    }
                }
                let (dp, dn) = split(&d);
                self.say(format!("rename {} -> {}", show(&b(src)), show(&d)));
                self.parents.borrow_mut().clear();
                self.fs
                    .rename(
                        self.dir(&sp)?,
                        &sn,
                        self.dir(&dp)?,
                        &dn,
                        RenameFlags::default(),
                    )
                    .map_err(|e| errno("mv", &b(src), e))
            }
            EditCommand::Ln {
                symbolic,
                target,
                link,
                ..
            } => {
                let (lp, ln) = split(&b(link));
                let pino = self.dir(&lp)?;
                self.say(format!("link {} -> {}", show(&b(link)), show(&b(target))));
                let r = if *symbolic {
                    self.fs.symlink(pino, &ln, &b(target), root)
                } else {
                    let t = self
                        .lookup(&b(target))
                        .ok_or_else(|| anyhow!("ln {}: no such file", show(&b(target))))?;
                    self.fs.link(t, pino, &ln)
                };
                r.map(|_| ()).map_err(|e| errno("ln", &b(link), e))
            }
            EditCommand::Chmod { mode, paths, .. } => {
                let m = u32::from_str_radix(mode, 8)
                    .with_context(|| format!("bad mode {mode:?} (octal)"))?;
                for p in paths {
                    let ino = self
                        .lookup(&b(p))
                        .ok_or_else(|| anyhow!("chmod {}: no such file", show(&b(p))))?;
                    self.say(format!("chmod {m:o} {}", show(&b(p))));
                    let c = SetAttr {
                        mode: Some(m),
                        ..Default::default()
                    };
                    self.fs
                        .setattr(ino, &c)
                        .map_err(|e| errno("chmod", &b(p), e))?;
                }
                Ok(())
            }
            EditCommand::Chown { owner, paths, .. } => {
                let (uid, gid) = parse_owner(owner)?;
                for p in paths {
                    let ino = self
                        .lookup(&b(p))
                        .ok_or_else(|| anyhow!("chown {}: no such file", show(&b(p))))?;
                    self.say(format!("chown {owner} {}", show(&b(p))));
                    let c = SetAttr {
                        uid: Some(uid),
                        gid,
                        ..Default::default()
                    };
                    self.fs
                        .setattr(ino, &c)
                        .map_err(|e| errno("chown", &b(p), e))?;
                }
                Ok(())
            }
            EditCommand::Touch { paths, .. } => {
                for p in paths {
                    let ino = match self.lookup(&b(p)) {
                        Some(i) => i,
                        None => {
                            let (pp, n) = split(&b(p));
                            self.say(format!("create {}", show(&b(p))));
                            self.fs
                                .create(self.dir(&pp)?, &n, 0o644, root)
                                .map_err(|e| errno("touch", &b(p), e))?
                                .ino
                        }
                    };
                    self.say(format!("touch {}", show(&b(p))));
                    let c = SetAttr {
                        atime: Some(SetTime::Now),
                        mtime: Some(SetTime::Now),
                        ..Default::default()
                    };
                    self.fs
                        .setattr(ino, &c)
                        .map_err(|e| errno("touch", &b(p), e))?;
                }
                Ok(())
            }
            EditCommand::Write { path, .. } => {
                let ino = self.open_file(&b(path), 0o644, root)?;
                self.write_from(ino, &b(path), &mut io::stdin().lock())?;
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
    let w = Writer::open(dev, WriteOptions::default()).with_context(|| spec.to_string())?;
    let resolve = |p: &[u8], follow: bool| w.reader().resolve(p, follow).ok();
    let s = Session {
        parents: Default::default(),
        buf: Default::default(),
        fs: &w,
        resolve: &resolve,
        dry,
    };
    let r = s.run(cmd);
    let closed = w
        .unmount()
        .map_err(|e| anyhow!("{spec}: unmount: {}", e.desc()));
    r?;
    closed
}

/// Runs one editing command.
pub fn run(cmd: &EditCommand) -> anyhow::Result<()> {
    let (spec, dry) = device_of(cmd);
    if dry {
        let disk = open_disk(spec, &DiskOptions::default())
            .with_context(|| format!("cannot open {spec}"))?;
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
    let disk = open_disk(spec, &opts).with_context(|| format!("cannot open {spec} for writing"))?;
    edit_on(disk, spec, cmd, false)
}
