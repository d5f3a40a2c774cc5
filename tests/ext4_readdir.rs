//! Our readdir against Linux's: the host kernel loop-mounts an image
//! read-only, and the `d_off` of every entry `getdents64` returns (the
//! cookie that resumes after it) must equal the cookie our reader gives
//! for the same entry of the same image, in the same order. Indexed
//! directories of each hash (half-MD4, TEA, and legacy, whose names can
//! share all 64 bits of position), of one and two index levels, as
//! `e2fsck -D` builds them and as our writer leaves them; one-block and
//! inline-data directories (in `i_block` and grown into `system.data`),
//! which Linux also lists in hash order; and listings resumed from a
//! cookie in the middle.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use umlkit::block::FileDevice;
use umlkit::ext3::dx_readdir::END;
use umlkit::ext3::write::{WriteOptions, Writer};
use umlkit::ext3::Ext3;
use umlkit::fs::{InodeFs, Owner};

const ROOT: u32 = 2;

/// A name, and the cookie after it.
type Listing = Vec<(Vec<u8>, u64)>;

/// An image mounted read-only at a directory, unmounted on drop.
struct Mounted(PathBuf);

impl Mounted {
    /// Mounts `img` read-only on `at`; `None` (after saying why) when the
    /// kernel refuses (no loop devices here, say).
    fn new(img: &Path, at: &Path) -> Option<Mounted> {
        std::fs::create_dir_all(at).unwrap();
        let out = common::run(
            "mount",
            [
                "-t".as_ref(),
                "ext4".as_ref(),
                "-o".as_ref(),
                "loop,ro,noload".as_ref(),
                img.as_os_str(),
                at.as_os_str(),
            ],
        );
        if !out.status.success() {
            eprintln!(
                "mount -o loop,ro {}: {}",
                img.display(),
                common::stderr(&out)
            );
            return None;
        }
        Some(Mounted(at.to_path_buf()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let out = common::run("umount", [self.0.as_os_str()]);
        if !out.status.success() {
            eprintln!("umount {}: {}", self.0.display(), common::stderr(&out));
        }
    }
}

/// What Linux's getdents64 gives for `dir`, from `offset` on (seekdir).
fn linux_listing(dir: &Path, offset: u64) -> Listing {
    let fd = std::fs::File::open(dir).unwrap();
    let mut d = rustix::fs::Dir::new(fd).unwrap();
    if offset != 0 {
        d.seek(i64::try_from(offset).unwrap()).unwrap();
    }
    let mut out = Vec::new();
    while let Some(e) = d.read() {
        let e = e.unwrap();
        let off = u64::try_from(e.offset()).unwrap();
        out.push((e.file_name().to_bytes().to_vec(), off));
    }
    out
}

/// What our reader gives for directory `ino`, from `cookie` on.
fn our_listing(fs: &Ext3<FileDevice>, ino: u32, cookie: u64) -> Listing {
    let mut out = Vec::new();
    fs.readdir_with(ino, cookie, |e, next| {
        out.push((e.name, next));
        true
    })
    .unwrap();
    out
}

/// Lists `dirs` of `img` through the host kernel and through our reader,
/// from the start and from a cookie in the middle, and compares; false
/// when the image could not be mounted.
fn compare(img: &Path, mnt: &Path, dirs: &[&str]) -> bool {
    let Some(m) = Mounted::new(img, mnt) else {
        return false;
    };
    let fs = Ext3::open(FileDevice::open_read_only(img).unwrap()).unwrap();
    for dir in dirs {
        let ino = fs.resolve(dir.as_bytes(), true).unwrap();
        let mounted = m.0.join(dir.trim_start_matches('/'));
        let theirs = linux_listing(&mounted, 0);
        let ours = our_listing(&fs, ino, 0);
        assert!(theirs.len() > 2, "{dir}: {theirs:?}");
        assert_eq!(ours.len(), theirs.len(), "{}:{dir}", img.display());
        for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(
                o,
                t,
                "{}:{dir}: entry {i}: ours {:?} {:#x}, Linux's {:?} {:#x}",
                img.display(),
                String::from_utf8_lossy(&o.0),
                o.1,
                String::from_utf8_lossy(&t.0),
                t.1
            );
        }
        assert_eq!(theirs.last().unwrap().1, END, "{dir}: Linux's end cookie");
        // Resume from the cookie of the middle entry, and from the end.
        let middle = theirs[theirs.len() / 2].1;
        assert_eq!(
            our_listing(&fs, ino, middle),
            linux_listing(&mounted, middle),
            "{}:{dir} from cookie {middle:#x}",
            img.display()
        );
        assert!(our_listing(&fs, ino, END).is_empty());
    }
    drop(m);
    true
}

/// A directory tree: `big` with `n` names of lengths 1 to about 60 (some
/// past the 32 bytes of one half-MD4 round, some with bytes above 0x7f,
/// hashed as signed chars), `small` with a few names (one block), and
/// `same` with three names whose legacy hashes are equal.
fn tree(root: &Path, n: usize) {
    let big = root.join("big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..n {
        let mut name = format!("{i}-{}", "n".repeat(i % 57)).into_bytes();
        if i % 7 == 0 {
            name.push(0xe9);
        }
        let name: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(&name);
        std::fs::write(big.join(name), b"").unwrap();
    }
    std::fs::create_dir_all(root.join("small")).unwrap();
    for name in ["a", "bb", "ccc", "dddd"] {
        std::fs::write(root.join("small").join(name), b"").unwrap();
    }
    // Equal legacy hashes (dx_hack_hash, which takes no seed), and enough
    // other names to make the directory indexed.
    let same = root.join("same");
    std::fs::create_dir_all(&same).unwrap();
    for name in ["c0107807", "c0442642", "c0664031"] {
        std::fs::write(same.join(name), b"").unwrap();
    }
    for i in 0..200 {
        std::fs::write(same.join(format!("other-name-{i}")), b"").unwrap();
    }
}

/// Sets the superblock's default hash (the one `e2fsck -D` builds
/// indexes with).
fn set_hash(img: &Path, hash: &str) {
    let cmd = format!("ssv def_hash_version {hash}");
    common::run_ok(
        "debugfs",
        ["-w".as_ref(), "-R".as_ref(), cmd.as_ref(), img.as_os_str()],
    );
    let out = common::run("e2fsck", ["-fyD".as_ref(), img.as_os_str()]);
    assert!(
        out.status.code().unwrap_or(99) <= 1,
        "e2fsck -fyD: {}",
        common::stdout(&out)
    );
    common::fsck_clean(img);
}

/// `debugfs htree` of `dir`: the hash version and the index depth.
fn index_of(img: &Path, dir: &str) -> BTreeMap<String, String> {
    let out = common::stdout(&common::run(
        "debugfs",
        [
            "-R".as_ref(),
            format!("htree {dir}").as_ref(),
            img.as_os_str(),
        ],
    ));
    out.lines()
        .filter_map(|l| l.trim().split_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn linux_getdents_offsets_equal_our_readdir_cookies() {
    let test = "linux_getdents_offsets_equal_our_readdir_cookies";
    if !common::have_peers(test, &["mke2fs", "e2fsck", "debugfs", "mount", "umount"])
        || !common::have_root(test)
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("tree");
    tree(&src, 6000);
    // (fs type, mke2fs options, hash, index levels of `big`)
    let cases: [(&str, &[&str], &str, &str); 3] = [
        ("ext4", &["-b", "4096"], "half_md4", "0"),
        ("ext3", &["-b", "1024", "-I", "256"], "tea", "1"),
        ("ext3", &["-b", "1024", "-I", "256"], "legacy", "1"),
    ];
    for (i, (kind, extra, hash, levels)) in cases.into_iter().enumerate() {
        let img = tmp.path().join(format!("{i}.img"));
        common::fsimg::make_image(&src, &img, kind, 64, extra);
        set_hash(&img, hash);
        let index = index_of(&img, "/big");
        assert_eq!(index["Indirect levels"], levels, "{kind} {hash}");
        let version = index["Hash Version"].clone();
        assert_eq!(index_of(&img, "/same")["Hash Version"], version);
        if !compare(&img, &tmp.path().join("mnt"), &["/big", "/small", "/same"]) {
            common::skip(test, "the host kernel cannot loop-mount an ext4 image here");
            return;
        }
    }
    // The three names of `same` share a position under the legacy hash
    // (the last case): one cookie for all three, as Linux gives.
    let fs = Ext3::open(FileDevice::open_read_only(&tmp.path().join("2.img")).unwrap()).unwrap();
    let same = fs.resolve(b"/same", true).unwrap();
    let listing = our_listing(&fs, same, 0);
    let at = listing
        .iter()
        .position(|(n, _)| n.starts_with(b"c0"))
        .unwrap();
    let names: Vec<&[u8]> = listing[at..at + 3].iter().map(|(n, _)| &n[..]).collect();
    assert_eq!(names.len(), 3);
    assert!(names.iter().all(|n| n.starts_with(b"c0")), "{names:?}");
    assert_eq!(listing[at].1, listing[at + 1].1, "{listing:?}");
}

#[test]
fn linux_getdents_offsets_equal_our_cookies_on_directories_our_writer_grew() {
    let test = "linux_getdents_offsets_equal_our_cookies_on_directories_our_writer_grew";
    if !common::have_peers(test, &["mke2fs", "e2fsck", "mount", "umount"])
        || !common::have_root(test)
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("w.img");
    common::run_ok(
        "mke2fs",
        [
            "-q".as_ref(),
            "-F".as_ref(),
            "-t".as_ref(),
            "ext4".as_ref(),
            "-b".as_ref(),
            "1024".as_ref(),
            img.as_os_str(),
            "32M".as_ref(),
        ],
    );
    let w = Writer::open(
        FileDevice::open_read_write(&img).unwrap(),
        WriteOptions::default(),
    )
    .unwrap();
    let me = Owner { uid: 0, gid: 0 };
    // One-block, then indexed by the writer (make_indexed), leaves split,
    // a second index level, and holes left by removed names.
    let d = w.mkdir(ROOT, b"grown", 0o755, me).unwrap();
    for i in 0..5000 {
        w.create(
            d.ino,
            format!("name-{i}-{}", "x".repeat(i % 23)).as_bytes(),
            0o644,
            me,
        )
        .unwrap();
    }
    for i in (0..5000).step_by(3) {
        w.unlink(d.ino, format!("name-{i}-{}", "x".repeat(i % 23)).as_bytes())
            .unwrap();
    }
    let s = w.mkdir(ROOT, b"tiny", 0o755, me).unwrap();
    for i in 0..5 {
        w.create(s.ino, format!("t{i}").as_bytes(), 0o644, me)
            .unwrap();
    }
    w.unmount().unwrap();
    drop(w);
    common::fsck_clean(&img);
    if !compare(&img, &tmp.path().join("mnt"), &["/grown", "/tiny"]) {
        common::skip(test, "the host kernel cannot loop-mount an ext4 image here");
    }
}

#[test]
fn linux_getdents_offsets_equal_our_cookies_on_inline_data_directories() {
    let test = "linux_getdents_offsets_equal_our_cookies_on_inline_data_directories";
    if !common::have_peers(test, &["mke2fs", "e2fsck", "debugfs", "mount", "umount"])
        || !common::have_root(test)
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("tree");
    std::fs::create_dir_all(src.join("inl")).unwrap();
    for name in ["a", "bb", "ccc", "dddd"] {
        std::fs::write(src.join("inl").join(name), b"").unwrap();
    }
    let img = tmp.path().join("inline.img");
    let extra = ["-O", "inline_data", "-I", "256"];
    common::mkfs_from_with("ext4", &extra, &src, &img, "8M");
    // Linux, not mke2fs, grows an inline directory into the inode's
    // `system.data` attribute: five names more than `i_block` holds.
    let rw = tmp.path().join("rw");
    std::fs::create_dir_all(&rw).unwrap();
    let out = common::run(
        "mount",
        [
            "-t".as_ref(),
            "ext4".as_ref(),
            "-o".as_ref(),
            "loop".as_ref(),
            img.as_os_str(),
            rw.as_os_str(),
        ],
    );
    if !out.status.success() {
        common::skip(test, "the host kernel cannot loop-mount an ext4 image here");
        return;
    }
    std::fs::create_dir(rw.join("spill")).unwrap();
    for i in 0..5 {
        std::fs::write(rw.join(format!("spill/n{i}")), b"").unwrap();
    }
    common::run_ok("umount", [rw.as_os_str()]);
    common::fsck_clean(&img);
    for dir in ["/inl", "/spill"] {
        let stat = common::stdout(&common::run(
            "debugfs",
            [
                "-R".as_ref(),
                format!("stat {dir}").as_ref(),
                img.as_os_str(),
            ],
        ));
        assert!(
            stat.contains("Size of inline data"),
            "{dir} is not inline: {stat}"
        );
    }
    let xattrs = common::stdout(&common::run(
        "debugfs",
        ["-R".as_ref(), "ea_list /spill".as_ref(), img.as_os_str()],
    ));
    assert!(xattrs.contains("system.data"), "{xattrs}");
    assert!(
        !xattrs.contains("system.data (0)"),
        "/spill did not grow into system.data: {xattrs}"
    );
    assert!(compare(&img, &tmp.path().join("mnt"), &["/inl", "/spill"]));
}
