//! Model-based test of the ext3 writer: random operation sequences applied
//! through `InodeFs` and to an in-memory model tree; after each sequence
//! the image read back by our reader and dumped by `debugfs rdump` equals
//! the model, and `e2fsck -fn` is clean. ext2, ext3 with 128- and 256-byte
//! inodes.

// The model's EEXIST checks read clearer than the entry API.
#![allow(clippy::map_entry)]

mod common;

use common::fsimg::Rng;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use umlkit::block::FileDevice;
use umlkit::ext3::write::{WriteOptions, Writer};
use umlkit::ext3::{Ext3, FileType};
use umlkit::fs::{Error as FsError, InodeFs, Owner, RenameFlags, SetAttr};

const ROOT: u32 = 2;
const ME: Owner = Owner { uid: 0, gid: 0 };

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Dir,
    File(usize),
    Link(Vec<u8>),
}

#[derive(Default)]
struct Model {
    paths: BTreeMap<Vec<u8>, Node>,
    data: HashMap<usize, Vec<u8>>,
    next: usize,
}

fn parent_of(p: &[u8]) -> Vec<u8> {
    match p.iter().rposition(|&c| c == b'/') {
        Some(i) => p[..i].to_vec(),
        None => Vec::new(),
    }
}

fn name_of(p: &[u8]) -> Vec<u8> {
    match p.iter().rposition(|&c| c == b'/') {
        Some(i) => p[i + 1..].to_vec(),
        None => p.to_vec(),
    }
}

fn join(d: &[u8], n: &[u8]) -> Vec<u8> {
    if d.is_empty() {
        n.to_vec()
    } else {
        [d, b"/", n].concat()
    }
}

impl Model {
    fn dirs(&self) -> Vec<Vec<u8>> {
        let mut v = vec![Vec::new()];
        v.extend(
            self.paths
                .iter()
                .filter(|(_, n)| **n == Node::Dir)
                .map(|(p, _)| p.clone()),
        );
        v
    }
    fn files(&self) -> Vec<Vec<u8>> {
        self.paths
            .iter()
            .filter(|(_, n)| matches!(n, Node::File(_)))
            .map(|(p, _)| p.clone())
            .collect()
    }
    fn children(&self, d: &[u8]) -> Vec<Vec<u8>> {
        self.paths
            .keys()
            .filter(|p| parent_of(p) == d)
            .cloned()
            .collect()
    }
    fn remove_tree_entry(&mut self, p: &[u8]) {
        self.paths.remove(p);
    }
}

fn ino_of(w: &Writer<FileDevice>, p: &[u8]) -> u32 {
    let mut ino = ROOT;
    if p.is_empty() {
        return ino;
    }
    for part in p.split(|&c| c == b'/') {
        ino = w
            .lookup(ino, part)
            .unwrap_or_else(|e| panic!("lookup {:?}: {e}", String::from_utf8_lossy(p)))
            .ino;
    }
    ino
}

fn pick<T: Clone>(rng: &mut Rng, v: &[T]) -> Option<T> {
    (!v.is_empty()).then(|| v[rng.below(v.len() as u64) as usize].clone())
}

