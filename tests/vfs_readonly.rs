//! The read-only InodeFs over the ext3 reader: lookups, attributes, reads
//! and resumable listings answer like the tree the image was made from, and
//! every mutation is refused with EROFS.

mod common;

use umlkit::block::FileDevice;
use umlkit::ext3::Ext3;
use umlkit::ext3::ReadOnly;
use umlkit::fs::{Error as FsError, InodeFs, Owner};

#[test]
fn read_only_inode_fs_reads_the_tree_and_refuses_mutations() {
    if !common::have_peers(
        "read_only_inode_fs_reads_the_tree_and_refuses_mutations",
        &["mke2fs"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(tree.join("etc/hostname"), "guest\n").unwrap();
    for i in 0..300 {
        std::fs::write(tree.join(format!("file{i:03}")), format!("{i}")).unwrap();
    }
    std::os::unix::fs::symlink("etc/hostname", tree.join("link")).unwrap();
    let image = dir.path().join("img");
    common::mkfs_ext3(&tree, &image, 8);

    let fs = ReadOnly::new(Ext3::open(FileDevice::open_read_only(&image).unwrap()).unwrap());
    let etc = fs.lookup(2, b"etc").unwrap();
    let host = fs.lookup(etc.ino, b"hostname").unwrap();
    let mut buf = [0u8; 64];
    let n = fs.read(host.ino, 0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"guest\n");
    assert_eq!(fs.lookup(2, b"nope").unwrap_err(), FsError::NotFound);
    let link = fs.lookup(2, b"link").unwrap();
    assert_eq!(fs.readlink(link.ino).unwrap(), b"etc/hostname");

    // A listing resumed from every tenth cookie sees each name once.
    let mut names = Vec::new();
    let mut cookie = 0;
    loop {
        let mut batch = 0;
        fs.readdir(2, cookie, &mut |e| {
            names.push(e.name.clone());
            cookie = e.next_cookie;
            batch += 1;
            batch < 10
        })
        .unwrap();
        if batch < 10 {
            break;
        }
    }
    let files = names.iter().filter(|n| n.starts_with(b"file")).count();
    assert_eq!(files, 300, "{} names", names.len());
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "a name was listed twice");

    let owner = Owner { uid: 0, gid: 0 };
    assert_eq!(
        fs.create(2, b"new", 0o644, owner).unwrap_err(),
        FsError::ReadOnly
    );
    assert_eq!(fs.write(host.ino, 0, b"x").unwrap_err(), FsError::ReadOnly);
    assert_eq!(
        fs.unlink(etc.ino, b"hostname").unwrap_err(),
        FsError::ReadOnly
    );
}
