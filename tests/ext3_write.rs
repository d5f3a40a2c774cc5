//! The ext3 writer against the real tools: operations through `InodeFs` on
//! images made by mke2fs, then `e2fsck -fn` must be clean and the reader
//! and `debugfs` must see the changes.

mod common;

use std::path::Path;
use umlkit::block::FileDevice;
use umlkit::ext3::write::{WriteOptions, Writer};
use umlkit::vfs::{InodeFs, Owner, RenameFlags};

const ROOT: u32 = 2;
const ME: Owner = Owner {
    uid: 1000,
    gid: 100,
};

fn mkfs(image: &Path, kind: &str, inode_size: &str, size: &str) {
    let out = common::run(
        "mke2fs",
        ["-q", "-F", "-t", kind, "-I", inode_size, "-b", "1024"]
            .iter()
            .map(|s| s.to_string())
            .chain([image.display().to_string(), size.to_string()]),
    );
    assert!(out.status.success(), "mke2fs: {}", common::stderr(&out));
}

fn fsck_clean(image: &Path) {
    let out = common::run("e2fsck", ["-fn".as_ref(), image.as_os_str()]);
    assert!(
        out.status.success(),
        "e2fsck -fn {}:\n{}{}",
        image.display(),
        common::stdout(&out),
        common::stderr(&out)
    );
}

fn debugfs(image: &Path, cmd: &str) -> String {
    let out = common::run("debugfs", ["-R".as_ref(), cmd.as_ref(), image.as_os_str()]);
    common::stdout(&out)
}

fn open(image: &Path) -> Writer<FileDevice> {
    Writer::open(
        FileDevice::open_read_write(image).unwrap(),
        WriteOptions::default(),
    )
    .unwrap()
}

#[test]
fn create_write_mkdir_rename_unlink_leave_a_clean_ext3() {
    if !common::have_peers(
        "create_write_mkdir_rename_unlink_leave_a_clean_ext3",
        &["mke2fs", "e2fsck", "debugfs"],
    ) {
        return;
    }
    for inode_size in ["128", "256"] {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("a.img");
        mkfs(&img, "ext3", inode_size, "16M");
        let w = open(&img);
        let d = w.mkdir(ROOT, b"etc", 0o755, ME).unwrap();
        let f = w.create(d.ino, b"hostname", 0o644, ME).unwrap();
        assert_eq!(w.write(f.ino, 0, b"guest\n").unwrap(), 6);
        let big = common::pattern(7, 300_000);
        let g = w.create(ROOT, b"big", 0o600, ME).unwrap();
        w.write(g.ino, 0, &big).unwrap();
        w.write(g.ino, 5_000_000, b"tail").unwrap();
        w.symlink(ROOT, b"fast", b"etc/hostname", ME).unwrap();
        w.symlink(ROOT, b"slow", &[b'x'; 100], ME).unwrap();
        w.link(f.ino, ROOT, b"hard").unwrap();
        let t = w.create(ROOT, b"gone", 0o644, ME).unwrap();
        w.write(t.ino, 0, &big).unwrap();
        w.unlink(ROOT, b"gone").unwrap();
        w.rename(ROOT, b"big", d.ino, b"big2", RenameFlags::default())
            .unwrap();
        w.mknod(ROOT, b"null", 0o020666, nix::sys::stat::makedev(1, 3), ME)
            .unwrap();
        w.unmount().unwrap();
        drop(w);
        fsck_clean(&img);
        assert_eq!(debugfs(&img, "cat /etc/hostname"), "guest\n");
        assert_eq!(debugfs(&img, "cat /hard"), "guest\n");
        let r = umlkit::ext3::Ext3::open(FileDevice::open_read_only(&img).unwrap()).unwrap();
        let ino = r.resolve_path("/etc/big2").unwrap();
        let mut buf = vec![0u8; 300_000];
        r.read(ino, 0, &mut buf).unwrap();
        assert!(buf == big);
        assert_eq!(r.getattr(ino).unwrap().size, 5_000_004);
        assert_eq!(
            r.readlink(r.resolve(b"/slow", false).unwrap()).unwrap(),
            vec![b'x'; 100]
        );
        assert!(r.resolve_path("/gone").is_err());
    }
}