fn step(w: &Writer<FileDevice>, m: &mut Model, rng: &mut Rng) {
    let name = format!("n{}", rng.below(40)).into_bytes();
    match rng.below(11) {
        0 | 1 => {
            let d = pick(rng, &m.dirs()).unwrap();
            let p = join(&d, &name);
            let r = w.create(ino_of(w, &d), &name, 0o644, ME);
            if m.paths.contains_key(&p) {
                assert_eq!(r.unwrap_err(), FsError::Exists);
            } else {
                r.unwrap();
                m.next += 1;
                m.paths.insert(p, Node::File(m.next));
                m.data.insert(m.next, Vec::new());
            }
        }
        2 | 3 => {
            if let Some(f) = pick(rng, &m.files()) {
                let Node::File(id) = m.paths[&f] else {
                    unreachable!()
                };
                let off = rng.below(300_000) as usize;
                let len = rng.below(40_000) as usize;
                let bytes = common::pattern(rng.next(), len);
                assert_eq!(w.write(ino_of(w, &f), off as u64, &bytes).unwrap(), len);
                let d = m.data.get_mut(&id).unwrap();
                if len > 0 {
                    if d.len() < off + len {
                        d.resize(off + len, 0);
                    }
                    d[off..off + len].copy_from_slice(&bytes);
                }
            }
        }
        4 => {
            if let Some(f) = pick(rng, &m.files()) {
                let Node::File(id) = m.paths[&f] else {
                    unreachable!()
                };
                let size = rng.below(200_000);
                let c = SetAttr {
                    size: Some(size),
                    ..Default::default()
                };
                w.setattr(ino_of(w, &f), &c).unwrap();
                m.data.get_mut(&id).unwrap().resize(size as usize, 0);
            }
        }
        5 => {
            let d = pick(rng, &m.dirs()).unwrap();
            let p = join(&d, &name);
            let r = w.mkdir(ino_of(w, &d), &name, 0o755, ME);
            if m.paths.contains_key(&p) {
                assert_eq!(r.unwrap_err(), FsError::Exists);
            } else {
                r.unwrap();
                m.paths.insert(p, Node::Dir);
            }
        }
        6 => {
            let all: Vec<Vec<u8>> = m.paths.keys().cloned().collect();
            if let Some(p) = pick(rng, &all) {
                let parent = ino_of(w, &parent_of(&p));
                if m.paths[&p] == Node::Dir {
                    let r = w.rmdir(parent, &name_of(&p));
                    if m.children(&p).is_empty() {
                        r.unwrap();
                        m.remove_tree_entry(&p);
                    } else {
                        assert_eq!(r.unwrap_err(), FsError::NotEmpty);
                    }
                } else {
                    w.unlink(parent, &name_of(&p)).unwrap();
                    m.remove_tree_entry(&p);
                }
            }
        }
        7 | 8 => {
            let all: Vec<Vec<u8>> = m.paths.keys().cloned().collect();
            let (Some(src), Some(dd)) = (pick(rng, &all), pick(rng, &m.dirs())) else {
                return;
            };
            let dst = join(&dd, &name);
            let r = w.rename(
                ino_of(w, &parent_of(&src)),
                &name_of(&src),
                ino_of(w, &dd),
                &name,
                RenameFlags::default(),
            );
            let s = m.paths[&src].clone();
            let into_self =
                s == Node::Dir && (dd == src || dd.starts_with(&[src.as_slice(), b"/"].concat()));
            if into_self {
                assert_eq!(
                    r.unwrap_err(),
                    FsError::InvalidArgument,
                    "rename {src:?} into itself"
                );
                return;
            }
            if src == dst {
                r.unwrap();
                return;
            }
            match m.paths.get(&dst).cloned() {
                Some(Node::Dir) if s != Node::Dir => {
                    assert_eq!(r.unwrap_err(), FsError::IsADirectory)
                }
                Some(t) if t != Node::Dir && s == Node::Dir => {
                    assert_eq!(r.unwrap_err(), FsError::NotADirectory)
                }
                Some(Node::Dir) if !m.children(&dst).is_empty() => {
                    assert_eq!(r.unwrap_err(), FsError::NotEmpty)
                }
                Some(t) if t == s && matches!(t, Node::File(_)) => {
                    // Two names of one inode: rename does nothing.
                    r.unwrap();
                }
                _ => {
                    r.unwrap();
                    m.paths.remove(&dst);
                    let moved: Vec<Vec<u8>> = m
                        .paths
                        .keys()
                        .filter(|p| **p == src || p.starts_with(&[src.as_slice(), b"/"].concat()))
                        .cloned()
                        .collect();
                    for p in moved {
                        let n = m.paths.remove(&p).unwrap();
                        m.paths
                            .insert([dst.as_slice(), &p[src.len()..]].concat(), n);
                    }
                }
            }
        }
        9 => {
            let (Some(f), Some(d)) = (pick(rng, &m.files()), pick(rng, &m.dirs())) else {
                return;
            };
            let p = join(&d, &name);
            let r = w.link(ino_of(w, &f), ino_of(w, &d), &name);
            if m.paths.contains_key(&p) {
                assert_eq!(r.unwrap_err(), FsError::Exists);
            } else {
                r.unwrap();
                let n = m.paths[&f].clone();
                m.paths.insert(p, n);
            }
        }
        _ => {
            let d = pick(rng, &m.dirs()).unwrap();
            let p = join(&d, &name);
            let target = vec![b't'; 1 + rng.below(150) as usize];
            let r = w.symlink(ino_of(w, &d), &name, &target, ME);
            if m.paths.contains_key(&p) {
                assert_eq!(r.unwrap_err(), FsError::Exists);
            } else {
                r.unwrap();
                m.paths.insert(p, Node::Link(target));
            }
        }
    }
}

