//! `uml_moo` on a file system with reflinks (a loop-mounted XFS image, as
//! root): the merge clones the backing file's extents and writes only the
//! COW's sectors; the result is identical to the plain merge on ext4 and
//! shares extents with the backing file.

mod common;

use std::path::Path;
use std::process::Command;

fn sh(script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}{}",
        common::stdout(&out),
        common::stderr(&out)
    );
    common::stdout(&out)
}

/// Unmounts and detaches on drop.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_merge_on_xfs_clones_the_backing_file_and_equals_the_plain_merge() {
    let t = "a_merge_on_xfs_clones_the_backing_file_and_equals_the_plain_merge";
    if !common::have_root(t) || !common::have_peers(t, &["mkfs.xfs", "filefrag", "losetup"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = d.join("xfs.img");
    let mnt = d.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    sh(&format!(
        "truncate -s 300M {i} && mkfs.xfs -q -m reflink=1 {i} && mount -o loop {i} {m}",
        i = img.display(),
        m = mnt.display()
    ));
    let _mounted = Mounted(mnt.clone());
    let x = |n: &str| mnt.join(n);
    std::fs::write(x("base.img"), common::pattern(11, 64 << 20)).unwrap();
    common::run_ok(common::bin("uml_mkcow"), [x("a.cow"), x("base.img")]);
    // Dirty a few ranges through the COW device: convert a qemu-free way,
    // writing with the library's COW view.
    let dev = umlkit::cow::open_cow(
        &x("a.cow"),
        &umlkit::cow::DiskOptions {
            writable: true,
            ..Default::default()
        },
    )
    .unwrap();
    use umlkit::block::BlockDevice;
    dev.write_all_at(1 << 20, &common::pattern(12, 300_000))
        .unwrap();
    dev.write_all_at(40 << 20, &[0u8; 8192]).unwrap();
    dev.write_all_at((64 << 20) - 512, &[7u8; 512]).unwrap();
    dev.flush().unwrap();
    drop(dev);
    // The plain merge, on the test's own (non-reflink) file system.
    std::fs::copy(x("base.img"), d.join("base.img")).unwrap();
    // The copy must carry the mtime the COW header records (a copy made in
    // the next second failed the merge with "mtime mismatch").
    use std::os::unix::fs::MetadataExt;
    let mtime = std::fs::metadata(x("base.img")).unwrap().mtime();
    common::set_mtime(&d.join("base.img"), mtime);
    let plain = d.join("plain.img");
    common::run_ok(
        common::bin("uml_moo"),
        [Path::new("-b"), &d.join("base.img"), &x("a.cow"), &plain],
    );
    let start = std::time::Instant::now();
    common::run_ok(common::bin("uml_moo"), [x("a.cow"), x("merged.img")]);
    let took = start.elapsed();
    assert_eq!(
        std::fs::read(x("merged.img")).unwrap(),
        std::fs::read(&plain).unwrap(),
        "the reflinked merge differs from the plain merge"
    );
    let frag = sh(&format!("filefrag -v {}", x("merged.img").display()));
    assert!(frag.contains("shared"), "no shared extents:\n{frag}");
    eprintln!("reflinked merge of 64 MiB: {took:?}");
}