fn walk(
    r: &Ext3<FileDevice>,
    ino: u32,
    prefix: &[u8],
    out: &mut BTreeMap<Vec<u8>, (FileType, Vec<u8>)>,
) {
    for e in r.read_dir(ino).unwrap() {
        if e.name == b"." || e.name == b".." || (ino == ROOT && e.name == b"lost+found") {
            continue;
        }
        let p = join(prefix, &e.name);
        let md = r.getattr(e.ino).unwrap();
        let content = match md.file_type {
            FileType::Directory => {
                walk(r, e.ino, &p, out);
                Vec::new()
            }
            FileType::Symlink => r.readlink(e.ino).unwrap(),
            _ => {
                let mut b = vec![0u8; md.size as usize];
                assert_eq!(r.read(e.ino, 0, &mut b).unwrap(), b.len());
                b
            }
        };
        out.insert(p, (md.file_type, content));
    }
}

fn expected(m: &Model) -> BTreeMap<Vec<u8>, (FileType, Vec<u8>)> {
    m.paths
        .iter()
        .map(|(p, n)| {
            let v = match n {
                Node::Dir => (FileType::Directory, Vec::new()),
                Node::File(id) => (FileType::Regular, m.data[id].clone()),
                Node::Link(t) => (FileType::Symlink, t.clone()),
            };
            (p.clone(), v)
        })
        .collect()
}

fn check_image(img: &Path, m: &Model) {
    common::fsck_clean(img);
    let r = Ext3::open(FileDevice::open_read_only(img).unwrap()).unwrap();
    let mut got = BTreeMap::new();
    walk(&r, ROOT, b"", &mut got);
    let want = expected(m);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (p, v) in &want {
        assert!(got[p] == *v, "{} differs", String::from_utf8_lossy(p));
    }
    // debugfs sees the same tree.
    let dump = tempfile::tempdir().unwrap();
    let cmd = format!("rdump / {}", dump.path().display());
    common::run("debugfs", ["-R".as_ref(), cmd.as_ref(), img.as_os_str()]);
    let root = dump.path().join(".");
    let root = if root.join("lost+found").exists() {
        root
    } else {
        dump.path().to_path_buf()
    };
    for (p, (t, content)) in &want {
        let hp = root.join(std::ffi::OsStr::new(&*String::from_utf8_lossy(p)));
        match t {
            FileType::Directory => assert!(hp.is_dir(), "debugfs: {} not a dir", hp.display()),
            FileType::Symlink => assert_eq!(
                std::fs::read_link(&hp).unwrap().as_os_str().len(),
                content.len()
            ),
            _ => assert!(
                std::fs::read(&hp).unwrap() == *content,
                "debugfs: {} differs",
                hp.display()
            ),
        }
    }
}

fn run_model(kind: &str, inode_size: &str, block_size: &str, seed: u64) {
    run_model_with(kind, inode_size, block_size, seed, &[]);
}

fn run_model_with(kind: &str, inode_size: &str, block_size: &str, seed: u64, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("m.img");
    let out = common::run(
        "mke2fs",
        [
            "-q", "-F", "-t", kind, "-I", inode_size, "-b", block_size, "-N", "512",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .chain([img.display().to_string(), "32M".to_string()]),
    );
    assert!(out.status.success(), "mke2fs: {}", common::stderr(&out));
    let mut m = Model::default();
    let mut rng = Rng::new(seed);
    for round in 0..3 {
        let w = Writer::open(
            FileDevice::open_read_write(&img).unwrap(),
            WriteOptions::default(),
        )
        .unwrap();
        for _ in 0..120 {
            step(&w, &mut m, &mut rng);
        }
        w.unmount().unwrap();
        drop(w);
        eprintln!(
            "{kind} -I {inode_size} seed {seed} round {round}: {} paths",
            m.paths.len()
        );
        check_image(&img, &m);
    }
}

#[test]
fn random_operations_match_the_model_on_ext3_128_byte_inodes() {
    if common::have_peers(
        "random_operations_match_the_model_on_ext3_128_byte_inodes",
        &["mke2fs", "e2fsck", "debugfs"],
    ) {
        for seed in [1, 11, 21] {
            run_model("ext3", "128", "1024", seed);
        }
    }
}

#[test]
fn random_operations_match_the_model_on_ext3_256_byte_inodes() {
    if common::have_peers(
        "random_operations_match_the_model_on_ext3_256_byte_inodes",
        &["mke2fs", "e2fsck", "debugfs"],
    ) {
        for seed in [2, 12] {
            run_model("ext3", "256", "1024", seed);
        }
        run_model("ext3", "256", "4096", 22);
    }
}

#[test]
fn random_operations_match_the_model_on_ext2() {
    if common::have_peers(
        "random_operations_match_the_model_on_ext2",
        &["mke2fs", "e2fsck", "debugfs"],
    ) {
        for seed in [3, 13] {
            run_model("ext2", "256", "1024", seed);
        }
        run_model("ext2", "128", "4096", 23);
    }
}

#[test]
fn random_operations_match_the_model_on_ext4_with_checksums_and_flex_bg() {
    // The default ext4 features but extent (files and directories mapped
    // by blocks), in the variants mke2fs makes.
    if common::have_peers(
        "random_operations_match_the_model_on_ext4_with_checksums_and_flex_bg",
        &["mke2fs", "e2fsck", "debugfs"],
    ) {
        // mke2fs wants extents with 64bit.
        let base = "^extent,^64bit";
        run_model_with("ext4", "256", "1024", 4, &["-O", base]);
        run_model_with("ext4", "256", "4096", 14, &["-O", base]);
        let no_csum = format!("{base},^metadata_csum");
        run_model_with("ext4", "256", "1024", 24, &["-O", &no_csum]);
        let no_flex = format!("{base},^flex_bg");
        run_model_with("ext4", "128", "1024", 44, &["-O", &no_flex]);
    }
}

#[test]
fn random_operations_match_the_model_on_default_ext4_with_extents() {
    // mke2fs -t ext4 as it comes (extent, 64bit, flex_bg, metadata_csum)
    // and its variants.
    if common::have_peers(
        "random_operations_match_the_model_on_default_ext4_with_extents",
        &["mke2fs", "e2fsck", "debugfs"],
    ) {
        run_model_with("ext4", "256", "1024", 5, &[]);
        run_model_with("ext4", "256", "4096", 15, &[]);
        run_model_with("ext4", "256", "1024", 25, &["-O", "^metadata_csum"]);
        run_model_with("ext4", "256", "4096", 35, &["-O", "^64bit"]);
        run_model_with("ext4", "256", "1024", 45, &["-O", "^flex_bg"]);
        // Upstream e2fsprogs' defaults since 1.47.
        let upstream = ["-O", "orphan_file,metadata_csum_seed"];
        run_model_with("ext4", "256", "4096", 55, &upstream);
    }
}
